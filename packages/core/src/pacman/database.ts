import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import type { RepoEntry } from '../contracts/publisher.js';
import type { Signer } from '../contracts/signer.js';
import {
  InputError,
  InvalidDatabaseError,
  InvalidPackageError,
  LockedError,
  NotFoundError,
} from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';
import {
  type Fingerprint,
  firstKey,
  formatIndex,
  formatRows,
  hasRow,
  type IndexEntry,
  parseIndex,
  parseRows,
  rowNames,
} from './database-index.js';
import { formatDesc, formatFiles, parseDesc } from './desc.js';
import { readPackage } from './package-reader.js';
import { TAR_END, tarDirectory, tarFile } from './tar.js';
import type { PackageFile } from './types.js';
import { vercmp } from './vercmp.js';

// --- Format ---------------------------------------------------------------------------------------
//
// Both archives are a concatenation of gzip members: one member per *chunk* of consecutive entries
// (each entry is its directory, `desc`, and for the files database `files`), then one member holding
// the end-of-archive blocks. gzip readers (libarchive, zlib, gzip) read concatenated members as one
// stream, so pacman sees an ordinary tar.gz. A change re-compresses only the chunks it touches and
// copies the others' compressed bytes as they are, located through a small index file beside the
// database, instead of re-reading package files or re-compressing the whole database (ADR 0002).
//
// Invariant: in every chunk, an entry's tar bytes in the db archive are a prefix of its tar bytes in
// the files archive (directory and `desc`, then `files`), so a chunk is re-read from the files
// archive alone.

/** gzip level of the members. */
const GZIP_LEVEL = 6;
/** Entries per chunk when a run of entries is cut into chunks (full builds, splits). */
const CHUNK_ENTRIES = 32;
/** A chunk grows by adds up to this many entries before it is split. */
const MAX_CHUNK_ENTRIES = 64;
/** A rewritten chunk left with fewer entries than this is merged with a neighbour. */
const MIN_CHUNK_ENTRIES = 8;
/** Package files read at once when adding many. */
const READ_CONCURRENCY = 8;
/** A lock file without a pid older than this is stale (see `lock`). */
const EMPTY_LOCK_STALE_MS = 10_000;
/** repo-add refuses package signatures larger than this. */
const MAX_SIGNATURE_SIZE = 16384;

/** A chunk of the archives: its entries and its two gzip members. */
interface Chunk {
  /** its entries, as the index holds them (parsed only when the chunk changes) */
  rows: Buffer;
  db: Buffer;
  files: Buffer;
}

/** An entry held uncompressed while a change is prepared. */
interface Loose {
  entry: RepoEntry;
  /** `name-version`, the sort key */
  key: string;
  /** its tar bytes in the db archive (directory and `desc`) */
  db: Buffer;
  /** what follows them in the files archive (`files`) */
  extra: Buffer;
}

