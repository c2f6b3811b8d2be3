/** The JSON shapes of the API the dashboard reads (see docs/api.md). */

export type BuildProgress = 'resolve' | 'update' | 'build' | 'publish' | 'clean';

export type BuildState =
  | { state: 'pending' }
  | { state: 'cancelled'; info: string }
  | { state: 'running'; info: BuildProgress }
  | { state: 'success' }
  | { state: 'failure' }
  | { state: 'fatal'; info: [string, BuildProgress] };

export interface BuildInfo {
  state: BuildState;
  reason: string;
  version: string | null;
  started: string;
  ended: string | null;
  mem_peak: number | null;
  cpu_user: number | null;
  cpu_system: number | null;
  io_tbr: number | null;
  io_tbw: number | null;
}

/** An entry of `GET /builds`: a build with its package, architecture and engine. */
export interface RecentBuild extends BuildInfo {
  base: string;
  architecture: string;
  /** the engine it ran on; null when unknown (not run, or recorded before serene recorded it) */
  engine: string | null;
}

export interface PackagePeek {
  base: string;
  members: string[];
  version: string | null;
  enabled: boolean;
  devel: boolean;
  build: BuildInfo | null;
  added: string;
}

export interface PackageInfo {
  base: string;
  members: string[];
  description: string | null;
  upstream_url: string | null;
  builds: number;
  version: string | null;
  source: string;
  source_url: string | null;
  devel: boolean;
  srcinfo_override: boolean;
  enabled: boolean;
  clean: boolean;
  private: boolean;
  dependency: boolean;
  schedule: string;
  schedule_changed: boolean;
  prepare_commands: string | null;
  makepkg_flags: string[];
  added: string;
}

export interface SereneInfo {
  version: string;
  started: string;
  name: string;
  architecture: string;
  readable: boolean;
  signed: boolean;
}

/** An engine that builds packages, with its state and load (`GET /engines`). */
export interface Engine {
  name: string;
  /** null until it answered once */
  architecture: string | null;
  state: 'up' | 'down' | 'unknown';
  since: string;
  /** why it is down */
  reason: string | null;
  capacity: number;
  running: number;
  /** bases of the builds running on it */
  builds: string[];
  labels: string[];
}

export interface ServerDetails extends SereneInfo {
  fingerprint: string | null;
  engines: Engine[];
  /** the architectures served, each at `/<arch>/`, the primary first (docs/engines.md#architectures) */
  architectures: string[];
  packages: number;
  queue: { running: number; queued: number };
}

export interface QueueEntry {
  base: string;
  started: string;
  reason: string;
  state: BuildState;
  phase: 'waiting' | 'queued' | 'running';
  waiting_for: string[];
  /** the engine running it; null while it waits for its turn or a free engine */
  engine: string | null;
  architecture: string;
}

export interface StateEvent {
  base: string;
  started: string;
  reason: string | null;
  state: BuildState;
}

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

/**
 * A held update of the update gate (issue 17; `GET /review`), as far as the dashboard shows it.
 * Servers without the gate answer `GET /review` with 404 and the page shows no Review tab.
 */
export interface HeldUpdate {
  base: string;
  revision: string;
  version: string;
  base_revision: string | null;
  reasons: { kind: string; message: string; until?: string }[];
  detected: string;
  modified: string;
  files: { status: string; path: string }[];
}

export interface HeldUpdateReview extends HeldUpdate {
  diff: string;
}
