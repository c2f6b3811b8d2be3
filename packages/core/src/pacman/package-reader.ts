import { spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { ReadableStream } from 'node:stream/web';
import * as zlib from 'node:zlib';
import type { Decompress as ZstdDecompressType } from 'fzstd';
import { InvalidPackageError } from '../errors.js';
import { parsePkginfo } from './pkginfo.js';
import type { PackageFile, PkgInfo } from './types.js';

/*
 * Reads a pacman package file in one pass: the raw bytes are hashed (md5, sha256) and counted as
 * they are read, decompressed by streaming (zstd, xz, gzip, bzip2 or none, told by magic bytes) and
 * walked as a tar archive without extracting anything. `.PKGINFO` is kept and parsed as repo-add
 * parses it; every other entry contributes only its name to the file list.
 *
 * Memory stays bounded whatever the package's size or compression ratio: the file is read in 2 MiB
 * chunks, every decompressor hands its output to the tar walker synchronously (or through a pull-based
 * stream), and the walker keeps nothing of an entry's body but `.PKGINFO`'s.
 *
 * The tar walker is ours rather than tar-stream's: libarchive's reading rules must be followed to
 * the byte (names as stored, prefix/pax/GNU long-name precedence, hardlink sizes, where the archive
 * ends) and names must be escaped as bsdtar prints them; tar-stream decodes names lossily, and its
 * asynchronous entry streams both cost ~5 µs per entry and would buffer whatever a synchronous
 * decompressor push (fzstd) emits at once — hundreds of MB for a highly compressible file.
 */

/** What {@link readPackage} does. */
export interface ReadPackageOptions {
  /**
   * Collect the file list (the default). With `false`, decompression stops once `.PKGINFO` has been
   * read (`files` is then empty), but the whole file is still hashed and counted.
   */
  files?: boolean;
  /**
   * Let the `zstd` program (when it is on the PATH) decompress zstd packages of 2 MiB and more:
   * 2 to 10 times faster than the in-process decoder (fzstd), which is slowest on the large windows
   * of `zstd --ultra -20` packages. Defaults to true; smaller packages are always decompressed in
   * process (no process per package).
   */
  externalZstd?: boolean;
}

/** Read size; files up to it are read whole in one read (which lets small zstd windows shrink). */
const CHUNK = 2 << 20;
const BLOCK = 512;
/** `.PKGINFO` larger than this is refused rather than held in memory. */
const MAX_PKGINFO = 16 << 20;
/** pax and GNU long-name bodies, as libarchive limits them ("Special header too large"). */
const MAX_SPECIAL = 1 << 20;
/** libzstd's (and so libarchive's) default decompression window limit. */
const ZSTD_MAX_WINDOW = 1 << 27;
const EXTERNAL_ZSTD_MIN_SIZE = CHUNK;

/** A problem with the package's contents; becomes an {@link InvalidPackageError} naming the file. */
class PackageFormatError extends Error {}

// ---------------------------------------------------------------------------------------------
// Reading and hashing the raw file

class FileSource {
  readonly md5: Hash | undefined;
  readonly sha256: Hash | undefined;
  bytes = 0;
  private eof = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly handle: fs.FileHandle,
    private readonly chunkSize: number,
    /** the size fstat told: reading stops there without one more read to see the end */
    private readonly size: number,
    hash: boolean,
  ) {
    if (hash) {
      this.md5 = createHash('md5');
      this.sha256 = createHash('sha256');
    }
  }

  /** The next chunk of the file (a fresh buffer each time), or `undefined` at its end. Serialized. */
  next(): Promise<Buffer | undefined> {
    const result = this.queue.then(() => this.read());
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Reads (and hashes) the rest of the file. */
  async drain(): Promise<void> {
    while ((await this.next()) !== undefined) {
      // hashed by next()
    }
  }

  private async read(): Promise<Buffer | undefined> {
    if (this.eof || (this.size > 0 && this.bytes >= this.size)) return undefined;
    const buffer = Buffer.allocUnsafeSlow(this.chunkSize);
    const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, null);
    if (bytesRead === 0) {
      this.eof = true;
      return undefined;
    }
    const chunk = bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    this.md5?.update(chunk);
    this.sha256?.update(chunk);
    this.bytes += bytesRead;
    return chunk;
  }
}

// ---------------------------------------------------------------------------------------------
// Names as bsdtar prints them

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
function isExcluded(name: Uint8Array): boolean {
  const i = skipDotSlash(name);
  return i < name.length && name[i] === 0x2e;
}

const PKGINFO_NAME = Buffer.from('.PKGINFO');

