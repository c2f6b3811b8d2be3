/**
 * Entry names as bsdtar prints them (escapes of non-printable bytes, `./` stripped, the entries
 * repo-add leaves out of the file list); a part of the package reader (package-reader.ts).
 */

/** Code points glibc's `iswprint` rejects in a UTF-8 locale (controls, unassigned, separators). */
const NOT_PRINTABLE = /[\p{Cc}\p{Cn}\p{Cs}\p{Zl}\p{Zp}]/u;

const ESCAPES = new Map<number, string>([
  [0x07, '\\a'],
  [0x08, '\\b'],
  [0x0c, '\\f'],
  [0x0a, '\\n'],
  [0x0d, '\\r'],
  [0x09, '\\t'],
  [0x0b, '\\v'],
  [0x5c, '\\\\'],
]);

/** bsdtar's `bsdtar_expand_char`: one byte, printable ASCII as is, others escaped. */
function expandByte(byte: number): string {
  if (byte >= 0x20 && byte < 0x7f && byte !== 0x5c) return String.fromCharCode(byte);
  return ESCAPES.get(byte) ?? `\\${byte.toString(8).padStart(3, '0')}`;
}

/** Length of the valid UTF-8 sequence at `i` (as glibc's mbtowc accepts it), or 0. */
function utf8Length(bytes: Uint8Array, i: number, end: number): number {
  const b0 = bytes[i]!;
  let length: number;
  let min: number;
  if (b0 < 0x80) return 1;
  if (b0 >= 0xc2 && b0 <= 0xdf) [length, min] = [2, 0x80];
  else if (b0 >= 0xe0 && b0 <= 0xef) [length, min] = [3, 0x800];
  else if (b0 >= 0xf0 && b0 <= 0xf4) [length, min] = [4, 0x10000];
  else return 0;
  if (i + length > end) return 0;
  let cp = b0 & (0xff >> (length + 1));
  for (let k = 1; k < length; k++) {
    const b = bytes[i + k]!;
    if ((b & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return length;
}

/**
 * A path as `bsdtar -tf` prints it in a UTF-8 locale (`safe_fprintf`): printable characters as they
 * are; backslashes, control and other unprintable characters, and invalid UTF-8 (and everything
 * after the first invalid byte) as C escapes (`\\`, `\n`, `\303`).
 */
export function bsdtarDisplayName(bytes: Uint8Array): string {
  const end = bytes.length;
  let plain = true;
  for (let i = 0; i < end; i++) {
    const b = bytes[i]!;
    if (b < 0x20 || b >= 0x7f || b === 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('latin1');
  let out = '';
  let tryWide = true;
  let i = 0;
  while (i < end) {
    const n = tryWide ? utf8Length(bytes, i, end) : 0;
    if (n === 0) {
      out += expandByte(bytes[i]!);
      i++;
      tryWide = false; // "After any conversion failure, don't bother trying to convert the rest."
      continue;
    }
    const char = Buffer.from(bytes.buffer, bytes.byteOffset + i, n).toString('utf8');
    if (n === 1 ? bytes[i]! >= 0x20 && bytes[i]! < 0x7f && bytes[i] !== 0x5c : !NOT_PRINTABLE.test(char)) {
      out += char;
    } else {
      for (let k = 0; k < n; k++) out += expandByte(bytes[i + k]!);
    }
    i += n;
  }
  return out;
}

/** libarchive's `pm()` skipping a leading `./` (and what follows it) of a path. */
function skipDotSlash(name: Uint8Array): number {
  if (name[0] !== 0x2e || name[1] !== 0x2f) return 0;
  let i = 1;
  while (
    i < name.length &&
    (name[i] === 0x2f || (name[i] === 0x2e && (i + 1 === name.length || name[i + 1] === 0x2f)))
  ) {
    i++;
  }
  return i;
}

/** Whether repo-add's `bsdtar --exclude='^.*'` leaves the path out: top-level dot names. */
export function isExcluded(name: Uint8Array): boolean {
  const i = skipDotSlash(name);
  return i < name.length && name[i] === 0x2e;
}

const PKGINFO_NAME = Buffer.from('.PKGINFO');

/** Whether `bsdtar -xf pkg .PKGINFO` extracts the entry (`.PKGINFO`, `./.PKGINFO`, `.PKGINFO/x`). */
export function isPkginfo(name: Uint8Array): boolean {
  const i = skipDotSlash(name);
  if (name.length - i < PKGINFO_NAME.length) return false;
  for (let k = 0; k < PKGINFO_NAME.length; k++) if (name[i + k] !== PKGINFO_NAME[k]) return false;
  const after = i + PKGINFO_NAME.length;
  return after === name.length || name[after] === 0x2f;
}

/** Bytewise (UTF-8 order) comparison of strings made of whole code points. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 orders U+E000..U+FFFF after surrogates (U+10000..); UTF-8 the other way round
    if (x >= 0xd800 && x <= 0xdfff) x += 0x2000;
    else if (x >= 0xe000) x -= 0x800;
    if (y >= 0xd800 && y <= 0xdfff) y += 0x2000;
    else if (y >= 0xe000) y -= 0x800;
    return x - y;
  }
  return a.length - b.length;
}

/** `LC_ALL=C sort -u` */
export function sortUnique(names: string[]): string[] {
  const wide = names.some((name) => /[^\u0000-\ud7ff]/.test(name));
  names.sort(wide ? compareCodePoints : undefined);
  const out: string[] = [];
  for (const name of names) if (out.length === 0 || out[out.length - 1] !== name) out.push(name);
  return out;
}
