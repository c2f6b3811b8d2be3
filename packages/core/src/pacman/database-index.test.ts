import { describe, expect, it } from 'vitest';
import {
  type DatabaseIndex,
  firstKey,
  formatIndex,
  formatRows,
  hasRow,
  parseIndex,
  parseRows,
  rowNames,
} from './database-index.js';

const entry = (name: string, extra: Partial<Parameters<typeof formatRows>[0][number]> = {}) => ({
  name,
  version: '1.0-1',
  filename: `${name}-1.0-1-x86_64.pkg.tar.zst`,
  base: undefined,
  arch: 'x86_64',
  signed: false,
  dbLength: 1536,
  filesLength: 2560,
  ...extra,
});

describe('database index', () => {
  it('round-trips chunks and rows, with fields that need escaping', () => {
    const odd = entry('odd', { filename: 'a\tb\nc%09d-ä€😀.pkg.tar.zst', base: 'odd-base', signed: true });
    const first = formatRows([entry('alpha'), odd]);
    const second = formatRows([entry('zeta', { version: '1:2.0-3' })]);
    const index: DatabaseIndex = {
      db: { size: 100, mtimeMs: 1764253573000, ino: 123456789 },
      files: { size: 200, mtimeMs: 1764253572000.5, ino: 987654321 },
      chunks: [
        { db: [0, 40], files: [0, 90], rows: first },
        { db: [40, 30], files: [90, 80], rows: second },
      ],
    };
    const parsed = parseIndex(Buffer.concat(formatIndex(index)));
    expect(parsed).toEqual(index);
    expect(parseRows(parsed!.chunks[0]!.rows)).toEqual([entry('alpha'), odd]);
    expect(rowNames(first)).toEqual(['alpha', 'odd']);
    expect(hasRow(first, 'odd')).toBe(true);
    expect(hasRow(first, 'alph')).toBe(false);
    expect(hasRow(first, 'b')).toBe(false);
    expect(firstKey(second)).toBe('zeta-1:2.0-3');
  });

  it('refuses what is not an index of this format, or does not tile the archives', () => {
    const rows = formatRows([entry('alpha')]);
    const good: DatabaseIndex = {
      db: { size: 50, mtimeMs: 1, ino: 2 },
      files: { size: 60, mtimeMs: 1, ino: 3 },
      chunks: [{ db: [0, 40], files: [0, 50], rows }],
    };
    const bytes = (index: DatabaseIndex) => Buffer.concat(formatIndex(index));
    expect(parseIndex(bytes(good))).toBeDefined();
    expect(parseIndex(bytes({ ...good, chunks: [] }))).toEqual({ ...good, chunks: [] });
    expect(parseIndex(Buffer.alloc(0))).toBeUndefined();
    expect(parseIndex(Buffer.from('{"version":1,"entries":[]}'))).toBeUndefined();
    expect(parseIndex(bytes({ ...good, chunks: [{ ...good.chunks[0]!, db: [4, 40] }] }))).toBeUndefined();
    expect(parseIndex(bytes({ ...good, chunks: [{ ...good.chunks[0]!, files: [0, 61] }] }))).toBeUndefined();
    // cut short
    expect(parseIndex(bytes(good).subarray(0, -3))).toBeUndefined();
    expect(() => parseRows(Buffer.from('alpha\t1.0-1\n'))).toThrow(/malformed/);
  });
});
