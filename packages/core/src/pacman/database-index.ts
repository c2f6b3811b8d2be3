/**
 * The index beside a repository database (`.NAME.serene-index`): which chunks the archives hold, where
 * each chunk's gzip members lie, and which entries each chunk holds (ADR 0002).
 *
 * @remarks A text format read without parsing every entry: a change touches one or two chunks, so
 * the rows of the others are kept as the strings they were read as and written back unchanged. The
 * layout, one field per line or tab:
 *
 * ```text
 * serene-repo-index 2
 * db SIZE MTIMEMS INO
 * files SIZE MTIMEMS INO
 * chunk DB_OFFSET DB_LENGTH FILES_OFFSET FILES_LENGTH ROWS_LENGTH
 * NAME\tVERSION\tFILENAME\tBASE\tARCH\tSIGNED\tDB_TAR_LENGTH\tFILES_TAR_LENGTH\n   (one per entry)
 * chunk ...
 * ```
 *
 * `ROWS_LENGTH` counts bytes. The file is handled as bytes: unchanged rows are views of the file
 * that was read, written back as they are. Fields are UTF-8, and escape `%`, tab and newline as `%25`,
 * `%09` and `%0A`.
 */
import type { RepoEntry } from '../contracts/publisher.js';

/** First line of an index file of this format. */
const MAGIC = 'serene-repo-index 2';

/** What identifies an archive file: an index describes the archives whose fingerprints it holds. */
export interface Fingerprint {
  size: number;
  mtimeMs: number;
  ino: number;
}

/** An entry as the index records it: its metadata, and the size of its tar bytes in each archive. */
export interface IndexEntry extends RepoEntry {
  /** length of the entry's (uncompressed) tar bytes in the db archive */
  dbLength: number;
  /** length of the entry's (uncompressed) tar bytes in the files archive */
  filesLength: number;
}

/** One chunk as the index records it. */
export interface IndexChunk {
  /** offset and length of its gzip member in the db archive */
  db: readonly [offset: number, length: number];
  /** offset and length of its gzip member in the files archive */
  files: readonly [offset: number, length: number];
  /** its entries' rows, as stored: see {@link parseRows} */
  rows: Buffer;
}

/** A parsed index. */
export interface DatabaseIndex {
  db: Fingerprint;
  files: Fingerprint;
  chunks: IndexChunk[];
}

/**
 * Parses an index file. `undefined` when it is not one of this format, or its chunks do not tile
 * archives of the sizes it records (rows are checked when they are read).
 */
export function parseIndex(data: Buffer): DatabaseIndex | undefined {
  let position = 0;
  const line = (): string[] | undefined => {
    const end = data.indexOf(NEWLINE, position);
    if (end === -1) return undefined;
    const fields = data.toString('latin1', position, end).split(' ');
    position = end + 1;
    return fields;
  };
  if (line()?.join(' ') !== MAGIC) return undefined;
  const db = fingerprintOf(line(), 'db');
  const files = fingerprintOf(line(), 'files');
  if (!db || !files) return undefined;
  const chunks: IndexChunk[] = [];
  const ends = { db: 0, files: 0 };
  while (position < data.length) {
    const fields = line();
    if (fields?.length !== 6 || fields[0] !== 'chunk') return undefined;
    const [dbOffset, dbLength, filesOffset, filesLength, rowsLength] = fields.slice(1).map(Number) as [
      number,
      number,
      number,
      number,
      number,
    ];
    if (dbOffset !== ends.db || filesOffset !== ends.files || !(rowsLength > 0)) return undefined;
    const rows = data.subarray(position, position + rowsLength);
    if (rows.length !== rowsLength || rows[rowsLength - 1] !== NEWLINE) return undefined;
    position += rowsLength;
    chunks.push({ db: [dbOffset, dbLength], files: [filesOffset, filesLength], rows });
    ends.db += dbLength;
    ends.files += filesLength;
  }
  if (!(ends.db <= db.size && ends.files <= files.size)) return undefined;
  return { db, files, chunks };
}

