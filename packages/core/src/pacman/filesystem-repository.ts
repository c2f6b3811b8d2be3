import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createLimiter } from '../concurrency.js';
import type { Publisher, PublishOptions, PublishResult, RepoEntry } from '../contracts/publisher.js';
import type { Signer } from '../contracts/signer.js';
import { FileChanges, TEMP_PREFIX } from '../durable.js';
import { InputError } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';
import { BASES_FILE, type BasesRecord, readBases, writeBases } from './bases.js';
import { RepoDatabase } from './database.js';
import { repositoryNameProblem } from './names.js';
import { readPackage } from './package-reader.js';
import type { PackageFile } from './types.js';

/** Name of the filesystem publisher, for logs. */
export const FILESYSTEM_PUBLISHER_NAME = 'filesystem';

/** Options of {@link createFilesystemRepository}. */
export interface FilesystemRepositoryOptions {
  /** the repository folder (served at `/<ARCH>/`) */
  dir: string;
  /**
   * the repository name: `NAME.db.tar.gz`
   * @default 'serene'
   */
  name?: string;
  /** signs packages and the database; without it, everything is published unsigned */
  signer?: Signer | undefined;
  logger?: Logger;
}

/** A {@link Publisher} that also exposes its database. */
export interface FilesystemRepository extends Publisher {
  /** the repository folder */
  readonly dir: string;
  /** opens (once) and returns the underlying database */
  database(): Promise<RepoDatabase>;
  /** The record of what each package base published (`bases.json` in the folder, as the original's). */
  bases(): Promise<BasesRecord>;
  /**
   * The original's start-up janitor: removes `*.pkg.tar.*.sig` files whose package file is gone, and
   * temporary files a crash left behind (`.tmp.*`, `*.sig.tmp`). Returns the names removed.
   */
  removeOrphans(): Promise<string[]>;
}

/**
 * The default {@link Publisher}: package files copied into a folder, signed when a signer is set, and
 * listed in a natively written pacman database.
 */
