/**
 * Package sources: where the PKGBUILD of a package comes from (AUR, a git repository, a raw PKGBUILD),
 * how it is brought up to date, and the state string that decides whether a package is up to date
 * (docs/compatibility.md#sources).
 *
 * @remarks A {@link Source} is the original's source *wrapper*: the devel flag, the `.SRCINFO` override,
 * the `.SRCINFO` serene generated and the devel revisions, around an {@link InnerSource} of one kind.
 * Its JSON ({@link SourceJson}) is the original's `package.source` column, byte for byte in shape, so
 * state strings computed by either implementation agree.
 */

// --- SPECS ---

/** What a user asks to add, as the original's `PackageAddRequest.source`. */
export type SourceSpec =
  | { type: 'aur'; name: string }
  | { type: 'git'; url: string; devel: boolean }
  | { type: 'raw'; pkgbuild: string; devel: boolean };

// --- JSON (the original's `package.source` column) ---

/** `AurSource`: an AUR package base; `version` is the RPC `Version` (or the `.SRCINFO` version). */
export type AurSourceJson = { type: 'AurSource'; base: string; version: string; mirror: boolean };
/** `GitSource`: a custom git repository; `last_commit` is the checkout's `HEAD`. */
export type GitSourceJson = { type: 'GitSource'; repository: string; last_commit: string };
/** `RawSource`: a PKGBUILD given as text. */
export type RawSourceJson = { type: 'RawSource'; pkgbuild: string };
/** `CliSource`: the built-in `serene-cli` package (docs/compatibility.md#serene-cli-package). */
export type CliSourceJson = { type: 'CliSource'; state: string };

/**
 * The inner source as the original's typetag JSON: `type` names the Rust struct, the other keys are its
 * fields. Kinds other than the four known ones come from plugins.
 */
export type InnerSourceJson =
  | AurSourceJson
  | GitSourceJson
  | RawSourceJson
  | CliSourceJson
  | { type: string; [field: string]: unknown };

/** The source wrapper as stored in `package.source`, keys in the original's order. */
export type SourceJson = {
  devel: boolean;
  srcinfo_override: boolean;
  /** the `.SRCINFO` text serene generated, or null */
  srcinfo: string | null;
  /** remote commit of every `git+` source of a devel package, keyed by its URL without `git+` */
  devel_revisions: Record<string, string>;
  inner: InnerSourceJson;
};

// --- SOURCES ---

/** Options of one source operation. */
export interface SourceOperationOptions {
  /** aborting it stops the operation (running git processes are killed) */
  signal?: AbortSignal;
}

/**
 * Makes the `.SRCINFO` of a source folder in an isolated environment: `Runner.printSrcinfo`, or
 * `makepkg --printsrcinfo` as an unprivileged user in tests.
 */
export type SrcinfoGenerator = (sourceDir: string, options?: SourceOperationOptions) => Promise<string>;

/** One kind of source (the original's `SourceImpl`): checkout, update and state of that kind. */
export interface InnerSource {
  /** the JSON tag: `AurSource`, `GitSource`, `RawSource`, `CliSource` or a plugin's own */
  readonly type: string;
  /** the pkgbase, for kinds that know it before the checkout (AUR) */
  readonly base?: string;
  /** Label and URL as `PackageInfo.source` / `source_url` show them (`aur package`, ...). */
  describe(): { label: string; url: string | null };
  /** First checkout into `dir` (created when missing, expected empty). */
  initialize(dir: string, options?: SourceOperationOptions): Promise<void>;
  /** Brings the checkout in `dir` to the newest state (version check, pull). */
  update(dir: string, options?: SourceOperationOptions): Promise<void>;
  /** The kind's state string (AUR: version, git: commit, raw: hash of the PKGBUILD). */
  state(): string;
  /** The PKGBUILD text. */
  pkgbuild(dir: string): Promise<string>;
  /** The `.SRCINFO` the checkout itself carries, or null when it has none. */
  srcinfo(dir: string): Promise<string | null>;
  toJSON(): InnerSourceJson;
  /**
   * For kinds whose checkout is the package's own git repository (AUR, git): puts the checkout at
   * `commit` (fetched before) and takes the state of that commit. The update gate builds an approved
   * revision with it, never a newer one.
   */
  pin?(dir: string, commit: string, options?: SourceOperationOptions): Promise<void>;
  /** For AUR kinds: what the AUR RPC said of the package at the last initialize or update, if it answered. */
  aurInfo?(): AurPackageInfo | undefined;
}

/** What the update gate reads of the AUR RPC `info` of a package. */
export interface AurPackageInfo {
  Maintainer?: string | null;
  CoMaintainers?: string[];
  Submitter?: string | null;
  /** seconds since the epoch */
  LastModified?: number;
}

