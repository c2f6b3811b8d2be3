import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createLimiter } from '../concurrency.js';
import type { RepoEntry } from '../contracts/publisher.js';
import type { Signer } from '../contracts/signer.js';
import { removeFile } from '../durable.js';
import { InputError, NotFoundError } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';
import {
  EMPTY,
  entriesOf,
  type Location,
  type Loose,
  locate,
  plan,
  type State,
  toRepoEntry,
} from './database-chunks.js';
import { parseIndex } from './database-index.js';
import { acquireLock } from './database-lock.js';
import { readAll, readArchives } from './database-read.js';
import {
  type DatabasePaths,
  ensureLinks,
  exists,
  resignDatabase,
  sameFile,
  statOf,
  writeDatabase,
} from './database-write.js';
import type { PackageFile } from './types.js';
import { vercmp } from './vercmp.js';

// The database is written across these files: database-chunks.ts (the format: chunks of gzip
// members, and how a change re-cuts them), database-index.ts (the index beside the archives),
// database-read.ts (package files and archives read), database-write.ts (archives staged in full,
// then renamed into place), database-lock.ts (repo-add's lock file), and this one (the operations).

/** Options of {@link RepoDatabase.open}. */
export interface RepoDatabaseOptions {
  /** signs the database and files archives (`NAME.db.tar.gz.sig`); without it, old signatures are removed */
  signer?: Signer | undefined;
  logger?: Logger;
  /**
   * How long to wait for another process's lock file before failing with `LockedError`.
   * @default 60000
   */
  lockTimeoutMs?: number;
}

/** Options of {@link RepoDatabase.add}, as repo-add's flags. */
export interface AddOptions {
  /** `-R`: delete the file (and `.sig`) of the replaced version */
  removeOld?: boolean;
  /** `-n`: skip packages whose name and version are already in the database */
  onlyNew?: boolean;
  /** `-p`: skip packages older than the version in the database */
  preventDowngrade?: boolean;
  /**
   * Put `FILE.sig` into the entry as `%PGPSIG%`; repo-add of pacman 6.1 and later does it only
   * with `--include-sigs` (pacman then downloads `FILE.sig` beside the package).
   * @default true
   */
  includeSignatures?: boolean;
}

/** What an add changed. */
export interface AddResult {
  added: RepoEntry[];
  replaced: RepoEntry[];
  /** packages left out by `onlyNew` or `preventDowngrade`, with the reason */
  skipped: { file: string; reason: string }[];
  /** old package files deleted by `removeOld` */
  deleted: string[];
}

/**
 * A pacman repository database (`NAME.db.tar.gz` and `NAME.files.tar.gz` with their `NAME.db` and
 * `NAME.files` links), written natively: repo-add's entries, without running repo-add.
 *
 * @remarks Changes are atomic for readers (new archives are written beside the old ones and renamed
 * into place; the previous ones are kept as `.old` as repo-add does), serialized within this object,
 * and serialized with other processes (repo-add included) through repo-add's lock file
 * `NAME.db.tar.gz.lck`. A lock left by a dead process is taken over.
 */
export class RepoDatabase {
  /** absolute path of `NAME.db.tar.gz` */
  readonly dbPath: string;
  /** absolute path of `NAME.files.tar.gz` */
  readonly filesPath: string;
  /** the repository folder */
  readonly dir: string;
  /** the repository name (`NAME`) */
  readonly name: string;

  private readonly signer: Signer | undefined;
  private readonly logger: Logger;
  private readonly lockTimeoutMs: number;
  private readonly indexPath: string;
  /** the index of the first version (one member per entry), removed once the database is upgraded */
  private readonly legacyIndexPath: string;
  private readonly lockPath: string;
  private readonly serial = createLimiter(1);

  private constructor(dbPath: string, options: RepoDatabaseOptions) {
    this.dbPath = dbPath;
    this.dir = path.dirname(dbPath);
    this.name = path.basename(dbPath).slice(0, -'.db.tar.gz'.length);
    this.filesPath = path.join(this.dir, `${this.name}.files.tar.gz`);
    this.indexPath = path.join(this.dir, `.${this.name}.serene-index`);
    this.legacyIndexPath = `${this.indexPath}.json`;
    this.lockPath = `${dbPath}.lck`;
    this.signer = options.signer;
    this.logger = options.logger ?? createNoopLogger();
    this.lockTimeoutMs = options.lockTimeoutMs ?? 60_000;
  }

  /**
   * Opens the database at `dbPath` (`DIR/NAME.db.tar.gz`, relative to the working folder). Nothing
   * is read or written until the first call.
   */
  static async open(dbPath: string, options: RepoDatabaseOptions = {}): Promise<RepoDatabase> {
    const absolute = path.resolve(dbPath);
    const base = path.basename(absolute);
    if (!base.endsWith('.db.tar.gz') || base === '.db.tar.gz') {
      throw new InputError(
        `'${dbPath}' does not have a valid database archive extension (serene writes NAME.db.tar.gz)`,
      );
    }
    const stat = await fs.stat(path.dirname(absolute)).catch(() => undefined);
    if (!stat?.isDirectory()) {
      throw new InputError(`${path.dirname(absolute)} does not exist or is not a directory`);
    }
    return new RepoDatabase(absolute, options);
  }

  /** Creates an empty database when none exists, and makes sure links and signatures are in place. */
  init(): Promise<void> {
    return this.exclusive(async () => {
      if (await exists(this.dbPath)) {
        await ensureLinks(this.paths, await exists(`${this.dbPath}.sig`));
        if (this.signer && !(await exists(`${this.dbPath}.sig`))) await this.resignArchives();
        return;
      }
      await this.write({ chunks: [], loose: [] }, new Map(), []);
    });
  }

