import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Publisher, PublishResult, RepoEntry } from '../contracts/publisher.js';
import type { Signer } from '../contracts/signer.js';
import { FileChanges, TEMP_PREFIX } from '../durable.js';
import { InputError } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';
import { RepoDatabase } from './database.js';
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
  /**
   * The original's start-up janitor: removes `*.pkg.tar.*.sig` files whose package file is gone, and
   * temporary files a crash left behind (`.tmp.*`, `*.sig.tmp`). Returns the names removed.
   */
  removeOrphans(): Promise<string[]>;
}

const NAME_PATTERN = /^[A-Za-z0-9@._+-]+$/;

/**
 * The default {@link Publisher}: package files copied into a folder, signed when a signer is set, and
 * listed in a natively written pacman database.
 */
export function createFilesystemRepository(options: FilesystemRepositoryOptions): FilesystemRepository {
  const dir = path.resolve(options.dir);
  const name = options.name ?? 'serene';
  if (!NAME_PATTERN.test(name) || name.startsWith('.')) {
    throw new InputError(`'${name}' is not a valid repository name`);
  }
  const signer = options.signer;
  const logger = options.logger ?? createNoopLogger();
  let db: Promise<RepoDatabase> | undefined;

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

  const repository: FilesystemRepository = {
    name: FILESYSTEM_PUBLISHER_NAME,
    dir,
    database,

    async init() {
      await (await database()).init();
      await repository.removeOrphans();
    },

    async publish(files): Promise<PublishResult> {
      const repo = await database();
      // read (and so validate) everything before anything is copied
      const packages = await Promise.all(files.map((file) => readPackage(path.resolve(file))));
      const result = await change(packages, (inPlace) => repo.add(inPlace, { removeOld: true }));
      logger.info('published packages', { packages: result.added.map((entry) => entry.filename) });
      return { added: result.added, replaced: result.replaced };
    },

    async remove(names): Promise<RepoEntry[]> {
      const removed = await (await database()).remove(names);
      for (const entry of removed) {
        const file = path.join(dir, path.basename(entry.filename));
        await fs.rm(file, { force: true });
        await fs.rm(`${file}.sig`, { force: true });
      }
      logger.info('removed packages', { packages: removed.map((entry) => entry.name) });
      return removed;
    },

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
