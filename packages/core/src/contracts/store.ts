import { SereneError } from '../errors.js';
import type { GateRecord } from './gate.js';
import type { BuildStats } from './runner.js';

// --- DOMAIN TYPES ---

/** Where a build stands (docs/compatibility.md#json-types, `BuildProgress`). */
export type BuildProgress = 'resolve' | 'update' | 'build' | 'publish' | 'clean';

/** The state of one build, as the original's `BuildState`. */
export type BuildState =
  | { state: 'pending' }
  | { state: 'cancelled'; info: string }
  | { state: 'running'; info: BuildProgress }
  | { state: 'success' }
  | { state: 'failure' }
  | { state: 'fatal'; info: [string, BuildProgress] };

/** The `state` tags of builds that have not finished yet (docs/compatibility.md#json-types). */
export const UNFINISHED_BUILD_STATES = ['pending', 'running'] as const;

/** Why a build was started. */
export type BuildReason = 'webhook' | 'manual' | 'schedule' | 'initial' | 'unknown';

/** makepkg flags a package may set (docs/compatibility.md#json-types, `MakepkgFlag`). */
export const MAKEPKG_FLAGS = [
  'ignorearch',
  'clean',
  'cleanbuild',
  'nodeps',
  'noextract',
  'install',
  'rmdeps',
  'repackage',
  'holdver',
  'nocheck',
  'noprepare',
  'skipchecksums',
  'skipinteg',
  'skippgpcheck',
] as const;
/** One of {@link MAKEPKG_FLAGS}. */
export type MakepkgFlag = (typeof MAKEPKG_FLAGS)[number];

// --- RECORDS ---

/** One added package (docs/compatibility.md#database-schema, table `package`). */
export interface PackageRecord {
  /** pkgbase; the identity, exact and case-sensitive */
  base: string;
  added: Date;
  /** serialised source, see `Source.toJSON` */
  source: Record<string, unknown>;
  /** .SRCINFO of the last successful publish */
  srcinfo: string | null;
  /** PKGBUILD of the last successful publish */
  pkgbuild: string | null;
  enabled: boolean;
  clean: boolean;
  private: boolean;
  dependency: boolean;
  schedule: string | null;
  prepare: string | null;
  flags: MakepkgFlag[];
  /** source state string at the last successful publish (`init` for new packages) */
  builtState: string;
  /**
   * source state string when the last build failed, null after a success: a scheduled (not forced)
   * run skips the package while its state is still this one (beyond the original, which rebuilt
   * failing packages at every tick)
   */
  failedState: string | null;
}

/** What {@link StoreOperations.updatePackage} may change: any field but the identity. */
export type PackageChanges = Partial<Omit<PackageRecord, 'base'>>;

/**
 * One build (docs/compatibility.md#database-schema, table `build`); `(package, started)` is its identity.
 *
 * @remarks `started` is kept with the precision of a `Date` (milliseconds); the orchestrator must not
 * start two builds of one package in the same millisecond (the store rejects the second with a
 * `ConflictError`).
 */
export interface BuildRecord {
  package: string;
  started: Date;
  ended: Date | null;
  state: BuildState;
  reason: BuildReason;
  /** published pkgver */
  version: string | null;
  /** the container exited with 0 */
  runSuccess: boolean | null;
  runStarted: Date | null;
  runEnded: Date | null;
  /** null when no stats were read; a stats object whose fields are all null reads back as null */
  stats: BuildStats | null;
  /**
   * the architecture the build is for, as pacman names it (`x86_64`, `aarch64`); absent for builds
   * recorded before serene built for several architectures (and the original's): those are of the
   * server's primary architecture, `ARCH` (docs/engines.md#architectures)
   */
  arch?: string | undefined;
  /**
   * the engine the build ran on (an `EngineStatus` name: a Docker Engine of `ENGINES`, or the one
   * engine of a runner without several, named after the runner); absent until the run ended, for a
   * build that ran on none (cancelled or timed out while it waited, failed before its run) and for
   * builds recorded before serene recorded it (docs/engines.md)
   */
  engine?: string | undefined;
}

/** What {@link StoreOperations.updateBuild} may change: any field but the identity. */
export type BuildChanges = Partial<Omit<BuildRecord, 'package' | 'started' | 'arch'>>;

/**
 * A build start time to look a build up by: a `Date`, or an RFC 3339 date-time string, which is
 * compared with its full precision (up to nanoseconds, any offset), as the original's
 * `GET /package/{name}/build/{time}` does.
 */