/** What a change starts from: the chunks an index describes, or every entry read from the archives. */
interface State {
  chunks: Chunk[];
  loose: Loose[];
}

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
  private queue: Promise<unknown> = Promise.resolve();

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
        await this.ensureLinks();
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

  // --- Internal helpers -----------------------------------------------------------------------------

  /** Runs `task` after every earlier call of this object, holding the lock file. */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const release = await this.lock();
      try {
        return await task();
      } finally {
        await release();
      }
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async lock(): Promise<() => Promise<void>> {
    const deadline = Date.now() + this.lockTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      if (await this.createLock()) return () => unlinkIfExists(this.lockPath);
      const [text, stat] = await Promise.all([
        fs.readFile(this.lockPath, 'utf8').catch(() => ''),
        fs.stat(this.lockPath).catch(() => undefined),
      ]);
      const holder = Number.parseInt(text, 10);
      const known = Number.isInteger(holder) && holder > 0;
      // a lock without a pid was left by a writer killed between creating it and writing to it
      // (repo-add's window; ours has none): stale once older than any such window
      const stale = known
        ? holder !== process.pid && !isAlive(holder)
        : stat !== undefined && Date.now() - stat.mtimeMs > EMPTY_LOCK_STALE_MS;
      if (stale) {
        this.logger.warn('removing stale repository lock', {
          lock: this.lockPath,
          pid: known ? holder : undefined,
        });
        await unlinkIfExists(this.lockPath);
        continue;
      }
      if (Date.now() >= deadline) {
        throw new LockedError(
          `failed to acquire lockfile: ${this.lockPath}${known ? ` (held by process ${holder})` : ''}`,
        );
      }
      await sleep(Math.min(25 * 2 ** Math.min(attempt, 4), 250));
    }
  }

  /**
   * Creates the lock file with our pid already in it (written aside, then linked into place), so
   * that a writer killed at any moment never leaves an empty one; false when it exists.
   */
  private async createLock(): Promise<boolean> {
    const temp = path.join(
      this.dir,
      `.${path.basename(this.lockPath)}.${process.pid}.${randomBytes(4).toString('hex')}`,
    );
    await fs.writeFile(temp, `${process.pid}\n`);
    try {
      await fs.link(temp, this.lockPath);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      await unlinkIfExists(temp);
    }
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
    return { chunks: [], loose: await this.readArchives(filesStat !== undefined) };
  }

  /** Reads entries from archives written by anyone (repo-add, or us without an index). */
  private async readArchives(withFiles: boolean): Promise<Loose[]> {
    const db = await readEntries(this.dbPath);
    const files = withFiles ? await readEntries(this.filesPath) : new Map<string, Map<string, Buffer>>();
    const loose: Loose[] = [];
    const mtime = Math.floor(Date.now() / 1000);
    for (const [dirName, contents] of db) {
      const desc = contents.get('desc');
      if (!desc) {
        throw new InvalidDatabaseError(`repository file '${this.dbPath}' is not a proper pacman database`);
      }
      const fields = parseDesc(desc.toString('utf8'));
      const name = fields.get('NAME')?.[0];
      const version = fields.get('VERSION')?.[0];
      const filename = fields.get('FILENAME')?.[0];
      if (!name || !version || !filename || dirName !== `${name}-${version}`) {
        throw new InvalidDatabaseError(`repository file '${this.dbPath}' has a malformed entry '${dirName}'`);
      }
      const entry: RepoEntry = {
        name,
        version,
        filename,
        base: fields.get('BASE')?.[0],
        arch: fields.get('ARCH')?.[0] ?? 'any',
        signed: fields.has('PGPSIG'),
      };
      const filesText = files.get(dirName)?.get('files') ?? Buffer.from('%FILES%\n');
      loose.push(looseEntry(entry, desc, filesText, mtime));
    }
    return loose;
  }

  /**
   * Writes both archives from `state` less the entries named in `removed`, plus `additions`; signs
   * them, rotates them into place, then writes the index. Only the chunks that change are
   * re-compressed.
   */
  private async write(
    state: State,
    removed: ReadonlyMap<string, Location>,
    additions: Loose[],
  ): Promise<void> {
    const chunks = plan(state, removed, additions);
    const end = gzip(TAR_END);
    // both written (and signed) side by side; then rotated files first, so that a reader who sees
    // the new db finds the new files database already in place
    const prepared = await Promise.allSettled([
      this.prepareArchive(this.filesPath, [...coalesce(chunks.map((chunk) => chunk.files)), end]),
      this.prepareArchive(this.dbPath, [...coalesce(chunks.map((chunk) => chunk.db)), end]),
    ]);
    const failed = prepared.find((result) => result.status === 'rejected');
    if (failed) {
      // a signer that failed (no key, pinentry cancelled) leaves no temp files behind
      for (const target of [this.filesPath, this.dbPath]) {
        const temp = path.join(this.dir, `.tmp.${path.basename(target)}`);
        for (const file of [temp, `${temp}.sig`, `${temp}.sig.tmp`]) await unlinkIfExists(file);
      }
      throw failed.reason;
    }
    const [filesTemp, dbTemp] = prepared.map(
      (result) => (result as PromiseFulfilledResult<string>).value,
    ) as [string, string];
    const filesStat = await this.rotateArchive(filesTemp, this.filesPath);
    const dbStat = await this.rotateArchive(dbTemp, this.dbPath);
    await this.ensureLinks();
    const offsets = { db: 0, files: 0 };
    const index = formatIndex({
      db: dbStat,
      files: filesStat,
      chunks: chunks.map(({ rows, db, files }) => {
        const chunk = {
          db: [offsets.db, db.length] as const,
          files: [offsets.files, files.length] as const,
          rows,
        };
        offsets.db += db.length;
        offsets.files += files.length;
        return chunk;
      }),
    });
    const temp = `${this.indexPath}.tmp`;
    const handle = await fs.open(temp, 'w', 0o644);
    try {
      await handle.writev(index);
    } finally {
      await handle.close();
    }
    await fs.rename(temp, this.indexPath);
    if (state.loose.length > 0) await unlinkIfExists(this.legacyIndexPath);
  }

  /** Writes one archive beside the old one (and signs it); returns the temp file. */
  private async prepareArchive(target: string, chunks: Buffer[]): Promise<string> {
    const temp = path.join(this.dir, `.tmp.${path.basename(target)}`);
    const handle = await fs.open(temp, 'w', 0o644);
    try {
      await handle.writev(chunks);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    if (this.signer) await this.signFile(temp);
    return temp;
  }

  /** Keeps the old archive as `.old` and renames the prepared one (and its signature) into place. */
  private async rotateArchive(temp: string, target: string): Promise<Fingerprint> {
    const previous = await fs.stat(target).catch(() => undefined);
    // pacman (curl's If-Modified-Since, for http:// and file:// alike) compares whole seconds: a
    // database replaced within the second of the last sync would look unchanged. Each version gets
    // a whole-second mtime later than the one it replaces.
    const seconds = Math.max(
      Math.floor(Date.now() / 1000),
      previous ? Math.floor(previous.mtimeMs / 1000) + 1 : 0,
    );
    await fs.utimes(temp, seconds, seconds);
    if (this.signer) await fs.utimes(`${temp}.sig`, seconds, seconds);
    if (previous) {
      await unlinkIfExists(`${target}.old`);
      await fs.link(target, `${target}.old`).catch(() => fs.copyFile(target, `${target}.old`));
    }
    await fs.rename(temp, target);
    if (this.signer) {
      await fs.rename(`${temp}.sig`, `${target}.sig`);
    } else {
      await unlinkIfExists(`${target}.sig`);
    }
    return fingerprint(await fs.stat(target));
  }

  private async signFile(file: string): Promise<void> {
    const signature = await this.signer!.sign(createReadStream(file, { highWaterMark: 1 << 20 }));
    const temp = `${file}.sig.tmp`;
    await fs.writeFile(temp, signature);
    await fs.rename(temp, `${file}.sig`);
  }

  private async resignArchives(): Promise<void> {
    if (!this.signer) return;
    for (const target of [this.filesPath, this.dbPath]) {
      if (!(await exists(target))) continue;
      const signature = await this.signer.sign(createReadStream(target, { highWaterMark: 1 << 20 }));
      const temp = `${target}.sig.tmp`;
      await fs.writeFile(temp, signature);
      await fs.rename(temp, `${target}.sig`);
    }
    await this.ensureLinks();
  }

  /** `NAME.db -> NAME.db.tar.gz` and `NAME.files -> NAME.files.tar.gz`, and `.sig` links that resolve. */
  private async ensureLinks(): Promise<void> {
    for (const target of [this.dbPath, this.filesPath]) {
      const link = target.slice(0, -'.tar.gz'.length);
      await symlink(path.basename(target), link);
      if (await exists(`${target}.sig`)) {
        await symlink(`${path.basename(target)}.sig`, `${link}.sig`);
      } else {
        await unlinkIfExists(`${link}.sig`);
      }
    }
  }
}