/**
 * A package's source: an {@link InnerSource} plus the devel flag, the `.SRCINFO` override, the generated
 * `.SRCINFO` and the devel revisions (the original's `Source`).
 *
 * @remarks `dir` is the package's source folder (`sources/<pkgbase>`); it is also the folder a runner
 * builds from. `update` mutates the source: persist `toJSON()` afterwards.
 */
export interface Source {
  readonly inner: InnerSource;
  /** whether remote commits of `git+` sources count towards the state */
  devel: boolean;
  /** always use the generated `.SRCINFO`, even when the checkout has one */
  srcinfoOverride: boolean;
  /** the `.SRCINFO` serene generated, or null */
  readonly generatedSrcinfo: string | null;
  /** remote commits of the `git+` sources, by URL without `git+` (updated only while `devel`) */
  readonly develRevisions: Readonly<Record<string, string>>;
  /** Label and URL as `PackageInfo.source` / `source_url` show them. */
  describe(): { label: string; url: string | null };
  /** First checkout into `dir`, then `.SRCINFO` generation and devel revisions as `update` does. */
  initialize(dir: string, options?: SourceOperationOptions): Promise<void>;
  /**
   * The original's update: inner update; `.SRCINFO` regeneration when the inner state changed or none
   * was generated yet, and the checkout has no `.SRCINFO` or `srcinfoOverride` is set; then, when
   * `devel`, the remote commit of every `git+` source (docs/compatibility.md#sources).
   */
  update(dir: string, options?: SourceOperationOptions): Promise<void>;
  /** The state string: inner state, plus the devel revisions in ascending order of URL when `devel`. */
  state(): string;
  /** The `.SRCINFO` for the next build: generated if overridden, else the checkout's, else generated. */
  srcinfo(dir: string): Promise<string>;
  /** The PKGBUILD text. */
  pkgbuild(dir: string): Promise<string>;
  /** The JSON kept in `package.source`; {@link SourceFactory.restore} reads it back. */
  toJSON(): SourceJson;
  /**
   * Puts the checkout at a fetched `commit` of the package's git repository and refreshes the
   * wrapper's data as an update does; `InputError` for kinds without a git repository (raw).
   */
  pin?(dir: string, commit: string, options?: SourceOperationOptions): Promise<void>;
}

// --- FACTORY ---

/** Which package the AUR dependencies are resolved for. */
export type AurDependencyTarget =
  /** an AUR package, by the pkgname the user gave: its RPC entry lists its dependencies */
  | { name: string }
  /** a package from elsewhere (git, raw): its `depends`, `makedepends` and `checkdepends` */
  | { dependencies: readonly string[] };

/** Options of {@link SourceFactory.resolveAurDependencies}. */
export interface AurDependencyQuery extends SourceOperationOptions {
  /**
   * Whether a dependency string (`foo>=2`) is satisfied without the AUR: by the sync databases or by
   * the packages of our repository (published `.SRCINFO`s plus the package being added).
   */
  isSatisfied(dependency: string): boolean | Promise<boolean>;
}

/** The AUR packages adding a package brings along (docs/compatibility.md#endpoints, adding). */
export interface AurDependencyPlan {
  /** AUR pkgbases to add, an AUR target's own first, then its dependencies' in the order found */
  bases: string[];
  /**
   * dependency strings nothing satisfies (the original fails the add with `failed to satisfy all
   * dependencies for X, missing are a, b`); an AUR target's own name is never in it
   */
  missing: string[];
}

/** Creates sources from specs and from what the store kept. */
export interface SourceFactory {
  /**
   * Creates a source for a spec, without any checkout. AUR names are resolved to their pkgbase (RPC, or
   * the GitHub mirror when resolving is off); an unknown name is a `NotFoundError`.
   */
  create(spec: SourceSpec, options?: SourceOperationOptions): Promise<Source>;
  /** An AUR source for a pkgbase known to exist (a base the dependency walk returned): no lookup. */
  createAur(base: string): Source;
  /**
   * Walks the AUR RPC for the dependencies of `target` that `isSatisfied` does not cover, transitively
   * (by name, then by `Provides`). An unknown AUR target is a `NotFoundError`. Resolves to null when
   * AUR resolution is off (`AUR_RESOLVE_ADDING=false`): then nothing is added from the AUR and every
   * unsatisfied dependency is missing.
   */
  resolveAurDependencies(
    target: AurDependencyTarget,
    query: AurDependencyQuery,
  ): Promise<AurDependencyPlan | null>;
  /** Reads a source back from its JSON (object or text); malformed JSON is an `InputError`. */
  restore(json: Record<string, unknown> | string): Source;
}