export type BuildTime = Date | string;

// --- PAGES ---

/**
 * A page of a list ordered by package base (keyset paging): the entries whose base sorts after
 * `after`, at most `limit` of them, in the list's order. The next page starts after the base of the
 * last entry of this one; a page shorter than `limit` is the last.
 *
 * @remarks Bases compare in code unit order. The engines compare bytes (SQLite's `BINARY`, the `C`
 * collation of PostgreSQL), which is code point order: the same for package bases, which are ASCII
 * (`packageNameProblem`). Reading a whole table in one query materialises every row at once and maps
 * them all in one turn of the event loop (docs/benchmarks.md, the scheduled session on simulated
 * engines); {@link packagePages} reads it a page per query instead.
 */
export interface PackagePage {
  /** the base the page starts after (not included); from the first entry when omitted */
  after?: string;
  /** at most this many entries: a non-negative integer */
  limit: number;
}

/**
 * A page of {@link StoreOperations.listLatestBuilds}, by the bases of the packages: those after
 * `after` (not included) and up to `through` (included), at most `limit` of them; each end is open
 * when omitted. The newest builds of the packages of one page of {@link StoreOperations.listPackages}
 * are those `after` the same base and `through` its last one.
 */
export interface LatestBuildPage {
  /** the base the page starts after (not included); from the first package when omitted */
  after?: string;
  /** the last base the page may include */
  through?: string;
  /** at most this many builds: a non-negative integer */
  limit?: number;
}

/** What {@link StoreOperations.listGates} lists. */
export interface GateFilter {
  /** only the records that hold an update (`held` not null) */
  heldOnly?: boolean;
}

// --- STORE ---

/**
 * The data operations of a {@link Store}; a transaction hands its work a set bound to it.
 *
 * @remarks Errors: `NotFoundError` when a write names a package or build that does not exist,
 * `ConflictError` when an insert collides with an existing identity, `InputError` for malformed
 * arguments (a `BuildTime` string that is not RFC 3339, a negative index), `UnavailableError` once
 * the store is closed (or before it was opened).
 *
 * Strings (well-formed Unicode) are stored exactly; only build logs may contain U+0000.
 */
export interface StoreOperations {
  // --- packages ---

  /**
   * All packages, ordered by `base` (code unit order); with a `page`, only that page of them
   * ({@link packagePages} reads them all page by page). `InputError` for a `limit` that is not a
   * non-negative integer.
   */
  listPackages(page?: PackagePage): Promise<PackageRecord[]>;
  /** How many packages there are. */
  countPackages(): Promise<number>;
  getPackage(base: string): Promise<PackageRecord | undefined>;
  /** Adds a package; `ConflictError` when one with this base exists. */
  insertPackage(record: PackageRecord): Promise<void>;
  /** Inserts or replaces a package (its builds and logs stay). */
  putPackage(record: PackageRecord): Promise<void>;
  /** Changes some fields of a package (settings, published state); `NotFoundError` when unknown. */
  updatePackage(base: string, changes: PackageChanges): Promise<void>;
  /** Deletes a package with its builds and their logs; false when it did not exist. */
  deletePackage(base: string): Promise<boolean>;

  // --- update gate ---

  /** The gate record of a package, if one was written. */
  getGate(base: string): Promise<GateRecord | undefined>;
  /** Every gate record, ordered by `base`; with `heldOnly`, only those that hold an update. */
  listGates(filter?: GateFilter): Promise<GateRecord[]>;
  /**
   * Inserts or replaces the gate record of a package; `NotFoundError` when the package does not
   * exist. Deleting the package deletes its record.
   */
  putGate(record: GateRecord): Promise<void>;

  // --- builds ---