// --- Internal helpers -------------------------------------------------------------------------------

const EMPTY = Buffer.alloc(0);

/** The sort key of an entry: its directory name. */
function keyOf(entry: RepoEntry): string {
  return `${entry.name}-${entry.version}`;
}

/**
 * Orders keys. Names and versions are ASCII (makepkg's rules), where UTF-16 order is byte order, as
 * repo-add's; the only need is that it is the same order everywhere.
 */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toRepoEntry(entry: RepoEntry): RepoEntry {
  const { name, base, version, filename, arch, signed } = entry;
  return { name, base, version, filename, arch, signed };
}

/** Where an entry lies: in a chunk (its index), or loose (-1). */
interface Location {
  entry: RepoEntry;
  chunk: number;
}

/** The entries of `state` named in `names`, with where they lie; a chunk's rows are parsed only when it holds one. */
function locate(state: State, names: readonly string[]): Map<string, Location> {
  const wanted = new Set(names);
  const found = new Map<string, Location>();
  if (state.loose.length > 0) {
    for (const loose of state.loose) {
      if (wanted.has(loose.entry.name)) found.set(loose.entry.name, { entry: loose.entry, chunk: -1 });
    }
    return found;
  }
  const few = wanted.size <= 16 ? [...wanted] : undefined;
  for (const [i, chunk] of state.chunks.entries()) {
    const holds = few
      ? few.some((name) => hasRow(chunk.rows, name))
      : rowNames(chunk.rows).some((name) => wanted.has(name));
    if (!holds) continue;
    for (const entry of rowsOf(chunk)) {
      if (wanted.has(entry.name)) found.set(entry.name, { entry: toRepoEntry(entry), chunk: i });
    }
  }
  return found;
}