/** Formats an index file, as buffers to be written one after the other. */
export function formatIndex(index: DatabaseIndex): Buffer[] {
  let head = `${MAGIC}\ndb ${index.db.size} ${index.db.mtimeMs} ${index.db.ino}\nfiles ${index.files.size} ${index.files.mtimeMs} ${index.files.ino}\n`;
  const parts: Buffer[] = [];
  for (const { db, files, rows } of index.chunks) {
    parts.push(Buffer.from(`${head}chunk ${db[0]} ${db[1]} ${files[0]} ${files[1]} ${rows.length}\n`), rows);
    head = '';
  }
  if (head) parts.push(Buffer.from(head));
  return parts;
}

/** The rows of a chunk's entries. */
export function formatRows(entries: readonly IndexEntry[]): Buffer {
  let rows = '';
  for (const { name, version, filename, base, arch, signed, dbLength, filesLength } of entries) {
    rows += `${[name, version, filename, base ?? '', arch].map(escapeField).join('\t')}\t${signed ? 1 : 0}\t${dbLength}\t${filesLength}\n`;
  }
  return Buffer.from(rows);
}

/**
 * The entries of a chunk's rows.
 *
 * @throws Error when a row is malformed
 */
export function parseRows(rows: Buffer): IndexEntry[] {
  const entries: IndexEntry[] = [];
  for (const row of rows.toString('utf8', 0, rows.length - 1).split('\n')) {
    const fields = row.split('\t');
    const [name, version, filename, base, arch, signed, dbLength, filesLength] = fields;
    const lengths = [Number(dbLength), Number(filesLength)] as const;
    if (fields.length !== 8 || !name || !version || !filename || !Number.isInteger(lengths[0])) {
      throw new Error(`malformed index row ${JSON.stringify(row)}`);
    }
    entries.push({
      name: unescapeField(name),
      version: unescapeField(version),
      filename: unescapeField(filename),
      base: base ? unescapeField(base) : undefined,
      arch: unescapeField(arch ?? ''),
      signed: signed === '1',
      dbLength: lengths[0],
      filesLength: lengths[1],
    });
  }
  return entries;
}

/** Whether a chunk's rows hold an entry named `name` (found without parsing the rows). */
export function hasRow(rows: Buffer, name: string): boolean {
  const field = `${escapeField(name)}\t`;
  return rows.indexOf(field) === 0 || rows.includes(`\n${field}`);
}

/** The names of the entries in a chunk's rows, in order. */
export function rowNames(rows: Buffer): string[] {
  const names: string[] = [];
  for (let start = 0; start < rows.length; ) {
    names.push(unescapeField(rows.toString('utf8', start, rows.indexOf(TAB, start))));
    start = rows.indexOf(NEWLINE, start) + 1;
  }
  return names;
}

/** The sort key (`NAME-VERSION`) of a chunk's first entry. */
export function firstKey(rows: Buffer): string {
  const [name, version] = rows.toString('utf8', 0, rows.indexOf(NEWLINE)).split('\t', 2);
  return `${unescapeField(name ?? '')}-${unescapeField(version ?? '')}`;
}

// --- Internal helpers -------------------------------------------------------------------------------

function fingerprintOf(fields: string[] | undefined, label: string): Fingerprint | undefined {
  if (fields?.length !== 4 || fields[0] !== label) return undefined;
  const [size, mtimeMs, ino] = fields.slice(1).map(Number) as [number, number, number];
  return Number.isFinite(size) && Number.isFinite(mtimeMs) && Number.isFinite(ino)
    ? { size, mtimeMs, ino }
    : undefined;
}

const NEWLINE = 0x0a;
const TAB = 0x09;

function escapeField(value: string): string {
  if (!/[%\t\n]/.test(value)) return value;
  return value.replace(/[%\t\n]/g, (c) => (c === '%' ? '%25' : c === '\t' ? '%09' : '%0A'));
}

function unescapeField(value: string): string {
  if (!value.includes('%')) return value;
  return value.replace(/%(25|09|0A)/g, (_, code: string) =>
    code === '25' ? '%' : code === '09' ? '\t' : '\n',
  );
}
