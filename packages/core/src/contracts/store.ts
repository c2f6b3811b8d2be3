import type { BuildStats } from './runner.js';

/** Where a build stands (reference 1.4, `BuildProgress`). */
export type BuildProgress = 'resolve' | 'update' | 'build' | 'publish' | 'clean';

/** The state of one build, as the original's `BuildState`. */
export type BuildState =
  | { state: 'pending' }
  | { state: 'cancelled'; info: string }
  | { state: 'running'; info: BuildProgress }
  | { state: 'success' }
  | { state: 'failure' }
  | { state: 'fatal'; info: [string, BuildProgress] };

/** Why a build was started. */
export type BuildReason = 'webhook' | 'manual' | 'schedule' | 'initial' | 'unknown';

/** makepkg flags a package may set (reference 1.4, `MakepkgFlag`). */
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

/** One added package (reference 8.1, table `package`). */
export interface PackageRecord {
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
}

/** One build (reference 8.1, table `build`); `started` is its identity within the package. */
export interface BuildRecord {
  package: string;
  started: Date;
  ended: Date | null;
  state: BuildState;
  reason: BuildReason;
  /** published pkgver */
  version: string | null;
  runSuccess: boolean | null;
  runStarted: Date | null;
  runEnded: Date | null;
  stats: BuildStats | null;
}

/**
 * The `Store` keeps packages, builds and build logs.
 *
 * @remarks Implementations run their migrations in `open()`. The build orchestration issue extends
 * this contract and its conformance suite (`testStore`).
 */
export interface Store {
  readonly name: string;
  open(): Promise<void>;
  close(): Promise<void>;

  listPackages(): Promise<PackageRecord[]>;
  getPackage(base: string): Promise<PackageRecord | undefined>;
  /** Inserts or replaces a package. */
  putPackage(record: PackageRecord): Promise<void>;
  /** Deletes a package with its builds and logs; false when it did not exist. */
  deletePackage(base: string): Promise<boolean>;

  /** Builds of a package, newest first, at most `limit`. */
  listBuilds(base: string, limit?: number): Promise<BuildRecord[]>;
  putBuild(record: BuildRecord): Promise<void>;

  appendLog(base: string, started: Date, chunk: string): Promise<void>;
  readLog(base: string, started: Date): Promise<string | undefined>;
}