export function createFilesystemRepository(options: FilesystemRepositoryOptions): FilesystemRepository {
  const dir = path.resolve(options.dir);
  const name = options.name ?? 'serene';
  const problem = repositoryNameProblem(name);
  if (problem !== undefined) {
    throw new InputError(`'${name}' is not a valid repository name: ${problem}`);
  }
  const signer = options.signer;
  const logger = options.logger ?? createNoopLogger();
  let db: Promise<RepoDatabase> | undefined;
  const basesFile = path.join(dir, BASES_FILE);
  /** publishes and removes one after another: each reads and writes the whole record */
  const serial = createLimiter(1);

  /**
   * The record; made from the database's entries (each under its pkgbase) when the file is missing
   * or unreadable, as after an upgrade from a version without it.
   */
  const loadBases = async (): Promise<BasesRecord> => {
    try {
      const record = await readBases(basesFile);
      if (record) return record;
    } catch (error) {
      logger.warn('the record of published bases cannot be read: it is made again from the database', {
        file: basesFile,
        error: (error as Error).message,
      });
    }
    const record: BasesRecord = {};
    for (const entry of await (await database()).list()) {
      const base = entry.base ?? entry.name;
      const members = record[base] ?? [];
      members.push({ name: entry.name, file: path.basename(entry.filename) });
      record[base] = members;
    }
    return record;
  };

  const database = (): Promise<RepoDatabase> => {
    db ??= fs
      .mkdir(dir, { recursive: true })
      .then(() => RepoDatabase.open(path.join(dir, `${name}.db.tar.gz`), { signer, logger }));
    return db;
  };

  /**
   * Stages `FILE.sig` for the package staged as `staged` (its bytes), or the removal of a stale one
   * when not signing.
   */
  const stageSignature = async (changes: FileChanges, file: string, staged: string): Promise<void> => {
    if (!signer) {
      changes.remove(`${file}.sig`);
      return;
    }
    const signature = await signer.sign(createReadStream(staged, { highWaterMark: 1 << 20 }));
    await changes.write(`${file}.sig`, signature);
  };

  /**
   * Stages the package files (copied in unless already there) and their signatures, then puts them
   * in place and runs `update` (the database change); should anything fail, every file is put back
   * as it was (a rebuild of the same version gets its previous file back) and the error is thrown.
   */
  const change = async <T>(
    packages: readonly PackageFile[],
    update: (inPlace: PackageFile[]) => Promise<T>,
  ): Promise<T> => {
    const changes = new FileChanges();
    try {
      const inPlace: PackageFile[] = [];
      for (const pkg of packages) {
        const target = path.join(dir, pkg.filename);
        const staged =
          path.resolve(pkg.path) === target ? target : await changes.copy(pkg.path, target, { mode: 0o644 });
        await stageSignature(changes, target, staged);
        inPlace.push({ ...pkg, path: target });
      }
      await changes.commit();
      const result = await update(inPlace);
      await changes.done();
      return result;
    } catch (error) {
      await changes.rollback();
      throw error;
    }
  };

  /** Deletes a package file of the folder and its signature. */
  const deleteWithSignature = async (file: string): Promise<void> => {
    const target = path.join(dir, path.basename(file));
    await fs.rm(target, { force: true });
    await fs.rm(`${target}.sig`, { force: true });
  };

  /**
   * After a publish of `base`: what it published before and no longer has leaves the database and the
   * folder, and its record is replaced (members now published by it leave other bases' records).
   */
  const recordPublish = async (base: string, members: { name: string; file: string }[]): Promise<void> => {
    const record = await loadBases();
    const names = new Set(members.map((member) => member.name));
    const files = new Set(members.map((member) => member.file));
    const previous = record[base] ?? [];
    for (const [other, list] of Object.entries(record)) {
      if (other === base) continue;
      const kept = list.filter((member) => !names.has(member.name));
      if (kept.length === 0) delete record[other];
      else record[other] = kept;
    }
    const claimed = new Set(
      Object.entries(record)
        .filter(([other]) => other !== base)
        .flatMap(([, list]) => list.map((member) => member.name)),
    );
    const claimedFiles = new Set(
      Object.entries(record)
        .filter(([other]) => other !== base)
        .flatMap(([, list]) => list.map((member) => member.file)),
    );
    const repo = await database();
    const present = new Set((await repo.list()).map((entry) => entry.name));
    const dropped = previous
      .map((member) => member.name)
      .filter((name) => !names.has(name) && !claimed.has(name) && present.has(name));
    if (dropped.length > 0) {
      await repo.remove(dropped);
      logger.info('removed members the new version of a base no longer has', { base, packages: dropped });
    }
    for (const member of previous) {
      if (!files.has(member.file) && !claimedFiles.has(member.file)) await deleteWithSignature(member.file);
    }
    record[base] = members;
    await writeBases(basesFile, record);
  };

  const repository: FilesystemRepository = {
    name: FILESYSTEM_PUBLISHER_NAME,
    dir,
    database,

    async init() {
      await (await database()).init();
      await serial(async () => {
        if ((await readBases(basesFile).catch(() => undefined)) === undefined) {
          await writeBases(basesFile, await loadBases());
        }
      });
      await repository.removeOrphans();
    },

    publish(files, options: PublishOptions = {}): Promise<PublishResult> {
      return serial(async () => {
        const repo = await database();
        // read (and so validate) everything before anything is copied
        const packages = await Promise.all(files.map((file) => readPackage(path.resolve(file))));
        const result = await change(packages, (inPlace) => repo.add(inPlace, { removeOld: true }));
        logger.info('published packages', { packages: result.added.map((entry) => entry.filename) });
        if (options.base !== undefined) {
          await recordPublish(
            options.base,
            packages.map((pkg) => ({ name: pkg.pkginfo.pkgname, file: pkg.filename })),
          );
        }
        return { added: result.added, replaced: result.replaced };
      });
    },

    remove(names, options: PublishOptions = {}): Promise<RepoEntry[]> {
      return serial(async () => {
        const repo = await database();
        const record = await loadBases();
        const recorded = (options.base !== undefined && record[options.base]) || [];
        // recorded members that are no longer in the database (a failed publish of the original
        // leaves such entries) are not an error
        const present = new Set((await repo.list()).map((entry) => entry.name));
        const wanted = [...new Set([...names, ...recorded.map((m) => m.name).filter((n) => present.has(n))])];
        const removed = wanted.length > 0 ? await repo.remove(wanted) : [];
        const doomed = new Set([
          ...removed.map((entry) => path.basename(entry.filename)),
          ...recorded.map((member) => member.file),
        ]);
        for (const file of doomed) await deleteWithSignature(file);
        if (options.base !== undefined) delete record[options.base];
        const gone = new Set(removed.map((entry) => entry.name));
        for (const [base, list] of Object.entries(record)) {
          const kept = list.filter((member) => !gone.has(member.name));
          if (kept.length === 0) delete record[base];
          else record[base] = kept;
        }
        await writeBases(basesFile, record);
        logger.info('removed packages', { packages: removed.map((entry) => entry.name) });
        return removed;
      });
    },

    async fileOf(name) {
      const record = await loadBases();
      for (const members of Object.values(record)) {
        const member = members.find((candidate) => candidate.name === name);
        if (member) return member.file;
      }
      return undefined;
    },

    bases: () => serial(loadBases),

    async list() {
      return (await database()).list();
    },

    async removeOrphans() {
      const names = await fs.readdir(dir).catch(() => [] as string[]);
      const present = new Set(names);
      // every temporary file of a durable write starts with `.tmp.` (writers left them when killed)
      const orphans = names.filter(
        (file) =>
          (/\.pkg\.tar(\.[a-z0-9]+)?\.sig$/.test(file) && !present.has(file.slice(0, -'.sig'.length))) ||
          file.startsWith(TEMP_PREFIX) ||
          (file.endsWith('.sig.tmp') && file.includes('.pkg.tar')),
      );
      for (const file of orphans) await fs.rm(path.join(dir, file), { force: true });
      if (orphans.length > 0) logger.info('removed orphan files from the repository', { files: orphans });
      return orphans;
    },

    async resign() {
      const repo = await database();
      const entries = await repo.list();
      if (!signer) return;
      const packages: PackageFile[] = [];
      for (const entry of entries)
        packages.push(await readPackage(path.join(dir, path.basename(entry.filename))));
      if (packages.length > 0) await change(packages, (inPlace) => repo.add(inPlace));
      else await repo.resign();
    },
  };
  return repository;
}