/** Whether `bsdtar -xf pkg .PKGINFO` extracts the entry (`.PKGINFO`, `./.PKGINFO`, `.PKGINFO/x`). */
function isPkginfo(name: Uint8Array): boolean {
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
function sortUnique(names: string[]): string[] {
  const wide = names.some((name) => /[^\u0000-\ud7ff]/.test(name));
  names.sort(wide ? compareCodePoints : undefined);
  const out: string[] = [];
  for (const name of names) if (out.length === 0 || out[out.length - 1] !== name) out.push(name);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The tar walker: libarchive's reading rules (archive_read_support_format_tar.c), synchronously

enum Mode {
  Header,
  Skip,
  Collect,
  SparseExtension,
  HardlinkLookahead,
}

enum Format {
  None,
  Tar,
  Ustar,
  Gnutar,
  Pax,
}

enum Special {
  Pax,
  Global,
  LongName,
  Other,
}

/** An entry's body still to come. */
interface Body {
  size: number;
  keep: boolean;
}

function cstring(block: Uint8Array, offset: number, length: number): Uint8Array {
  let end = offset;
  const limit = offset + length;
  while (end < limit && block[end] !== 0) end++;
  return block.slice(offset, end);
}

function startsWith(block: Uint8Array, offset: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (block[offset + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** libarchive's `tar_atol`: octal (leading blanks, optional sign) or GNU base-256. */
function tarNumber(block: Uint8Array, offset: number, length: number): number {
  const first = block[offset]!;
  if (first & 0x80) {
    if (first & 0x40) return -1; // negative
    let value = first & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + block[offset + i]!;
    if (!Number.isSafeInteger(value)) throw new PackageFormatError('damaged tar archive (size out of range)');
    return value;
  }
  let i = offset;
  const end = offset + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0x09)) i++;
  let sign = 1;
  if (i < end && block[i] === 0x2d) {
    sign = -1;
    i++;
  }
  let value = 0;
  while (i < end && block[i]! >= 0x30 && block[i]! <= 0x37) value = value * 8 + (block[i++]! - 0x30);
  return sign * value;
}

/** libarchive's `tar_atol10` on a pax value. */
function decimalNumber(text: string): number {
  const match = /^[ \t]*(-?)([0-9]*)/.exec(text);
  const value = Number(match?.[2] || '0');
  return match?.[1] ? -value : value;
}

function checksumOk(block: Uint8Array): boolean {
  for (let i = 148; i < 156; i++) {
    const c = block[i]!;
    if (c !== 0x20 && c !== 0 && (c < 0x30 || c > 0x37)) return false;
  }
  const stored = tarNumber(block, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b >= 0x80 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** libarchive's `archive_read_format_tar_bid` > 50: a valid header with a ustar or GNU magic. */
function looksLikeHeader(block: Uint8Array): boolean {
  if (block[0] === 0 && isZeroBlock(block)) return false;
  if (!checksumOk(block)) return false;
  const posix = startsWith(block, 257, 'ustar\0') && startsWith(block, 263, '00');
  const gnu = startsWith(block, 257, 'ustar ') && startsWith(block, 263, ' \0');
  return posix || gnu;
}

/** The pax records that matter for listing; `undefined` values when the header is malformed. */
function parsePax(body: Uint8Array): {
  path?: Uint8Array;
  sparseName?: Uint8Array;
  size?: number;
  valid: boolean;
} {
  const nul = body.indexOf(0);
  const text = nul === -1 ? body : body.subarray(0, nul); // libarchive reads it as a C string
  const result: { path?: Uint8Array; sparseName?: Uint8Array; size?: number; valid: boolean } = {
    valid: true,
  };
  let offset = 0;
  while (offset < text.length) {
    let i = offset;
    let length = 0;
    while (i < text.length && text[i] !== 0x20) {
      const c = text[i]!;
      if (c < 0x30 || c > 0x39) return { ...result, valid: false };
      length = length * 10 + (c - 0x30);
      if (length > 999999) return { ...result, valid: false };
      i++;
    }
    i++; // the space
    if (length > text.length - offset || length < 1 || text[offset + length - 1] !== 0x0a) {
      return { ...result, valid: false };
    }
    const record = text.subarray(i, offset + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) return { ...result, valid: false };
    const key = Buffer.from(record.buffer, record.byteOffset, eq).toString('latin1');
    const value = record.slice(eq + 1);
    if (key === 'path') result.path = value;
    else if (key === 'GNU.sparse.name') result.sparseName = value;
    else if (key === 'size') result.size = decimalNumber(Buffer.from(value).toString('latin1'));
    offset += length;
  }
  return result;
}

interface WalkerOptions {
  files: boolean;
  stopAfterPkginfo: boolean;
}

/**
 * Walks a tar stream fed in chunks of any size: collects entry names (as bsdtar lists them) and the
 * contents of `.PKGINFO`, skips everything else. Throws {@link PackageFormatError} on a damaged
 * archive.
 */
class TarWalker {
  readonly names: string[] = [];
  pkginfo: Buffer | undefined;
  /** the end-of-archive block was seen */
  ended = false;
  entries = 0;

  private mode = Mode.Header;
  private readonly block = Buffer.alloc(BLOCK);
  private blockLength = 0;
  private skip = 0;
  private target: Buffer | undefined;
  private targetLength = 0;
  private targetPadding = 0;
  private targetKind: Special | 'pkginfo' = 'pkginfo';
  private pkginfoFound = false;
  private format = Format.None;
  /** special headers read for the next entry, outermost first */
  private specials: Special[] = [];
  private nameOverrides: (Uint8Array | undefined)[] = [];
  private sizeOverrides: (number | undefined)[] = [];
  private pending: Body | undefined;

  constructor(private readonly options: WalkerOptions) {}

  /** Whether the walk is over: the end-of-archive block was seen, or `.PKGINFO` was all it needed. */
  get done(): boolean {
    return this.ended || (this.options.stopAfterPkginfo && this.pkginfo !== undefined);
  }

  /** Takes the next bytes of the archive; bytes after its end are ignored (as libarchive does). */
  write(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    while (i < n && !this.done) {
      switch (this.mode) {
        case Mode.Skip: {
          const k = Math.min(this.skip, n - i);
          i += k;
          this.skip -= k;
          if (this.skip === 0) this.mode = Mode.Header;
          break;
        }
        case Mode.Collect: {
          const target = this.target!;
          const k = Math.min(target.length - this.targetLength, n - i);
          target.set(chunk.subarray(i, i + k), this.targetLength);
          this.targetLength += k;
          i += k;
          if (this.targetLength === target.length) {
            this.target = undefined;
            this.skip = this.targetPadding;
            this.mode = this.skip > 0 ? Mode.Skip : Mode.Header;
            this.collected(target);
          }
          break;
        }
        default: {
          let block: Uint8Array;
          if (this.blockLength === 0 && n - i >= BLOCK) {
            block = chunk.subarray(i, i + BLOCK);
            i += BLOCK;
          } else {
            const k = Math.min(BLOCK - this.blockLength, n - i);
            this.block.set(chunk.subarray(i, i + k), this.blockLength);
            this.blockLength += k;
            i += k;
            if (this.blockLength < BLOCK) break;
            this.blockLength = 0;
            block = this.block;
          }
          this.onBlock(block);
        }
      }
    }
  }

  /** The decompressed stream has ended: throws if it ended inside an entry. */
  finish(): void {
    if (this.done) return;
    if (this.mode === Mode.Header && this.blockLength === 0) {
      if (this.specials.some((special) => special !== Special.Global)) {
        throw new PackageFormatError('damaged tar archive (extension header without an entry)');
      }
      return; // EOF at a block boundary: some writers omit the end-of-archive blocks
    }
    if (this.entries === 0 && this.specials.length === 0 && this.mode === Mode.Header) {
      throw new PackageFormatError('not a tar archive (too short)');
    }
    throw new PackageFormatError('truncated tar archive');
  }

  private onBlock(block: Uint8Array): void {
    switch (this.mode) {
      case Mode.SparseExtension:
        // GNU old sparse map continuation blocks: isextended at 504
        if (block[504] === 0) this.startBody(this.pending!);
        return;
      case Mode.HardlinkLookahead: {
        const body = this.pending!;
        if (looksLikeHeader(block)) {
          // old-style hardlink: its size is not a body; this block is the next header
          this.startBody({ size: 0, keep: body.keep });
          this.onHeader(block);
        } else {
          this.startBody(body);
          this.write(Buffer.from(block));
        }
        return;
      }
      default:
        this.onHeader(block);
    }
  }

  private onHeader(block: Uint8Array): void {
    if (block[0] === 0 && isZeroBlock(block)) {
      if (this.specials.some((special) => special !== Special.Global)) {
        throw new PackageFormatError('damaged tar archive (extension header without an entry)');
      }
      this.ended = true;
      return;
    }
    if (!checksumOk(block)) {
      throw new PackageFormatError(
        this.entries === 0 && this.specials.length === 0
          ? 'not a tar archive'
          : `damaged tar archive (bad header checksum after ${this.entries} entries)`,
      );
    }
    const type = block[156]!;
    switch (type) {
      case 0x78: // 'x' pax
      case 0x58: // 'X' Sun pax
        this.format = Format.Pax;
        this.readSpecial(block, Special.Pax);
        return;
      case 0x67: // 'g' pax global (read, not applied by libarchive 3.6)
        this.format = Format.Pax;
        this.readSpecial(block, Special.Global);
        return;
      case 0x41: // 'A' Solaris ACL
        this.format = Format.Pax;
        this.readSpecial(block, Special.Other);
        return;
      case 0x4c: // 'L' GNU long name
        this.readSpecial(block, Special.LongName);
        return;
      case 0x4b: // 'K' GNU long link
        this.readSpecial(block, Special.Other);
        return;
      case 0x56: // 'V' GNU volume header: skipped, body and all ignored
        this.pushSpecial(Special.Other);
        return;
    }

    let name: Uint8Array;
    const gnu = startsWith(block, 257, 'ustar  \0');
    if (gnu) {
      this.format = Format.Gnutar;
      name = cstring(block, 0, 100);
    } else if (startsWith(block, 257, 'ustar')) {
      if (this.format !== Format.Pax) this.format = Format.Ustar;
      if (block[345] !== 0) {
        const prefix = cstring(block, 345, 155);
        const base = cstring(block, 0, 100);
        const slash = prefix[prefix.length - 1] === 0x2f ? 0 : 1;
        name = new Uint8Array(prefix.length + slash + base.length);
        name.set(prefix, 0);
        if (slash) name[prefix.length] = 0x2f;
        name.set(base, prefix.length + slash);
      } else {
        name = cstring(block, 0, 100);
      }
    } else {
      this.format = Format.Tar;
      name = cstring(block, 0, 100);
    }

    let size = tarNumber(block, 124, 12);
    if (size < 0) size = 0;
    let lookahead = false;
    switch (type) {
      case 0x31: // '1' hardlink: whether its size is a body depends on the format
        if (size > 0 && this.format !== Format.Pax) {
          if (this.format === Format.Tar || this.format === Format.Gnutar) size = 0;
          else lookahead = true;
        }
        break;
      case 0x32: // symlink
      case 0x33: // character device
      case 0x34: // block device
      case 0x35: // directory
      case 0x36: // fifo
        size = 0;
        break;
    }
    // extension headers apply from the innermost to the outermost (which wins)
    for (let k = this.specials.length - 1; k >= 0; k--) {
      const override = this.nameOverrides[k];
      if (override !== undefined) name = override;
      const sizeOverride = this.sizeOverrides[k];
      if (sizeOverride !== undefined) {
        size = Math.max(sizeOverride, 0);
        lookahead = false;
      }
    }
    this.specials = [];
    this.nameOverrides = [];
    this.sizeOverrides = [];
    if (!Number.isSafeInteger(size)) throw new PackageFormatError('damaged tar archive (size out of range)');

    this.entries++;
    if (this.options.files && !isExcluded(name)) this.names.push(bsdtarDisplayName(name));
    let keep = false;
    if (!this.pkginfoFound && isPkginfo(name)) {
      this.pkginfoFound = true;
      keep = true;
    }
    const body: Body = { size, keep };
    if (gnu && block[386] !== 0 && block[482] !== 0) {
      this.pending = body;
      this.mode = Mode.SparseExtension;
    } else if (lookahead) {
      this.pending = body;
      this.mode = Mode.HardlinkLookahead;
    } else {
      this.startBody(body);
    }
  }

  private startBody(body: Body): void {
    this.pending = undefined;
    const padding = (BLOCK - (body.size % BLOCK)) % BLOCK;
    if (body.keep) {
      if (body.size > MAX_PKGINFO) throw new PackageFormatError(`.PKGINFO is too large (${body.size} bytes)`);
      if (body.size === 0) {
        this.pkginfo = Buffer.alloc(0);
        this.skip = padding;
        this.mode = Mode.Header;
        return;
      }
      this.collect(body.size, padding, 'pkginfo');
      return;
    }
    this.skip = body.size + padding;
    this.mode = this.skip > 0 ? Mode.Skip : Mode.Header;
  }

  private pushSpecial(kind: Special): void {
    if (this.specials.length >= 32)
      throw new PackageFormatError('damaged tar archive (too many extension headers)');
    this.specials.push(kind);
    this.nameOverrides.push(undefined);
    this.sizeOverrides.push(undefined);
  }

  private readSpecial(block: Uint8Array, kind: Special): void {
    const size = tarNumber(block, 124, 12);
    if (size < 0 || size > MAX_SPECIAL)
      throw new PackageFormatError('damaged tar archive (extension header too large)');
    this.pushSpecial(kind);
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (kind === Special.Pax || kind === Special.LongName) {
      if (size === 0) {
        this.collected(Buffer.alloc(0), kind);
        this.skip = padding;
        this.mode = Mode.Header;
      } else {
        this.collect(size, padding, kind);
      }
      return;
    }
    this.skip = size + padding;
    this.mode = this.skip > 0 ? Mode.Skip : Mode.Header;
  }

  private collect(size: number, padding: number, kind: Special | 'pkginfo'): void {
    this.target = Buffer.allocUnsafe(size);
    this.targetLength = 0;
    this.targetPadding = padding;
    this.targetKind = kind;
    this.mode = Mode.Collect;
  }

  private collected(data: Buffer, kind = this.targetKind): void {
    const last = this.specials.length - 1;
    if (kind === 'pkginfo') {
      this.pkginfo = data;
    } else if (kind === Special.LongName) {
      const nul = data.indexOf(0);
      this.nameOverrides[last] = nul === -1 ? data : data.subarray(0, nul);
    } else if (kind === Special.Pax) {
      const pax = parsePax(data);
      if (pax.size !== undefined) this.sizeOverrides[last] = pax.size;
      if (pax.valid) {
        // libarchive applies names only when the whole header parsed
        if (pax.sparseName !== undefined && pax.sparseName.length > 0)
          this.nameOverrides[last] = pax.sparseName;
        else if (pax.path !== undefined && pax.path.length > 0) this.nameOverrides[last] = pax.path;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decompressors: each feeds the walker until it wants no more or the input ends

type Compression = 'zstd' | 'xz' | 'gzip' | 'bzip2' | 'none';

function detectCompression(head: Uint8Array): Compression {
  const at = (i: number) => head[i];
  if (at(0) === 0x28 && at(1) === 0xb5 && at(2) === 0x2f && at(3) === 0xfd) return 'zstd';
  if (at(0) === 0xfd && at(1) === 0x37 && at(2) === 0x7a && at(3) === 0x58 && at(4) === 0x5a && at(5) === 0) {
    return 'xz';
  }
  if (at(0) === 0x1f && at(1) === 0x8b) return 'gzip';
  if (at(0) === 0x42 && at(1) === 0x5a && at(2) === 0x68) return 'bzip2';
  return 'none';
}

/** Feeds decompressed chunks to the walker; returns false once no more are wanted. */
type Sink = (chunk: Uint8Array) => boolean;

interface Input {
  first: Buffer;
  source: FileSource;
  /** `first` is the whole file */
  whole: boolean;
}

async function* chunksOf(input: Input): AsyncGenerator<Buffer> {
  yield input.first;
  for (;;) {
    const chunk = await input.source.next();
    if (chunk === undefined) return;
    yield chunk;
  }
}

async function decodeNone(input: Input, sink: Sink): Promise<void> {
  for await (const chunk of chunksOf(input)) if (!sink(chunk)) return;
}

/**
 * Follows zstd frame and block headers as the compressed bytes go by, so that a frame asking for
 * more than libzstd's default window (128 MiB, which bsdtar enforces too) is refused before fzstd
 * allocates it, and so that a stream cut between frames is told from a complete one.
 */
class ZstdFrameGuard {
  private header = new Uint8Array(18);
  private headerLength = 0;
  private inBlocks = false;
  private skip = 0;
  private checksum = false;

  /**
   * Checks the next compressed bytes. Returns -1 when they are fine, else the offset in `chunk` up
   * to which they may still be decompressed (where the offending header starts) and sets `error`.
   */
  feed(chunk: Uint8Array): number {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - i);
        i += k;
        this.skip -= k;
        continue;
      }
      const headerStart = Math.max(0, i - this.headerLength);
      this.header[this.headerLength++] = chunk[i++]!;
      const h = this.header;
      if (this.inBlocks) {
        if (this.headerLength < 3) continue;
        const bits = h[0]! | (h[1]! << 8) | (h[2]! << 16);
        const type = (bits >> 1) & 3;
        const size = bits >>> 3;
        if (type === 3) return this.fail(headerStart, 'corrupt zstd data (reserved block type)');
        if (size > 128 * 1024) return this.fail(headerStart, 'corrupt zstd data (block too large)');
        this.headerLength = 0;
        this.skip = type === 1 ? 1 : size;
        if (bits & 1) {
          this.skip += this.checksum ? 4 : 0;
          this.inBlocks = false;
        }
        continue;
      }
      if (this.headerLength < 5) continue;
      const magic = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
      if ((magic & 0xfffffff0) === 0x184d2a50) {
        if (this.headerLength < 8) continue;
        this.skip = (h[4]! | (h[5]! << 8) | (h[6]! << 16) | (h[7]! << 24)) >>> 0;
        this.headerLength = 0;
        continue;
      }
      if (magic !== 0xfd2fb528) return this.fail(headerStart, 'corrupt zstd data (bad frame magic)');
      const descriptor = h[4]!;
      if (descriptor & 0x08) return this.fail(headerStart, 'corrupt zstd data (reserved frame header bit)');
      const singleSegment = (descriptor >> 5) & 1;
      const fcsFlag = descriptor >> 6;
      const dictBytes = [0, 1, 2, 4][descriptor & 3]!;
      const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
      const headerSize = 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
      if (this.headerLength < headerSize) continue;
      let window: number;
      if (singleSegment) {
        const at = 5 + dictBytes;
        let fcs = 0;
        for (let k = fcsBytes - 1; k >= 0; k--) fcs = fcs * 256 + h[at + k]!;
        window = fcsBytes === 2 ? fcs + 256 : fcs;
      } else {
        const exponent = h[5]! >> 3;
        const base = 2 ** (10 + exponent);
        window = base + (base / 8) * (h[5]! & 7);
      }
      if (window > ZSTD_MAX_WINDOW) {
        return this.fail(
          headerStart,
          `zstd window of ${window} bytes exceeds the limit of ${ZSTD_MAX_WINDOW}`,
        );
      }
      this.checksum = (descriptor & 0x04) !== 0;
      this.headerLength = 0;
      this.inBlocks = true;
    }
    return -1;
  }

  error: PackageFormatError | undefined;

  private fail(offset: number, message: string): number {
    this.error = new PackageFormatError(message);
    return offset;
  }

  /** Whether the input ended between frames. */
  get complete(): boolean {
    return !this.inBlocks && this.skip === 0 && this.headerLength === 0;
  }
}

/** The smallest zstd window descriptor for at least `size` bytes. */
function windowDescriptor(size: number): number {
  for (let exponent = 0; exponent < 32; exponent++) {
    const base = 2 ** (10 + exponent);
    for (let mantissa = 0; mantissa < 8; mantissa++) {
      if (base + (base / 8) * mantissa >= size) return (exponent << 3) | mantissa;
    }
  }
  return 0xff;
}

/**
 * fzstd allocates (and zeroes, and shifts after every block) a buffer of the frame's whole window:
 * 2 MiB for a package of a few KiB that zstd compressed from a pipe (makepkg's case), which costs
 * more than the rest of reading it. When the whole file is in hand, every frame's block count bounds
 * what it can decompress to (128 KiB a block) and so how far back a match can reach: the window
 * descriptor is lowered to that. The bytes were hashed before this.
 */
function shrinkZstdWindows(data: Uint8Array): void {
  const u32 = (at: number) =>
    (data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)) >>> 0;
  let i = 0;
  while (i + 6 <= data.length) {
    const magic = u32(i);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      if (i + 8 > data.length) return;
      i += 8 + u32(i + 4);
      continue;
    }
    if (magic !== 0xfd2fb528) return;
    const descriptor = data[i + 4]!;
    const singleSegment = (descriptor >> 5) & 1;
    const fcsFlag = descriptor >> 6;
    const dictBytes = [0, 1, 2, 4][descriptor & 3]!;
    const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
    let j = i + 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
    let blocks = 0;
    for (;;) {
      if (j + 3 > data.length) return;
      const bits = data[j]! | (data[j + 1]! << 8) | (data[j + 2]! << 16);
      j += 3 + (((bits >> 1) & 3) === 1 ? 1 : bits >>> 3);
      blocks++;
      if (bits & 1) break;
    }
    if (descriptor & 0x04) j += 4;
    if (!singleSegment) {
      const wd = data[i + 5]!;
      const base = 2 ** (10 + (wd >> 3));
      const declared = base + (base / 8) * (wd & 7);
      const needed = blocks * 128 * 1024;
      if (needed < declared) data[i + 5] = windowDescriptor(needed);
    }
    i = j;
  }
}

// The decoders are loaded on first use: a command that reads no package (or only zst ones through
// the zstd program) does not pay for them at start-up (~100-300 ms on a slow machine).
let fzstd: Promise<{ Decompress: typeof ZstdDecompressType }> | undefined;
type XzModule = typeof import('xz-decompress');
let xzModule: Promise<XzModule> | undefined;

async function decodeZstd(input: Input, sink: Sink): Promise<void> {
  fzstd ??= import('fzstd');
  const ZstdDecompress = (await fzstd).Decompress;
  const guard = new ZstdFrameGuard();
  let wanted = true;
  let outputError: unknown;
  const decoder = new ZstdDecompress((data) => {
    if (!wanted || data.length === 0) return;
    try {
      wanted = sink(data);
    } catch (error) {
      outputError = error;
      wanted = false;
    }
  });
  const push = (chunk: Uint8Array, final: boolean) => {
    try {
      decoder.push(chunk, final);
    } catch (error) {
      if (outputError !== undefined) throw outputError;
      if (!wanted) return; // bytes after what the walker needed (e.g. after the tar end): ignored
      throw new PackageFormatError(
        `corrupt zstd data (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    if (outputError !== undefined) throw outputError;
  };
  for await (const chunk of chunksOf(input)) {
    const stop = guard.feed(chunk);
    if (input.whole && stop === -1) shrinkZstdWindows(chunk);
    push(stop === -1 ? chunk : chunk.subarray(0, stop), false);
    if (!wanted) return;
    if (guard.error) throw guard.error;
  }
  if (!guard.complete) throw new PackageFormatError('truncated zstd data');
  push(new Uint8Array(0), true);
}

async function decodeXz(input: Input, sink: Sink): Promise<void> {
  const chunks = chunksOf(input);
  const compressed = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
    },
    { highWaterMark: 0 },
  );
  // xz-decompress serializes all its streams on one WASM context: a stream must always be read to
  // its end or cancelled, or every later xz read would wait forever.
  // a CommonJS module: its exports are the default export of the ES module
  xzModule ??= import('xz-decompress').then((module) => (module as { default?: XzModule }).default ?? module);
  const xzDecompress = await xzModule;
  const stream = new xzDecompress.XzReadableStream(
    compressed as unknown as globalThis.ReadableStream<Uint8Array>,
  );
  const reader = stream.getReader();
  let settled = false;
  let idle = 0;
  try {
    for (;;) {
      let result: Awaited<ReturnType<typeof reader.read>>;
      try {
        result = await reader.read();
      } catch (error) {
        settled = true; // an errored stream has released its context
        if (error instanceof PackageFormatError) throw error;
        throw new PackageFormatError(
          error instanceof TypeError || /error code/.test(String(error))
            ? 'truncated or corrupt xz data'
            : `corrupt xz data (${error instanceof Error ? error.message : String(error)})`,
        );
      }
      if (result.done) {
        settled = true;
        return;
      }
      if (result.value.length === 0) {
        // no progress: xz-embedded reports that as an error on the second call, but do not spin
        if (++idle > 100) throw new PackageFormatError('truncated or corrupt xz data');
        continue;
      }
      idle = 0;
      if (!sink(result.value)) return;
    }
  } finally {
    if (!settled) await reader.cancel().catch(() => undefined);
  }
}

/** Waits for all, then fails with the first failure: nothing is left running in the background. */
async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
}

/** Waits until a writable can take more, or is gone. */
function writable(stream: Writable) {
  return new Promise<void>((resolve) => {
    if (stream.destroyed || !stream.writableNeedDrain) return resolve();
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

async function decodeGzip(input: Input, sink: Sink): Promise<void> {
  const gunzip = zlib.createGunzip({ chunkSize: 128 * 1024 });
  let stopped = false;
  const finished = new Promise<void>((resolve, reject) => {
    gunzip.on('data', (data: Buffer) => {
      if (stopped) return;
      try {
        if (!sink(data)) {
          stopped = true;
          gunzip.destroy();
          resolve();
        }
      } catch (error) {
        stopped = true;
        gunzip.destroy();
        reject(error);
      }
    });
    gunzip.on('end', resolve);
    gunzip.on('close', resolve);
    gunzip.on('error', (error) => {
      if (stopped) return resolve();
      stopped = true;
      reject(new PackageFormatError(`corrupt gzip data (${error.message})`));
    });
  });
  const pump = (async () => {
    try {
      for await (const chunk of chunksOf(input)) {
        if (stopped) return;
        if (!gunzip.write(chunk)) await writable(gunzip);
      }
      if (!stopped) gunzip.end();
    } catch (error) {
      gunzip.destroy();
      throw error;
    }
  })();
  await settleAll([finished, pump]);
}

const programs = new Map<string, string | undefined>();

/** The absolute path of a program on the PATH, cached. */
function findProgram(name: string): string | undefined {
  if (!programs.has(name)) {
    const found = (process.env.PATH ?? '/usr/bin:/bin')
      .split(path.delimiter)
      .filter((dir) => dir !== '')
      .map((dir) => path.join(dir, name))
      .find((file) => existsSync(file));
    programs.set(name, found);
  }
  return programs.get(name);
}

/** Decompresses through a program (`zstd -dc`, `bzip2 -dc`) reading stdin and writing stdout. */
async function decodeWithProgram(program: string, args: string[], input: Input, sink: Sink): Promise<void> {
  const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const name = path.basename(program);
  let stopped = false;
  let stderr = '';
  const stdin = child.stdin!;
  stdin.on('error', () => undefined); // EPIPE once the program has exited or been stopped
  child.stdout!.on('error', () => undefined);
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    if (stderr.length < 4096) stderr += text;
  });
  child.stderr!.on('error', () => undefined);
  const stop = () => {
    if (stopped) return;
    stopped = true;
    child.stdout!.destroy();
    stdin.destroy();
    child.kill('SIGKILL');
  };
  const exited = new Promise<void>((resolve, reject) => {
    let failure: unknown;
    child.stdout!.on('data', (data: Buffer) => {
      if (stopped) return;
      try {
        if (!sink(data)) stop();
      } catch (error) {
        failure = error;
        stop();
      }
    });
    child.on('error', (error) => {
      stop();
      reject(new Error(`cannot run ${name}: ${error.message}`));
    });
    child.on('close', (code) => {
      const wasStopped = stopped;
      stopped = true; // the pump has nobody to write to any more
      if (failure !== undefined) return reject(failure);
      if (wasStopped || code === 0) return resolve();
      const message = stderr.trim().split('\n').slice(-2).join('; ');
      reject(new PackageFormatError(`corrupt ${name} data (${message || `exit code ${code}`})`));
    });
  });
  const pump = (async () => {
    try {
      for await (const chunk of chunksOf(input)) {
        if (stopped) return;
        if (!stdin.write(chunk)) await writable(stdin);
      }
      if (!stopped) stdin.end();
    } catch (error) {
      stop();
      throw error;
    }
  })();
  await settleAll([exited, pump]);
}

// ---------------------------------------------------------------------------------------------
// The reader

async function walkPackage(
  file: string,
  options: { hash: boolean; files: boolean; stopAfterPkginfo: boolean; externalZstd: boolean },
): Promise<{ walker: TarWalker; source: FileSource }> {
  const handle = await fs.open(file, 'r');
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new PackageFormatError('not a regular file');
    const chunkSize = Math.max(64 * 1024, Math.min(CHUNK, stat.size));
    const source = new FileSource(handle, chunkSize, stat.size, options.hash);
    const first = await source.next();
    if (first === undefined) throw new PackageFormatError('empty file');
    const walker = new TarWalker({ files: options.files, stopAfterPkginfo: options.stopAfterPkginfo });
    const input: Input = { first, source, whole: first.length === stat.size };
    const compression = detectCompression(first);
    // Past the end of the tar archive, compressed data is still decompressed (and thrown away) to
    // its end, so that a truncated or corrupt file is refused; only a `.PKGINFO`-only walk stops early.
    const sink: Sink = (chunk) => {
      walker.write(chunk);
      if (options.stopAfterPkginfo && walker.pkginfo !== undefined) return false;
      return !(walker.ended && compression === 'none');
    };
    switch (compression) {
      case 'zstd': {
        const zstd =
          options.externalZstd && stat.size >= EXTERNAL_ZSTD_MIN_SIZE ? findProgram('zstd') : undefined;
        if (zstd) await decodeWithProgram(zstd, ['-dcq', '--no-progress'], input, sink);
        else await decodeZstd(input, sink);
        break;
      }
      case 'xz':
        await decodeXz(input, sink);
        break;
      case 'gzip':
        await decodeGzip(input, sink);
        break;
      case 'bzip2': {
        const bzip2 = findProgram('bzip2');
        if (!bzip2) throw new PackageFormatError('bzip2-compressed, and the bzip2 program is not installed');
        await decodeWithProgram(bzip2, ['-dcq'], input, sink);
        break;
      }
      case 'none':
        await decodeNone(input, sink);
        break;
    }
    walker.finish();
    if (walker.entries === 0) {
      const what = compression === 'none' ? 'tar archive' : `${compression}-compressed tar archive`;
      throw new PackageFormatError(`not a package (an empty ${what})`);
    }
    if (options.hash) await source.drain();
    return { walker, source };
  } finally {
    await handle.close();
  }
}

function pkginfoOf(walker: TarWalker): PkgInfo {
  if (walker.pkginfo === undefined) throw new PackageFormatError('no .PKGINFO in the archive');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(walker.pkginfo); // keep a BOM, as bash does
  } catch {
    throw new PackageFormatError('.PKGINFO is not valid UTF-8');
  }
  return parsePkginfo(text);
}

function invalid(file: string, error: unknown): InvalidPackageError {
  if (error instanceof InvalidPackageError) {
    return new InvalidPackageError(`invalid package file '${file}': ${error.message}`, { cause: error });
  }
  if (error instanceof PackageFormatError) {
    return new InvalidPackageError(`invalid package file '${file}': ${error.message}`);
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason = code === 'ENOENT' ? 'no such file' : error instanceof Error ? error.message : String(error);
  return new InvalidPackageError(`cannot read package file '${file}': ${reason}`, { cause: error });
}

/**
 * Reads a package file in one streaming pass: its `.PKGINFO` (parsed as repo-add does), its file
 * list (as repo-add lists it), and the size, md5 and sha256 of the file.
 *
 * @throws InvalidPackageError when the file cannot be read or is not a valid package; the message
 * names the file and the problem.
 */
export async function readPackage(file: string, options: ReadPackageOptions = {}): Promise<PackageFile> {
  const absolute = path.resolve(file);
  const files = options.files ?? true;
  try {
    const { walker, source } = await walkPackage(absolute, {
      hash: true,
      files,
      stopAfterPkginfo: !files,
      externalZstd: options.externalZstd ?? true,
    });
    return {
      path: absolute,
      filename: path.basename(absolute),
      pkginfo: pkginfoOf(walker),
      files: files ? sortUnique(walker.names) : [],
      csize: source.bytes,
      md5: source.md5!.digest('hex'),
      sha256: source.sha256!.digest('hex'),
    };
  } catch (error) {
    throw invalid(absolute, error);
  }
}

/**
 * Reads only a package's `.PKGINFO`: decompresses up to it and stops, hashing nothing.
 *
 * @throws InvalidPackageError as {@link readPackage}
 */
export async function readPkginfoOnly(file: string): Promise<PkgInfo> {
  const absolute = path.resolve(file);
  try {
    const { walker } = await walkPackage(absolute, {
      hash: false,
      files: false,
      stopAfterPkginfo: true,
      externalZstd: false,
    });
    return pkginfoOf(walker);
  } catch (error) {
    throw invalid(absolute, error);
  }
}
