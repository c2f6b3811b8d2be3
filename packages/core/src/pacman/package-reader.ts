import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { InvalidPackageError } from '../errors.js';
import {
  decodeGzip,
  decodeNone,
  decodeWithProgram,
  decodeXz,
  decodeZstd,
  detectCompression,
  findProgram,
  type Input,
  type Sink,
} from './decompressors.js';
import { FileSource } from './package-file-source.js';
import { CHUNK, EXTERNAL_ZSTD_MIN_SIZE, PackageFormatError } from './package-format.js';
import { parsePkginfo } from './pkginfo.js';
import { sortUnique } from './tar-names.js';
import { TarWalker } from './tar-walker.js';
import type { PackageFile, PkgInfo } from './types.js';

export { bsdtarDisplayName } from './tar-names.js';

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
