/**
 * A minimal ustar writer for repository databases: directory and file entries only, with a pax
 * `path` record when a path does not fit the header.
 */

const BLOCK = 512;

/** The two zero blocks that end a tar archive. */
export const TAR_END = Buffer.alloc(BLOCK * 2);

function octal(value: number, width: number): string {
  // width includes the terminating NUL
  return value.toString(8).padStart(width - 1, '0');
}

function header(path: string, type: '0' | '5' | 'x', size: number, mode: number, mtime: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(path, 0, 100, 'utf8');
  block.write(`${octal(mode, 8)}\0`, 100, 'ascii');
  block.write(`${octal(0, 8)}\0`, 108, 'ascii');
  block.write(`${octal(0, 8)}\0`, 116, 'ascii');
  block.write(`${octal(size, 12)}\0`, 124, 'ascii');
  block.write(`${octal(mtime, 12)}\0`, 136, 'ascii');
  block.write('        ', 148, 'ascii');
  block.write(type, 156, 'ascii');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  block.write('root', 265, 'ascii');
  block.write('root', 297, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${octal(sum, 7)}\0 `, 148, 'ascii');
  return block;
}

function padded(data: Buffer): Buffer[] {
  const rest = data.length % BLOCK;
  return rest === 0 ? [data] : [data, Buffer.alloc(BLOCK - rest)];
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) {
    length = String(length).length + Buffer.byteLength(body);
  }
  return `${length}${body}`;
}

function entryHeader(path: string, type: '0' | '5', size: number, mode: number, mtime: number): Buffer[] {
  if (Buffer.byteLength(path) < 100) return [header(path, type, size, mode, mtime)];
  const pax = Buffer.from(paxRecord('path', path));
  return [
    header('././@PaxHeader', 'x', pax.length, 0o644, mtime),
    ...padded(pax),
    header(path.slice(0, 99), type, size, mode, mtime),
  ];
}

/** Tar blocks of a directory entry (`path` ends with `/`). */
export function tarDirectory(path: string, mtime: number): Buffer[] {
  return entryHeader(path, '5', 0, 0o755, mtime);
}

/** Tar blocks of a regular file entry with its data, padded to whole blocks. */
export function tarFile(path: string, data: Buffer, mtime: number): Buffer[] {
  return [...entryHeader(path, '0', data.length, 0o644, mtime), ...padded(data)];
}
