/**
 * The fields of a package's `.PKGINFO`, as repo-add reads them: values are kept as the strings the
 * file holds (whitespace runs collapsed to one space), so database entries match repo-add's byte for byte.
 */
export interface PkgInfo {
  pkgname: string;
  pkgbase: string | undefined;
  /** full version `[epoch:]pkgver-pkgrel` */
  pkgver: string;
  pkgdesc: string | undefined;
  url: string | undefined;
  builddate: string | undefined;
  packager: string | undefined;
  /** installed size in bytes, as written */
  size: string | undefined;
  arch: string | undefined;
  license: string[];
  group: string[];
  replaces: string[];
  depend: string[];
  conflict: string[];
  provides: string[];
  optdepend: string[];
  makedepend: string[];
  checkdepend: string[];
  backup: string[];
}

/** What reading a package file yields. */
export interface PackageFile {
  /** absolute path of the package file */
  path: string;
  /** base name of the file */
  filename: string;
  pkginfo: PkgInfo;
  /**
   * Paths in the archive as `bsdtar -tf` prints them, without top-level dot files (`.PKGINFO`,
   * `.MTREE`, ...), sorted bytewise and unique: the `%FILES%` list of the files database.
   */
  files: string[];
  /** size of the package file in bytes */
  csize: number;
  /** hex md5 of the package file */
  md5: string;
  /** hex sha256 of the package file */
  sha256: string;
}