  /** The entries of the database, sorted by name. */
  list(): Promise<RepoEntry[]> {
    return this.exclusive(async () => entriesOf(await this.load(false)));
  }

  /**
   * Adds package files (paths, or packages already read), replacing the entries of the same
   * pkgnames. All files are read and checked first: if one is not a valid package, nothing changes.
   */
  add(packages: readonly (string | PackageFile)[], options: AddOptions = {}): Promise<AddResult> {
    return this.exclusive(async () => {
      const read = await readAll(packages, options.includeSignatures ?? true);
      const state = await this.load(true);
      const byName = locate(
        state,
        read.map(({ loose }) => loose.entry.name),
      );
      const result: AddResult = { added: [], replaced: [], skipped: [], deleted: [] };
      const toDelete: string[] = [];
      const replaced = new Map<string, Location>();
      const additions: Loose[] = [];
      for (const { file, loose } of read) {
        const { name, version } = loose.entry;
        const old = byName.get(name)?.entry;
        if (old && old.version === version && options.onlyNew) {
          result.skipped.push({ file, reason: `an entry for '${name}-${version}' exists` });
          continue;
        }
        if (old && options.preventDowngrade && vercmp(old.version, version) > 0) {
          result.skipped.push({
            file,
            reason: `a newer version for '${name}' is already present (${old.version})`,
          });
          continue;
        }
        if (old) {
          result.replaced.push(toRepoEntry(old));
          replaced.set(name, byName.get(name)!);
          if (options.removeOld && old.version !== version && old.filename !== loose.entry.filename) {
            toDelete.push(path.join(path.dirname(file), old.filename));
          }
        }
        additions.push(loose);
        result.added.push(loose.entry);
      }
      if (additions.length > 0 || !(await exists(this.dbPath))) {
        await this.write(state, replaced, additions);
      }
      for (const file of toDelete) {
        for (const doomed of [file, `${file}.sig`]) {
          if (
            await fs.rm(doomed).then(
              () => true,
              () => false,
            )
          ) {
            result.deleted.push(doomed);
          }
        }
      }
      return result;
    });
  }

  /**
   * Removes entries by pkgname. An unknown name fails the whole call with `NotFoundError` and
   * nothing changes. Package files are left alone (as repo-remove does).
   */
  remove(names: readonly string[]): Promise<RepoEntry[]> {
    return this.exclusive(async () => {
      if (!(await exists(this.dbPath))) {
        throw new NotFoundError(`repository file '${this.dbPath}' was not found`);
      }
      const state = await this.load(true);
      const byName = locate(state, names);
      const missing = names.filter((name) => !byName.has(name));
      if (missing.length > 0) {
        throw new NotFoundError(`package matching '${missing.join("', '")}' not found in ${this.name}`);
      }
      await this.write(state, byName, []);
      return [...byName.values()].map(({ entry }) => toRepoEntry(entry));
    });
  }

  /** Signs the current archives again (after signing was turned on, or the key changed). */
  resign(): Promise<void> {
    return this.exclusive(() => this.resignArchives());
  }

  /** Runs `task` after every earlier call of this object, holding the lock file. */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.serial(async () => {
      const release = await acquireLock(this.lockPath, {
        timeoutMs: this.lockTimeoutMs,
        logger: this.logger,
      });
      try {
        return await task();
      } finally {
        await release();
      }
    });
  }

  /**
   * The current entries: the chunks the index describes (with their members when `members`), or,
   * when there is no index for these archives, every entry read from the archives.
   */
  private async load(members: boolean): Promise<State> {
    const [dbStat, filesStat] = await Promise.all([statOf(this.dbPath), statOf(this.filesPath)]);
    if (!dbStat) return { chunks: [], loose: [] };
    const index = parseIndex(await fs.readFile(this.indexPath).catch(() => EMPTY));
    if (index && filesStat && sameFile(index.db, dbStat) && sameFile(index.files, filesStat)) {
      const [db, files] = members
        ? await Promise.all([fs.readFile(this.dbPath), fs.readFile(this.filesPath)])
        : [EMPTY, EMPTY];
      if (!members || (db.length === index.db.size && files.length === index.files.size)) {
        const chunks = index.chunks.map(
          ({ db: [dbOffset, dbLength], files: [filesOffset, filesLength], rows }) => ({
            rows,
            db: db.subarray(dbOffset, dbOffset + dbLength),
            files: files.subarray(filesOffset, filesOffset + filesLength),
          }),
        );
        return { chunks, loose: [] };
      }
    }
    this.logger.info('reading repository database', { db: this.dbPath });
    return {
      chunks: [],
      loose: await readArchives(this.dbPath, filesStat !== undefined ? this.filesPath : undefined),
    };
  }

  /**
   * Writes both archives from `state` less the entries named in `removed`, plus `additions`, signed,
   * with their index: only the chunks that change are re-compressed, and nothing is in place before
   * everything is written in full (see database-write.ts).
   */
  private async write(
    state: State,
    removed: ReadonlyMap<string, Location>,
    additions: Loose[],
  ): Promise<void> {
    await writeDatabase(this.paths, plan(state, removed, additions), this.signer);
    if (state.loose.length > 0) await removeFile(this.legacyIndexPath);
  }

  private async resignArchives(): Promise<void> {
    if (this.signer) await resignDatabase(this.paths, this.signer);
  }

  private get paths(): DatabasePaths {
    return { dir: this.dir, dbPath: this.dbPath, filesPath: this.filesPath, indexPath: this.indexPath };
  }
}
