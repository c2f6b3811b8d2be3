/** One package as a repository database lists it. */
export interface RepoEntry {
  /** pkgname */
  name: string;
  /** pkgbase, when the package declared one */
  base: string | undefined;
  /** full version: `[epoch:]pkgver-pkgrel` */
  version: string;
  /** file name of the package, relative to the repository folder */
  filename: string;
  arch: string;
  /** whether the entry carries a `%PGPSIG%` */
  signed: boolean;
}

/** What a publish changed. */
export interface PublishResult {
  /** the entries now in the database for the published files */
  added: RepoEntry[];
  /** the entries they replaced (older or equal versions of the same pkgnames) */
  replaced: RepoEntry[];
}

/** What a publish or remove belongs to. */
export interface PublishOptions {
  /**
   * The package base the files are (or the names were) published for. A publish then replaces
   * everything the base published before: members it no longer has leave the database and their files
   * are deleted. A remove also removes every member and file recorded for the base.
   */
  base?: string;
}

/**
 * A `Publisher` makes built packages visible in a pacman repository.
 *
 * @remarks Every change is atomic for readers: pacman either sees the old database or the new one,
 * never a half-written file. Calls are serialized by the implementation.
 */
export interface Publisher {
  /** Short name of the implementation, for logs. */
  readonly name: string;
  /**
   * Prepares the repository when serene starts: creates an empty (and, with a signer, signed)
   * database when none exists, and does the publisher's own start-up chores (the filesystem
   * repository removes files a crash left). Idempotent.
   */
  init(): Promise<void>;
  /**
   * Copies package files into the repository, signs them when a signer is set, and adds them to the
   * database, replacing older versions of the same pkgnames and deleting the replaced files.
   * A file that is not a valid package fails the whole call with `InvalidPackageError` and changes nothing.
   */
  publish(files: readonly string[], options?: PublishOptions): Promise<PublishResult>;
  /**
   * Removes packages by pkgname, with their files and signatures. An unknown name fails the whole
   * call with `NotFoundError` and changes nothing. Returns the removed entries.
   */
  remove(names: readonly string[], options?: PublishOptions): Promise<RepoEntry[]>;
  /**
   * The file name (relative to the repository folder) a pkgname was last published as, from the
   * publisher's own record; undefined when it has none. Publishers without a record leave it out.
   */
  fileOf?(name: string): Promise<string | undefined>;
  /** The entries of the database, sorted by name. */
  list(): Promise<RepoEntry[]>;
  /** Signs everything already published that has no valid signature (when a signer is set). */
  resign?(): Promise<void>;
  /** Releases resources; called once, when serene stops. */
  dispose?(): Promise<void>;
}
