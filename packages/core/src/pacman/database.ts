import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { extract } from 'tar-stream';
import type { RepoEntry } from '../contracts/publisher.js';
import type { Signer } from '../contracts/signer.js';
import { InputError, InvalidDatabaseError, InvalidPackageError, LockedError, NotFoundError } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';
import { formatDesc, formatFiles, parseDesc } from './desc.js';
import { readPackage } from './package-reader.js';
import { TAR_END, tarDirectory, tarFile } from './tar.js';
import type { PackageFile } from './types.js';
import { vercmp } from './vercmp.js';

// --- Format ---------------------------------------------------------------------------------------
//
// Both archives are a concatenation of gzip members: one member per package entry (its directory,
// `desc`, and for the files database `files`), then one member holding the end-of-archive blocks.
// gzip readers (libarchive, zlib, gzip) read concatenated members as one stream, so pacman sees an
// ordinary tar.gz. Keeping each entry in its own member lets an add or a remove copy the other
// entries' compressed bytes as they are, located through a small index file beside the database,
// instead of re-reading package files or re-compressing the whole database.

/** Version of the index file format. */
const INDEX_VERSION = 1;
/** gzip level of entry members: entries are small, higher levels gain little. */
const GZIP_LEVEL = 6;
/** Package files read at once when adding many. */
const READ_CONCURRENCY = 8;
/** repo-add refuses package signatures larger than this. */
const MAX_SIGNATURE_SIZE = 16384;

/** Byte range of one gzip member inside an archive file. */
type Range = readonly [offset: number, length: number];

interface IndexEntry extends RepoEntry {
  /** range in the db archive */
  db: Range;
  /** range in the files archive */
  files: Range;
}

interface IndexFile {
  version: number;
  /** fingerprints of the archives this index describes */
  db: Fingerprint;
  files: Fingerprint;
  entries: IndexEntry[];
}

interface Fingerprint {
  size: number;
  mtimeMs: number;
  ino: number;
}

