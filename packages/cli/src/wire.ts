/**
 * The JSON the server speaks (docs/compatibility.md#json-types), as the client reads and sends it. The build states
 * are core's types; the rest are the wire shapes (snake_case, dates as strings) only the client needs.
 */

// Types only (erased at run time): the client does not load the server's packages.
import type { BuildProgress, BuildState } from '@serene/core';

export type { BuildProgress, BuildState };

/** `BuildInfo`. */
export interface BuildInfo {
  state: BuildState;
  reason: string;
  version: string | null;
  started: string;
  ended: string | null;
  mem_peak?: number | null;
  cpu_user?: number | null;
  cpu_system?: number | null;
  io_tbr?: number | null;
  io_tbw?: number | null;
}

/** `PackagePeek`: an entry of `GET /package/list`. */
export interface PackagePeek {
  base: string;
  members: string[];
  version: string | null;
  enabled: boolean;
  devel: boolean;
  build: BuildInfo | null;
  added: string;
}

/** `PackageInfo`: `GET /package/{name}`, and the answer of `POST /package/add`. */
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

/**
 * The original's release whose API this client speaks (its `main` after it: docs/compatibility.md#json-types and #live-logs-sse),
 * compared with the `version` of `GET /` (see `versionWarning` in client.ts).
 */
export const PROTOCOL_VERSION = 'v0.4.3';

/** `SereneInfo`: `GET /`. */
export interface SereneInfo {
  version: string;
  started: string;
  name: string;
  architecture: string;
  readable: boolean;
  signed: boolean;
}

/** `PackageAddRequest`. */
export interface PackageAddRequest {
  replace: boolean;
  resolve: boolean;
  build: boolean;
  source:
    | { type: 'aur'; name: string }
    | { type: 'git'; url: string; devel: boolean }
    | { type: 'raw'; pkgbuild: string; devel: boolean };
}

/** `PackageBuildRequest`: all four fields are required, `packages` too for `/build/all`. */
export interface PackageBuildRequest {
  packages: string[];
  clean: boolean;
  resolve: boolean;
  force: boolean;
}

/** `PackageSettingsRequest`. */
export type PackageSettingsRequest =
  | { key: 'clean' | 'private' | 'enabled' | 'dependency' | 'devel' | 'srcinfooverride'; value: boolean }
  | { key: 'schedule' | 'prepare'; value: string | null }
  | { key: 'flags'; value: string[] }
  // the update gate (docs/update-gate.md); null: the server default applies again
  | { key: 'cooloff'; value: string | null }
  | { key: 'trust'; value: boolean | null }
  | { key: 'review'; value: 'off' | 'diff' | 'all' | null };

/** A policy of the update gate. */
export interface GatePolicyJson {
  cool_off: string;
  trust: boolean;
  review: 'off' | 'diff' | 'all';
}

/** A held update (`GET /review`). */
export interface HeldUpdateJson {
  base: string;
  revision: string;
  version: string;
  base_revision: string | null;
  reasons: { kind: string; message: string; until?: string }[];
  detected: string;
  modified: string;
  trust: {
    maintainer?: string | null;
    co_maintainers: string[];
    submitter?: string | null;
    packagers: string[];
  };
  files: { status: string; path: string }[];
  policy: GatePolicyJson;
}

/** `GET /review/{name}`. */
export interface HeldUpdateReview extends HeldUpdateJson {
  diff: string;
}

/** The makepkg flags the server accepts (`MakepkgFlag`). */
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

/** Whether a build is over: cancelled, success, failure or fatal. */
export function isDone(state: BuildState): boolean {
  return state.state !== 'pending' && state.state !== 'running';
}

/** A live event of `GET /package/{name}/build/logs/subscribe` (docs/compatibility.md#live-logs-sse). */
export type LiveEvent =
  | { event: 'change'; data: BuildState }
  | { event: 'log'; data: string }
  | { event: 'ping'; data: null };

/** An entry of `GET /queue` (beyond the original): a build queued or running. */
export interface QueueEntry {
  base: string;
  started: string;
  reason: string;
  state: BuildState;
  /** `waiting` for builds of its session, `queued` for a build slot, `running` */
  phase: 'waiting' | 'queued' | 'running';
  waiting_for: string[];
  /** the engine running it; null while it waits for its turn or a free engine */
  engine: string | null;
  architecture: string;
}

/** An entry of `GET /engines` (beyond the original): an engine with its state and load. */
export interface EngineJson {
  name: string;
  /** null until it answered once */
  architecture: string | null;
  state: 'up' | 'down' | 'unknown';
  /** when the state last changed */
  since: string;
  /** why it is down */
  reason: string | null;
  capacity: number;
  running: number;
  /** bases of the builds running on it */
  builds: string[];
  labels: string[];
}

/** An entry of `GET /builds` (beyond the original): a build with its package. */
export interface RecentBuild extends BuildInfo {
  base: string;
  /** what the build was for (servers before several architectures leave it out) */
  architecture?: string;
  /** the engine it ran on; null when unknown (servers before it was recorded leave it out) */
  engine?: string | null;
}