/** Every entry of `state`, sorted. */
function entriesOf(state: State): RepoEntry[] {
  if (state.loose.length > 0) {
    return [...state.loose].sort((a, b) => compareKeys(a.key, b.key)).map((loose) => loose.entry);
  }
  return state.chunks.flatMap((chunk) => rowsOf(chunk).map(toRepoEntry));
}

function rowsOf(chunk: Chunk): IndexEntry[] {
  try {
    return parseRows(chunk.rows);
  } catch (error) {
    throw new InvalidDatabaseError('the database index is damaged (delete it to have it rebuilt)', {
      cause: error,
    });
  }
}

/** An entry's tar bytes (directory, `desc`, then `files`), split as {@link Loose} keeps them. */
function looseEntry(entry: RepoEntry, desc: Buffer, files: Buffer, mtime: number): Loose {
  const dirName = keyOf(entry);
  return {
    entry,
    key: dirName,
    db: Buffer.concat([...tarDirectory(`${dirName}/`, mtime), ...tarFile(`${dirName}/desc`, desc, mtime)]),
    extra: Buffer.concat(tarFile(`${dirName}/files`, files, mtime)),
  };
}

/** The entries of a chunk, uncompressed, from its files member (see the invariant above). */
function loosen(chunk: Chunk): Loose[] {
  let tar: Buffer;
  try {
    tar = zlib.gunzipSync(chunk.files);
  } catch (error) {
    throw new InvalidDatabaseError('a chunk of the files database does not decompress', { cause: error });
  }
  const loose: Loose[] = [];
  let offset = 0;
  for (const entry of rowsOf(chunk)) {
    const dbEnd = offset + entry.dbLength;
    const end = offset + entry.filesLength;
    loose.push({
      entry: toRepoEntry(entry),
      key: keyOf(entry),
      db: tar.subarray(offset, dbEnd),
      extra: tar.subarray(dbEnd, end),
    });
    offset = end;
  }
  if (offset !== tar.length) {
    throw new InvalidDatabaseError('a chunk of the files database does not match its index');
  }
  return loose;
}

/**
 * The chunks of the new archives: the unchanged chunks of `state` as they are, and the entries of
 * the chunks that change (an entry removed or added, or merged into a neighbour for being too small)
 * re-cut and re-compressed.
 */
function plan(state: State, removed: ReadonlyMap<string, Location>, additions: Loose[]): Chunk[] {
  const { chunks } = state;
  // per chunk, its entries once it changes
  const changed: (Loose[] | undefined)[] = new Array(chunks.length);
  const open = (i: number): Loose[] => {
    changed[i] ??= loosen(chunks[i]!).filter((loose) => !removed.has(loose.entry.name));
    return changed[i]!;
  };
  for (const { chunk } of removed.values()) {
    if (chunk >= 0) open(chunk);
  }
  const firstKeys = chunks.map((chunk) => firstKey(chunk.rows));
  const run: Loose[] = state.loose.filter((loose) => !removed.has(loose.entry.name));
  for (const addition of additions) {
    if (chunks.length === 0) {
      run.push(addition);
    } else {
      open(chunkFor(firstKeys, addition.key)).push(addition);
    }
  }
  // a changed chunk left small takes in a neighbour; adjacent changed chunks are cut as one run
  changed.forEach((entries, i) => {
    if (entries && entries.length > 0 && entries.length < MIN_CHUNK_ENTRIES && chunks.length > 1) {
      open(i + 1 < chunks.length ? i + 1 : i - 1);
    }
  });
  const result: Chunk[] = [];
  for (const [i, chunk] of chunks.entries()) {
    const entries = changed[i];
    if (entries) {
      run.push(...entries);
    } else {
      result.push(...cut(run));
      run.length = 0;
      result.push(chunk);
    }
  }
  result.push(...cut(run));
  return result;
}