  /** Adds a build; `NotFoundError` for an unknown package, `ConflictError` for a taken start time. */
  insertBuild(record: BuildRecord): Promise<void>;
  /** Changes some fields of the build `(base, started)`; `NotFoundError` when there is none. */
  updateBuild(base: string, started: Date, changes: BuildChanges): Promise<void>;
  /** Builds of a package, newest first, at most `limit` (all when omitted); `[]` for an unknown package. */
  listBuilds(base: string, limit?: number): Promise<BuildRecord[]>;
  /** The newest build of a package. */
  getLatestBuild(base: string): Promise<BuildRecord | undefined>;
  /**
   * The newest build of every package that has one, ordered by package (code unit order); with a
   * `page`, only those of the packages in it. `InputError` for a `limit` that is not a non-negative
   * integer.
   */
  listLatestBuilds(page?: LatestBuildPage): Promise<BuildRecord[]>;
  /**
   * How many packages have their newest build in each state (as {@link StoreOperations.listLatestBuilds}
   * would list them, without reading them): a state no newest build is in is left out.
   */
  countLatestBuilds(): Promise<Partial<Record<BuildState['state'], number>>>;
  /**
   * The newest builds of all packages together, newest first (ties by package), at most `limit`;
   * with `before`, only builds started before it (the next page of a list); with `base`, only that
   * package's (`[]` for an unknown package).
   */
  listRecentBuilds(limit: number, before?: Date, base?: string): Promise<BuildRecord[]>;
  /**
   * The `index`-th build counting from the oldest, 0-based: the original's numeric build ids.
   *
   * @remarks Retention ({@link StoreOperations.pruneBuilds}) removes the oldest builds, so ids shift
   * after a prune.
   */
  getBuildByIndex(base: string, index: number): Promise<BuildRecord | undefined>;
  /** The build whose start time equals `started` exactly. */
  getBuild(base: string, started: BuildTime): Promise<BuildRecord | undefined>;
  countBuilds(base: string): Promise<number>;
  /** Builds still pending or running, of all packages, oldest first (to mark them fatal at start-up). */
  listUnfinishedBuilds(): Promise<BuildRecord[]>;

  // --- logs ---

  /**
   * Appends a chunk of output to a build's log; `NotFoundError` when the build does not exist.
   *
   * @remarks Appends to one build are applied in call order even when the caller does not await
   * each one (a runner's `onLog` is synchronous). Appending `''` creates an empty log.
   */
  appendLog(base: string, started: Date, chunk: string): Promise<void>;
  /**
   * The whole log of a build as appended so far; undefined when nothing was ever appended (the
   * build has not run yet, died before running, or does not exist).
   */
  readLog(base: string, started: BuildTime): Promise<string | undefined>;

  // --- retention ---

  /**
   * Deletes builds (with their logs) started before `before`, except each package's newest build
   * and builds that are still pending or running. Returns how many builds were deleted.
   */
  pruneBuilds(before: Date): Promise<number>;

  // --- transactions ---

  /**
   * Runs `work` in a transaction: everything it does through `tx` is committed when it resolves
   * and rolled back when it rejects (the rejection is passed on). Log appends `work` did not await
   * are waited for before the end. Nested calls use savepoints.
   *
   * @remarks Inside `work`, use only `tx`: the outer store may wait for the transaction to end
   * (SQLite has one connection), so awaiting it inside `work` can deadlock.
   */
  transaction<T>(work: (tx: StoreOperations) => Promise<T>): Promise<T>;
}

/**
 * The `Store` keeps packages, builds and build logs.
 *
 * @remarks `open()` connects and runs the migrations; it is idempotent. `close()` waits for pending
 * log appends, releases the connection and is idempotent; afterwards every operation rejects with
 * `UnavailableError`. A closed store cannot be opened again.
 */
export interface Store extends StoreOperations {
  /** Short name of the implementation, for logs (`sqlite`, `postgres`). */
  readonly name: string;
  open(): Promise<void>;
  close(): Promise<void>;
}

// --- READING BY PAGES ---

/**
 * Every package, a page (an array of at most `size` records, 500 by default) at a time, in the
 * order of {@link StoreOperations.listPackages}; never an empty page. Each page is its own query, so
 * the event loop turns between pages and only one page of rows is held at a time.
 *
 * @remarks The pages are not one snapshot: a package that exists from the first page to the last
 * comes exactly once; one added or removed meanwhile may come or not. `RangeError` (at the first
 * `next()`) for a size that is not a positive integer.
 */
export async function* packagePages(
  store: Pick<StoreOperations, 'listPackages'>,
  size = 500,
): AsyncGenerator<PackageRecord[], void, undefined> {
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new RangeError(`a page size must be a positive integer, not ${size}`);
  }
  let after: string | undefined;
  for (;;) {
    const page = await store.listPackages(after === undefined ? { limit: size } : { after, limit: size });
    if (page.length > 0) yield page;
    if (page.length < size) return;
    const last = page[page.length - 1]!.base;
    // a store whose pages include `after` would never get past it
    if (last === after) throw new SereneError(`the store read the page after '${after}' again`);
    after = last;
  }
}
