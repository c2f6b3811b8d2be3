/**
 * The tar walker of the package reader: libarchive's reading rules
 * (archive_read_support_format_tar.c), synchronously, keeping nothing of an entry's body but
 * `.PKGINFO`'s.
 */
import { BLOCK, MAX_PKGINFO, MAX_SPECIAL, PackageFormatError } from './package-format.js';
import { bsdtarDisplayName, isExcluded, isPkginfo } from './tar-names.js';

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
export class TarWalker {
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