/** The chunk an entry with `key` goes to: the last one whose first key is not after it. */
function chunkFor(firstKeys: readonly string[], key: string): number {
  let low = 0;
  let high = firstKeys.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (compareKeys(firstKeys[middle]!, key) <= 0) low = middle;
    else high = middle - 1;
  }
  return low;
}

/** Sorts a run of entries and compresses it into chunks (one, unless it is larger than a chunk may be). */
function cut(run: Loose[]): Chunk[] {
  if (run.length === 0) return [];
  run.sort((a, b) => compareKeys(a.key, b.key));
  const count = run.length <= MAX_CHUNK_ENTRIES ? 1 : Math.ceil(run.length / CHUNK_ENTRIES);
  const chunks: Chunk[] = [];
  for (let i = 0; i < count; i++) {
    const part = run.slice(Math.floor((i * run.length) / count), Math.floor(((i + 1) * run.length) / count));
    chunks.push({
      rows: formatRows(
        part.map(({ entry, db, extra }) => ({
          ...entry,
          dbLength: db.length,
          filesLength: db.length + extra.length,
        })),
      ),
      db: gzip(Buffer.concat(part.map((loose) => loose.db))),
      files: gzip(Buffer.concat(part.flatMap((loose) => [loose.db, loose.extra]))),
    });
  }
  return chunks;
}

/**
 * One gzip member, in a buffer of its own size: zlib's synchronous output is a view of a larger
 * buffer, which would otherwise stay alive with it.
 */
function gzip(data: Buffer): Buffer {
  const member = zlib.gzipSync(data, { level: GZIP_LEVEL });
  return member.byteLength * 2 < member.buffer.byteLength ? Buffer.from(member) : member;
}

/** Joins views that lie next to each other in the same buffer (unchanged chunks), for fewer writes. */
function coalesce(parts: Buffer[]): Buffer[] {
  const result: Buffer[] = [];
  for (const part of parts) {
    const last = result[result.length - 1];
    if (last && last.buffer === part.buffer && last.byteOffset + last.length === part.byteOffset) {
      result[result.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + part.length);
    } else {
      result.push(part);
    }
  }
  return result;
}

/** A package read for an add: where it lies and its entry, ready to be written. */
interface ReadPackage {
  file: string;
  loose: Loose;
}

/**
 * Reads every package first, with its signature, so that one bad file changes nothing. Each is
 * reduced to its entry's tar bytes as soon as it is read, so that many packages take little memory.
 */
async function readAll(
  packages: readonly (string | PackageFile)[],
  includeSignatures: boolean,
): Promise<ReadPackage[]> {
  const problems: string[] = [];
  const read: ReadPackage[] = [];
  const seen = new Map<string, string>();
  const mtime = Math.floor(Date.now() / 1000);
  // read several at a time (I/O and hashing overlap), then check them in the given order
  type Result =
    | { name: string; file: string; loose: Loose }
    | { name: string; file: string; badSignature: unknown };
  const results: (Result | { error: unknown })[] = new Array(packages.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < packages.length; i = next++) {
      const item = packages[i]!;
      try {
        const pkg = typeof item === 'string' ? await readPackageFile(item) : item;
        const found = { name: pkg.pkginfo.pkgname, file: pkg.path };
        try {
          const pgpsig = includeSignatures ? await readSignature(pkg.path) : undefined;
          const desc = Buffer.from(formatDesc(pkg, pgpsig));
          results[i] = {
            ...found,
            loose: looseEntry(entryOf(pkg, pgpsig), desc, Buffer.from(formatFiles(pkg.files)), mtime),
          };
        } catch (error) {
          results[i] = { ...found, badSignature: error };
        }
      } catch (error) {
        results[i] = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, packages.length) }, worker));
  for (const result of results) {
    try {
      if ('error' in result) throw result.error;
      const earlier = seen.get(result.name);
      if (earlier) {
        throw new InputError(`'${result.file}' and '${earlier}' are both packages of '${result.name}'`);
      }
      seen.set(result.name, result.file);
      if ('badSignature' in result) throw result.badSignature;
      read.push({ file: result.file, loose: result.loose });
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      problems.push(error.message);
    }
  }
  if (problems.length === 1) throw new InvalidPackageError(problems[0]!);
  if (problems.length > 1) throw new InvalidPackageError(problems.join('; '));
  return read;
}

