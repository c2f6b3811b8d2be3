import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Publisher, PublishResult, RepoEntry } from '../contracts/publisher.js';
import type { Signer } from '../contracts/signer.js';
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

  /** Writes `FILE.sig` atomically, or removes a stale one when not signing. */
  const signPackage = async (file: string): Promise<void> => {
    if (!signer) {
      await fs.rm(`${file}.sig`, { force: true });
      return;
    }
    const signature = await signer.sign(createReadStream(file, { highWaterMark: 1 << 20 }));
    await fs.writeFile(`${file}.sig.tmp`, signature);
    await fs.rename(`${file}.sig.tmp`, `${file}.sig`);
  };

  /** Copies `pkg` into the folder (unless it is already there), atomically. */
  const bringIn = async (pkg: PackageFile): Promise<{ pkg: PackageFile; copied: boolean }> => {
    const target = path.join(dir, pkg.filename);
    if (path.resolve(pkg.path) === target) return { pkg, copied: false };
    // a rebuild of the same version replaces the file; a failed publish then keeps the new one
    const existed = await fs.stat(target).then(
      () => true,
      () => false,
    );
    const temp = path.join(dir, `.tmp.${pkg.filename}`);
    await fs.copyFile(pkg.path, temp);
    await fs.rename(temp, target);
    return { pkg: { ...pkg, path: target }, copied: !existed };
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
      const brought: { pkg: PackageFile; copied: boolean }[] = [];
      try {
        for (const pkg of packages) {
          const item = await bringIn(pkg);
          brought.push(item);
          await signPackage(item.pkg.path);
        }
        const result = await repo.add(
          brought.map((item) => item.pkg),
          { removeOld: true },
        );
        logger.info('published packages', { packages: result.added.map((entry) => entry.filename) });
        return { added: result.added, replaced: result.replaced };
      } catch (error) {
        for (const item of brought) {
          if (item.copied) await fs.rm(item.pkg.path, { force: true });
        }
        throw error;
      }
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
      const orphans = names.filter(
        (file) =>
          (/\.pkg\.tar(\.[a-z0-9]+)?\.sig$/.test(file) && !present.has(file.slice(0, -'.sig'.length))) ||
          (file.startsWith('.tmp.') && file.includes('.pkg.tar')) ||
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
      const again: PackageFile[] = [];
      for (const entry of entries) {
        const file = path.join(dir, path.basename(entry.filename));
        await signPackage(file);
        again.push(await readPackage(file));
      }
      if (again.length > 0) await repo.add(again);
      else await repo.resign();
    },
  };
  return repository;
}
