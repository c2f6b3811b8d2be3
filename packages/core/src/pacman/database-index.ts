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
 * The file is read and written as latin1, one character per byte (decoding and encoding it is a
 * copy), so `ROWS_LENGTH` counts bytes; fields are UTF-8, and escape `%`, tab and newline as `%25`,
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
  rows: string;
}

/** A parsed index. */
export interface DatabaseIndex {
  db: Fingerprint;
  files: Fingerprint;
  chunks: IndexChunk[];
}

/**
 * Parses an index file, read as latin1 (`fs.readFile(file, 'latin1')`). `undefined` when it is not one of this format, or its chunks do not tile
 * archives of the sizes it records (rows are checked when they are read).
 */
export function parseIndex(text: string): DatabaseIndex | undefined {
  let position = 0;
  const line = (): string[] | undefined => {
    const end = text.indexOf('\n', position);
    if (end === -1) return undefined;
    const fields = text.slice(position, end).split(' ');
    position = end + 1;
    return fields;
  };
  if (line()?.join(' ') !== MAGIC) return undefined;
  const db = fingerprintOf(line(), 'db');
  const files = fingerprintOf(line(), 'files');
  if (!db || !files) return undefined;
  const chunks: IndexChunk[] = [];
  const ends = { db: 0, files: 0 };
  while (position < text.length) {
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
    const rows = text.slice(position, position + rowsLength);
    if (rows.length !== rowsLength || !rows.endsWith('\n')) return undefined;
    position += rowsLength;
    chunks.push({ db: [dbOffset, dbLength], files: [filesOffset, filesLength], rows });
    ends.db += dbLength;
    ends.files += filesLength;
  }
  if (!(ends.db <= db.size && ends.files <= files.size)) return undefined;
  return { db, files, chunks };
}

/** Formats an index file, to be written as latin1. */
export function formatIndex(index: DatabaseIndex): string {
  const parts = [
    `${MAGIC}\n`,
    `db ${index.db.size} ${index.db.mtimeMs} ${index.db.ino}\n`,
    `files ${index.files.size} ${index.files.mtimeMs} ${index.files.ino}\n`,
  ];
  for (const { db, files, rows } of index.chunks) {
    parts.push(`chunk ${db[0]} ${db[1]} ${files[0]} ${files[1]} ${rows.length}\n`, rows);
  }
  return parts.join('');
}

/** The rows of a chunk's entries. */
export function formatRows(entries: readonly IndexEntry[]): string {
  let rows = '';
  for (const { name, version, filename, base, arch, signed, dbLength, filesLength } of entries) {
    rows += `${[name, version, filename, base ?? '', arch].map(escapeField).join('\t')}\t${signed ? 1 : 0}\t${dbLength}\t${filesLength}\n`;
  }
  return rows;
}

/**
 * The entries of a chunk's rows.
 *
 * @throws Error when a row is malformed
 */
export function parseRows(rows: string): IndexEntry[] {
  const entries: IndexEntry[] = [];
  for (const row of rows.slice(0, -1).split('\n')) {
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
export function hasRow(rows: string, name: string): boolean {
  const field = `${escapeField(name)}\t`;
  return rows.startsWith(field) || rows.includes(`\n${field}`);
}

/** The names of the entries in a chunk's rows, in order. */
export function rowNames(rows: string): string[] {
  const names: string[] = [];
  for (let start = 0; start < rows.length; ) {
    names.push(unescapeField(rows.slice(start, rows.indexOf('\t', start))));
    start = rows.indexOf('\n', start) + 1;
  }
  return names;
}

/** The sort key (`NAME-VERSION`) of a chunk's first entry. */
export function firstKey(rows: string): string {
  const [name, version] = rows.slice(0, rows.indexOf('\n')).split('\t', 2);
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

const PLAIN = /^[\x20-\x24\x26-\x7e]*$/;
const NOT_ASCII = /[^\x00-\x7f]/;

/** A field as the index holds it: escaped, and its UTF-8 bytes as latin1 characters. */
function escapeField(value: string): string {
  if (PLAIN.test(value)) return value;
  const escaped = value.replace(/[%\t\n]/g, (c) => (c === '%' ? '%25' : c === '\t' ? '%09' : '%0A'));
  return NOT_ASCII.test(escaped) ? Buffer.from(escaped, 'utf8').toString('latin1') : escaped;
}

function unescapeField(value: string): string {
  if (PLAIN.test(value)) return value;
  const decoded = NOT_ASCII.test(value) ? Buffer.from(value, 'latin1').toString('utf8') : value;
  return decoded.replace(/%(25|09|0A)/g, (_, code: string) =>
    code === '25' ? '%' : code === '09' ? '\t' : '\n',
  );
}
