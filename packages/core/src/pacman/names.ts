/**
 * The package-name rule, in one place: what makepkg accepts as a pkgname or pkgbase, which also
 * keeps a name a safe file and folder name. The API, the package service and the package reader
 * all ask here; the repository name (`NAME.db.tar.gz`) takes the same characters.
 */

/** Longest package name accepted (a file name must hold it). */
export const MAX_NAME_LENGTH = 255;

const NAME_CHARACTERS = /^[A-Za-z0-9@._+-]+$/;

/**
 * Why `name` is not an acceptable pkgbase or pkgname, or undefined when it is: letters, digits and
 * `@._+-`, not starting with `.` or `-`, at most {@link MAX_NAME_LENGTH} characters.
 */
export function packageNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.length > MAX_NAME_LENGTH) {
    return `it is ${name.length} characters long, the limit is ${MAX_NAME_LENGTH}`;
  }
  if (!NAME_CHARACTERS.test(name)) return 'it may contain only letters, digits and @ . _ + -';
  if (name.startsWith('.') || name.startsWith('-')) return 'it may not start with . or -';
  return undefined;
}

/**
 * Why `name` is not an acceptable repository name (`NAME`, the file `NAME.db.tar.gz`), or undefined
 * when it is: the characters of a package name, not starting with `.`.
 */
export function repositoryNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (!NAME_CHARACTERS.test(name)) return 'it may contain only letters, digits and @ . _ + -';
  if (name.startsWith('.')) return 'it may not start with .';
  return undefined;
}