function entryOf(pkg: PackageFile, pgpsig: string | undefined): RepoEntry {
  const info = pkg.pkginfo;
  return {
    name: info.pkgname,
    base: info.pkgbase,
    version: info.pkgver,
    filename: pkg.filename,
    arch: info.arch ?? 'any',
    signed: pgpsig !== undefined,
  };
}

async function readPackageFile(file: string): Promise<PackageFile> {
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat?.isFile()) throw new InvalidPackageError(`file '${file}' not found`);
  return readPackage(path.resolve(file));
}

/** base64 of `FILE.sig` when it exists, with repo-add's checks. */
async function readSignature(file: string): Promise<string | undefined> {
  const signature = await fs.readFile(`${file}.sig`).catch(() => undefined);
  if (!signature) return undefined;
  if (signature.includes('BEGIN PGP SIGNATURE')) {
    throw new InvalidPackageError(`cannot use armored signatures for packages: ${file}.sig`);
  }
  if (signature.length > MAX_SIGNATURE_SIZE || signature.length === 0) {
    throw new InvalidPackageError(`invalid package signature file '${file}.sig'`);
  }
  return signature.toString('base64');
}

/** Reads a database archive into `entry dir -> file name -> contents`. */
async function readEntries(file: string): Promise<Map<string, Map<string, Buffer>>> {
  const entries = new Map<string, Map<string, Buffer>>();
  // loaded here: only databases without an index are read this way, and a CLI run should not pay for it
  const { extract } = await import('tar-stream');
  const parser = extract();
  parser.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: unknown) => {
      chunks.push(chunk as Buffer);
    });
    stream.on('end', () => {
      const name = header.name.replace(/^\.\//, '');
      const parts = name.split('/').filter((part) => part !== '');
      if (header.type === 'directory' && parts.length === 1) {
        if (!entries.has(parts[0]!)) entries.set(parts[0]!, new Map());
      } else if (header.type === 'file' && parts.length === 2) {
        const dir = entries.get(parts[0]!) ?? new Map<string, Buffer>();
        dir.set(parts[1]!, Buffer.concat(chunks));
        entries.set(parts[0]!, dir);
      } else {
        parser.destroy(new Error(`unexpected member '${name}'`));
        return;
      }
      next();
    });
    stream.on('error', next);
  });
  try {
    await pipeline(createReadStream(file), zlib.createGunzip(), parser);
  } catch (error) {
    throw new InvalidDatabaseError(`repository file '${file}' is not a proper pacman database`, {
      cause: error,
    });
  }
  return entries;
}

function fingerprint(stat: { size: number; mtimeMs: number; ino: number }): Fingerprint {
  return { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino };
}

function sameFile(a: Fingerprint, b: Fingerprint): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

async function statOf(file: string): Promise<Fingerprint | undefined> {
  const stat = await fs.stat(file).catch(() => undefined);
  return stat?.isFile() ? fingerprint(stat) : undefined;
}

async function exists(file: string): Promise<boolean> {
  return (await statOf(file)) !== undefined;
}

/** Removes a file; one that is not there is no error. */
async function unlinkIfExists(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Points `link` at `target` (relative), replacing whatever is there atomically. */
async function symlink(target: string, link: string): Promise<void> {
  const current = await fs.readlink(link).catch(() => undefined);
  if (current === target) return;
  const temp = `${link}.tmp-link`;
  await unlinkIfExists(temp);
  await fs.symlink(target, temp);
  await fs.rename(temp, link);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
