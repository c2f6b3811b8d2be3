/**
 * The limits of a package file and the error of a malformed one, shared by the parts of the package
 * reader (package-reader.ts).
 */

/** Read size; files up to it are read whole in one read (which lets small zstd windows shrink). */
export const CHUNK = 2 << 20;
export const BLOCK = 512;
/** `.PKGINFO` larger than this is refused rather than held in memory. */
export const MAX_PKGINFO = 16 << 20;
/** pax and GNU long-name bodies, as libarchive limits them ("Special header too large"). */
export const MAX_SPECIAL = 1 << 20;
/** libzstd's (and so libarchive's) default decompression window limit. */
export const ZSTD_MAX_WINDOW = 1 << 27;
export const EXTERNAL_ZSTD_MIN_SIZE = CHUNK;

/** A problem with the package's contents; becomes an {@link InvalidPackageError} naming the file. */
export class PackageFormatError extends Error {}
