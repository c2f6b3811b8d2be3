/**
 * Version comparison exactly as libalpm's `alpm_pkg_vercmp` (pacman 6, lib/libalpm/version.c).
 *
 * @remarks The C code works on bytes in the C locale: only ASCII letters and digits form segments, every
 * other byte (including each byte of a multi-byte UTF-8 character) is a separator, and separator runs are
 * compared by their length in bytes. Strings are therefore compared as UTF-8 bytes here, and cut at the
 * first NUL as a C string would be.
 */

const encoder = new TextEncoder();

/** A version as the bytes libalpm sees: UTF-8, ending before the first NUL. */
function toBytes(s: string): Uint8Array {
  const nul = s.indexOf('\0');
  return encoder.encode(nul === -1 ? s : s.slice(0, nul));
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function isAlnum(c: number): boolean {
  return isDigit(c) || isAlpha(c);
}

/** The byte at `i`, or 0 (C's terminating NUL) past the end. */
function at(s: Uint8Array, i: number): number {
  return s[i] ?? 0;
}

/** Bytewise `strcmp` of `a[aStart, aEnd)` and `b[bStart, bEnd)`, as a sign. */
function compareRange(
  a: Uint8Array,
  aStart: number,
  aEnd: number,
  b: Uint8Array,
  bStart: number,
  bEnd: number,
): -1 | 0 | 1 {
  const aLen = aEnd - aStart;
  const bLen = bEnd - bStart;
  const n = Math.min(aLen, bLen);
  for (let k = 0; k < n; k++) {
    const x = at(a, aStart + k);
    const y = at(b, bStart + k);
    if (x !== y) return x < y ? -1 : 1;
  }
  return aLen === bLen ? 0 : aLen < bLen ? -1 : 1;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return compareRange(a, 0, a.length, b, 0, b.length) === 0;
}

/** libalpm's `rpmvercmp` on two byte strings: alternating alpha and numeric segments. */
function rpmvercmp(a: Uint8Array, b: Uint8Array): -1 | 0 | 1 {
  if (bytesEqual(a, b)) return 0;
  let one = 0;
  let two = 0;
  let ptr1 = 0;
  let ptr2 = 0;

  while (at(a, one) && at(b, two)) {
    while (at(a, one) && !isAlnum(at(a, one))) one++;
    while (at(b, two) && !isAlnum(at(b, two))) two++;

    // ran to the end of either: leave the loop for the final showdown
    if (!(at(a, one) && at(b, two))) break;

    // separator runs of different lengths decide on their own
    if (one - ptr1 !== two - ptr2) return one - ptr1 < two - ptr2 ? -1 : 1;

    ptr1 = one;
    ptr2 = two;

    const isNum = isDigit(at(a, ptr1));
    const inSegment = isNum ? isDigit : isAlpha;
    while (at(a, ptr1) && inSegment(at(a, ptr1))) ptr1++;
    while (at(b, ptr2) && inSegment(at(b, ptr2))) ptr2++;

    // cannot happen: `one` points at an alphanumeric byte
    if (one === ptr1) return -1;

    // segments of different types: numeric is newer than alpha
    if (two === ptr2) return isNum ? 1 : -1;

    if (isNum) {
      while (at(a, one) === 0x30) one++;
      while (at(b, two) === 0x30) two++;
      // the number with more digits wins
      if (ptr1 - one > ptr2 - two) return 1;
      if (ptr2 - two > ptr1 - one) return -1;
    }

    const rc = compareRange(a, one, ptr1, b, two, ptr2);
    if (rc !== 0) return rc;

    one = ptr1;
    two = ptr2;
  }

  // all segments equal, only the separators differed
  if (!at(a, one) && !at(b, two)) return 0;

  // the final showdown: a remaining alpha string never beats an empty string
  if ((!at(a, one) && !isAlpha(at(b, two))) || isAlpha(at(a, one))) return -1;
  return 1;
}

interface Evr {
  epoch: Uint8Array;
  version: Uint8Array;
  release: Uint8Array | undefined;
}

const ZERO = encoder.encode('0');

/** libalpm's `parseEVR`: `[epoch:]version[-release]`, epoch defaulting to 0, release after the last `-`. */
function parseEvr(evr: Uint8Array): Evr {
  let s = 0;
  while (at(evr, s) && isDigit(at(evr, s))) s++;
  // the last '-' at or after the epoch terminator ends the version
  const se = evr.lastIndexOf(0x2d);
  const dash = se >= s ? se : -1;
  const end = dash === -1 ? evr.length : dash;
  const release = dash === -1 ? undefined : evr.subarray(dash + 1);
  if (at(evr, s) === 0x3a && s < end) {
    const epoch = evr.subarray(0, s);
    return { epoch: epoch.length === 0 ? ZERO : epoch, version: evr.subarray(s + 1, end), release };
  }
  return { epoch: ZERO, version: evr.subarray(0, end), release };
}

/**
 * Compares two package versions `[epoch:]pkgver[-pkgrel]` exactly as pacman's `vercmp`: -1 if `a` is
 * older, 0 if equal, 1 if newer.
 */
export function vercmp(a: string, b: string): -1 | 0 | 1 {
  const x = toBytes(a);
  const y = toBytes(b);
  if (bytesEqual(x, y)) return 0;
  const ex = parseEvr(x);
  const ey = parseEvr(y);
  const epochs = rpmvercmp(ex.epoch, ey.epoch);
  if (epochs !== 0) return epochs;
  const versions = rpmvercmp(ex.version, ey.version);
  if (versions !== 0 || ex.release === undefined || ey.release === undefined) return versions;
  return rpmvercmp(ex.release, ey.release);
}

/** {@link vercmp} as a comparator for `Array.prototype.sort` (oldest first). */
export const compareVersions: (a: string, b: string) => -1 | 0 | 1 = vercmp;
