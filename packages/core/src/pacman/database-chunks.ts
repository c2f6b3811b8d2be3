/**
 * The chunks of a repository database: how the two archives are cut into gzip members, and how a
 * change re-cuts only the chunks it touches (ADR 0002). Pure functions of buffers; no file is read
 * or written here.
 */
import * as zlib from 'node:zlib';
import type { RepoEntry } from '../contracts/publisher.js';
import { InvalidDatabaseError } from '../errors.js';
import { firstKey, formatRows, hasRow, type IndexEntry, parseRows, rowNames } from './database-index.js';
import { tarDirectory, tarFile } from './tar.js';

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

/** A chunk of the archives: its entries and its two gzip members. */
export interface Chunk {
  /** its entries, as the index holds them (parsed only when the chunk changes) */
  rows: Buffer;
  db: Buffer;
  files: Buffer;
}

/** An entry held uncompressed while a change is prepared. */
export interface Loose {
  entry: RepoEntry;
  /** `name-version`, the sort key */
  key: string;
  /** its tar bytes in the db archive (directory and `desc`) */
  db: Buffer;
  /** what follows them in the files archive (`files`) */
  extra: Buffer;
}

/** What a change starts from: the chunks an index describes, or every entry read from the archives. */
export interface State {
  chunks: Chunk[];
  loose: Loose[];
}

// --- Entries and chunks -----------------------------------------------------------------------------

export const EMPTY = Buffer.alloc(0);

/** The sort key of an entry: its directory name. */
export function keyOf(entry: RepoEntry): string {
  return `${entry.name}-${entry.version}`;
}

/**
 * Orders keys. Names and versions are ASCII (makepkg's rules), where UTF-16 order is byte order, as
 * repo-add's; the only need is that it is the same order everywhere.
 */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function toRepoEntry(entry: RepoEntry): RepoEntry {
  const { name, base, version, filename, arch, signed } = entry;
  return { name, base, version, filename, arch, signed };
}

/** Where an entry lies: in a chunk (its index), or loose (-1). */
export interface Location {
  entry: RepoEntry;
  chunk: number;
}

/** The entries of `state` named in `names`, with where they lie; a chunk's rows are parsed only when it holds one. */
export function locate(state: State, names: readonly string[]): Map<string, Location> {
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
export function entriesOf(state: State): RepoEntry[] {
  if (state.loose.length > 0) {
    return [...state.loose].sort((a, b) => compareKeys(a.key, b.key)).map((loose) => loose.entry);
  }
  return state.chunks.flatMap((chunk) => rowsOf(chunk).map(toRepoEntry));
}

export function rowsOf(chunk: Chunk): IndexEntry[] {
  try {
    return parseRows(chunk.rows);
  } catch (error) {
    throw new InvalidDatabaseError('the database index is damaged (delete it to have it rebuilt)', {
      cause: error,
    });
  }
}

/** An entry's tar bytes (directory, `desc`, then `files`), split as {@link Loose} keeps them. */
export function looseEntry(entry: RepoEntry, desc: Buffer, files: Buffer, mtime: number): Loose {
  const dirName = keyOf(entry);
  return {
    entry,
    key: dirName,
    db: Buffer.concat([...tarDirectory(`${dirName}/`, mtime), ...tarFile(`${dirName}/desc`, desc, mtime)]),
    extra: Buffer.concat(tarFile(`${dirName}/files`, files, mtime)),
  };
}

/** The entries of a chunk, uncompressed, from its files member (see the invariant above). */
export function loosen(chunk: Chunk): Loose[] {
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
export function plan(state: State, removed: ReadonlyMap<string, Location>, additions: Loose[]): Chunk[] {
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
export function cut(run: Loose[]): Chunk[] {
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
export function gzip(data: Buffer): Buffer {
  const member = zlib.gzipSync(data, { level: GZIP_LEVEL });
  return member.byteLength * 2 < member.buffer.byteLength ? Buffer.from(member) : member;
}

/** Joins views that lie next to each other in the same buffer (unchanged chunks), for fewer writes. */
export function coalesce(parts: Buffer[]): Buffer[] {
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