/** An entry held in memory while a change is prepared: its members, compressed. */
interface Member {
  entry: RepoEntry;
  db: Buffer;
  files: Buffer;
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
  private readonly lockPath: string;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(dbPath: string, options: RepoDatabaseOptions) {
    this.dbPath = dbPath;
    this.dir = path.dirname(dbPath);
    this.name = path.basename(dbPath).slice(0, -'.db.tar.gz'.length);
    this.filesPath = path.join(this.dir, `${this.name}.files.tar.gz`);
    this.indexPath = path.join(this.dir, `.${this.name}.serene-index.json`);
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
      await this.write([]);
    });
  }

  /** The entries of the database, sorted by name. */
  list(): Promise<RepoEntry[]> {
    return this.exclusive(async () => (await this.load()).map((member) => member.entry));
  }

  /**
   * Adds package files (paths, or packages already read), replacing the entries of the same
   * pkgnames. All files are read and checked first: if one is not a valid package, nothing changes.
   */
  add(packages: readonly (string | PackageFile)[], options: AddOptions = {}): Promise<AddResult> {
    return this.exclusive(async () => {
      const read = await readAll(packages);
      const members = await this.load();
      const byName = new Map(members.map((member) => [member.entry.name, member]));
      const result: AddResult = { added: [], replaced: [], skipped: [], deleted: [] };
      const toDelete: string[] = [];
      for (const { pkg, pgpsig } of read) {
        const info = pkg.pkginfo;
        const old = byName.get(info.pkgname);
        if (old && old.entry.version === info.pkgver && options.onlyNew) {
          result.skipped.push({ file: pkg.path, reason: `an entry for '${info.pkgname}-${info.pkgver}' exists` });
          continue;
        }
        if (old && options.preventDowngrade && vercmp(old.entry.version, info.pkgver) > 0) {
          result.skipped.push({
            file: pkg.path,
            reason: `a newer version for '${info.pkgname}' is already present (${old.entry.version})`,
          });
          continue;
        }
        if (old) {
          result.replaced.push(old.entry);
          if (options.removeOld && old.entry.version !== info.pkgver && old.entry.filename !== pkg.filename) {
            toDelete.push(path.join(path.dirname(pkg.path), old.entry.filename));
          }
        }
        const member = await createMember(pkg, pgpsig);
        byName.set(info.pkgname, member);
        result.added.push(member.entry);
      }
      if (result.added.length > 0 || !(await exists(this.dbPath))) {
        await this.write([...byName.values()]);
      }
      for (const file of toDelete) {
        for (const doomed of [file, `${file}.sig`]) {
          if (await fs.rm(doomed).then(
            () => true,
            () => false,
          )) {
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
      const members = await this.load();
      const byName = new Map(members.map((member) => [member.entry.name, member]));
      const missing = names.filter((name) => !byName.has(name));
      if (missing.length > 0) {
        throw new NotFoundError(`package matching '${missing.join("', '")}' not found in ${this.name}`);
      }
      const removed: RepoEntry[] = [];
      for (const name of new Set(names)) {
        removed.push(byName.get(name)!.entry);
        byName.delete(name);
      }
      await this.write([...byName.values()]);
      return removed;
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
      try {
        const handle = await fs.open(this.lockPath, 'wx');
        await handle.writeFile(`${process.pid}\n`);
        await handle.close();
        return () => fs.rm(this.lockPath, { force: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = Number.parseInt(await fs.readFile(this.lockPath, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && !isAlive(holder)) {
        this.logger.warn('removing stale repository lock', { lock: this.lockPath, pid: holder });
        await fs.rm(this.lockPath, { force: true });
        continue;
      }
      if (Date.now() >= deadline) {
        throw new LockedError(
          `failed to acquire lockfile: ${this.lockPath}${Number.isInteger(holder) ? ` (held by process ${holder})` : ''}`,
        );
      }
      await sleep(Math.min(25 * 2 ** Math.min(attempt, 4), 250));
    }
  }

  /** The current entries with their compressed members, from the index or, failing that, the archives. */
  private async load(): Promise<Member[]> {
    const [dbStat, filesStat] = await Promise.all([statOf(this.dbPath), statOf(this.filesPath)]);
    if (!dbStat) return [];
    const index = await this.readIndex();
    if (index && filesStat && sameFile(index.db, dbStat) && sameFile(index.files, filesStat)) {
      const [db, files] = await Promise.all([fs.readFile(this.dbPath), fs.readFile(this.filesPath)]);
      if (db.length === index.db.size && files.length === index.files.size) {
        return index.entries.map(({ db: dbRange, files: filesRange, ...entry }) => ({
          entry,
          db: slice(db, dbRange),
          files: slice(files, filesRange),
        }));
      }
    }
    this.logger.info('reading repository database', { db: this.dbPath });
    return this.readArchives(filesStat !== undefined);
  }

  private async readIndex(): Promise<IndexFile | undefined> {
    try {
      const index = JSON.parse(await fs.readFile(this.indexPath, 'utf8')) as IndexFile;
      return index.version === INDEX_VERSION ? index : undefined;
    } catch {
      return undefined;
    }
  }

  /** Reads entries from archives written by anyone (repo-add, or us without an index). */
  private async readArchives(withFiles: boolean): Promise<Member[]> {
    const db = await readEntries(this.dbPath);
    const files = withFiles ? await readEntries(this.filesPath) : new Map<string, Map<string, Buffer>>();
    const members: Member[] = [];
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
      members.push({
        entry,
        db: gzipMember(entryBlocks(dirName, desc)),
        files: gzipMember(entryBlocks(dirName, desc, filesText)),
      });
    }
    return members;
  }

  /** Writes both archives from `members`, signs them, rotates them into place, then the index. */
  private async write(members: Member[]): Promise<void> {
    const keys = new Map(members.map((member) => [member, Buffer.from(entryDir(member.entry))]));
    members.sort((a, b) => Buffer.compare(keys.get(a)!, keys.get(b)!));
    const end = gzipMember([TAR_END]);
    const index: IndexEntry[] = [];
    let dbOffset = 0;
    let filesOffset = 0;
    for (const member of members) {
      index.push({
        ...member.entry,
        db: [dbOffset, member.db.length],
        files: [filesOffset, member.files.length],
      });
      dbOffset += member.db.length;
      filesOffset += member.files.length;
    }
    // both written (and signed) side by side; then rotated files first, so that a reader who sees
    // the new db finds the new files database already in place
    const [filesTemp, dbTemp] = await Promise.all([
      this.prepareArchive(this.filesPath, [...members.map((m) => m.files), end]),
      this.prepareArchive(this.dbPath, [...members.map((m) => m.db), end]),
    ]);
    const filesStat = await this.rotateArchive(filesTemp, this.filesPath);
    const dbStat = await this.rotateArchive(dbTemp, this.dbPath);
    const indexFile: IndexFile = { version: INDEX_VERSION, db: dbStat, files: filesStat, entries: index };
    const temp = `${this.indexPath}.tmp`;
    await fs.writeFile(temp, JSON.stringify(indexFile));
    await fs.rename(temp, this.indexPath);
  }

  /** Writes one archive beside the old one (and signs it); returns the temp file. */
  private async prepareArchive(target: string, chunks: Buffer[]): Promise<string> {
    const temp = path.join(this.dir, `.tmp.${path.basename(target)}`);
    const handle = await fs.open(temp, 'w', 0o644);
    try {
      await handle.writev(chunks);
      await handle.sync();
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
    const seconds = Math.max(Math.floor(Date.now() / 1000), previous ? Math.floor(previous.mtimeMs / 1000) + 1 : 0);
    await fs.utimes(temp, seconds, seconds);
    if (this.signer) await fs.utimes(`${temp}.sig`, seconds, seconds);
    if (previous) {
      await fs.rm(`${target}.old`, { force: true });
      await fs.link(target, `${target}.old`).catch(() => fs.copyFile(target, `${target}.old`));
    }
    await fs.rename(temp, target);
    if (this.signer) {
      await fs.rename(`${temp}.sig`, `${target}.sig`);
    } else {
      await fs.rm(`${target}.sig`, { force: true });
    }
    await this.ensureLinks();
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
        await fs.rm(`${link}.sig`, { force: true });
      }
    }
  }
}

// --- Internal helpers -------------------------------------------------------------------------------

function entryDir(entry: RepoEntry): string {
  return `${entry.name}-${entry.version}`;
}

/** The tar blocks of one entry: its directory, `desc`, and (for the files database) `files`. */
function entryBlocks(dirName: string, desc: Buffer, files?: Buffer): Buffer[] {
  const mtime = Math.floor(Date.now() / 1000);
  const blocks = [...tarDirectory(`${dirName}/`, mtime), ...tarFile(`${dirName}/desc`, desc, mtime)];
  if (files) blocks.push(...tarFile(`${dirName}/files`, files, mtime));
  return blocks;
}

async function createMember(pkg: PackageFile, pgpsig: string | undefined): Promise<Member> {
  const info = pkg.pkginfo;
  const dirName = `${info.pkgname}-${info.pkgver}`;
  const desc = Buffer.from(formatDesc(pkg, pgpsig));
  const files = Buffer.from(formatFiles(pkg.files));
  const db = gzipMember(entryBlocks(dirName, desc));
  const filesMember = gzipMember(entryBlocks(dirName, desc, files));
  return {
    entry: {
      name: info.pkgname,
      base: info.pkgbase,
      version: info.pkgver,
      filename: pkg.filename,
      arch: info.arch ?? 'any',
      signed: pgpsig !== undefined,
    },
    db,
    files: filesMember,
  };
}

/** One gzip member; synchronous, as members are small and the thread-pool round trip costs more. */
function gzipMember(chunks: Buffer[]): Buffer {
  return zlib.gzipSync(Buffer.concat(chunks), { level: GZIP_LEVEL });
}

/** Reads every package first, with its signature, so that one bad file changes nothing. */
async function readAll(
  packages: readonly (string | PackageFile)[],
): Promise<{ pkg: PackageFile; pgpsig: string | undefined }[]> {
  const problems: string[] = [];
  const read: { pkg: PackageFile; pgpsig: string | undefined }[] = [];
  const seen = new Map<string, string>();
  // read several at a time (I/O and hashing overlap), then check them in the given order
  const results: ({ pkg: PackageFile } | { error: unknown })[] = new Array(packages.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < packages.length; i = next++) {
      const item = packages[i]!;
      try {
        results[i] = { pkg: typeof item === 'string' ? await readPackageFile(item) : item };
      } catch (error) {
        results[i] = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, packages.length) }, worker));
  for (const result of results) {
    try {
      if ('error' in result) throw result.error;
      const pkg = result.pkg;
      const earlier = seen.get(pkg.pkginfo.pkgname);
      if (earlier) {
        throw new InputError(`'${pkg.path}' and '${earlier}' are both packages of '${pkg.pkginfo.pkgname}'`);
      }
      seen.set(pkg.pkginfo.pkgname, pkg.path);
      read.push({ pkg, pgpsig: await readSignature(pkg.path) });
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      problems.push(error.message);
    }
  }
  if (problems.length === 1) throw new InvalidPackageError(problems[0]!);
  if (problems.length > 1) throw new InvalidPackageError(problems.join('; '));
  return read;
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

function slice(buffer: Buffer, [offset, length]: Range): Buffer {
  return buffer.subarray(offset, offset + length);
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

/** Points `link` at `target` (relative), replacing whatever is there atomically. */
async function symlink(target: string, link: string): Promise<void> {
  const current = await fs.readlink(link).catch(() => undefined);
  if (current === target) return;
  const temp = `${link}.tmp-link`;
  await fs.rm(temp, { force: true });
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
