import type { GateRecord, HeldUpdate, TrustRecord } from '../contracts/gate.js';
import type { BuildStats } from '../contracts/runner.js';
import type {
  BuildChanges,
  BuildProgress,
  BuildRecord,
  BuildState,
  PackageChanges,
  PackageRecord,
} from '../contracts/store.js';
import { SereneError } from '../errors.js';
import { formatTimestamp, fromStoredTimestamp } from './timestamp.js';

/** A row of table `package`, as the drivers return it. */
export interface PackageRow {
  base: string;
  added: string;
  source: string;
  srcinfo: string | null;
  pkgbuild: string | null;
  enabled: boolean | number;
  clean: boolean | number;
  private: boolean | number;
  dependency: boolean | number;
  schedule: string | null;
  prepare: string | null;
  flags: string;
  built_state: string;
  failed_state: string | null;
}

/** A row of table `build`, as the drivers return it (pg returns bigint columns as strings). */
export interface BuildRow {
  package: string;
  started: string;
  ended: string | null;
  state: string;
  progress: string | null;
  fatal: string | null;
  version: string | null;
  run_success: boolean | number | null;
  run_started: string | null;
  run_ended: string | null;
  reason: string;
  mem_peak: number | string | null;
  cpu_user: number | string | null;
  cpu_system: number | string | null;
  io_tbr: number | string | null;
  io_tbw: number | string | null;
  /** null for builds recorded before migration 0003 (of the primary architecture) */
  arch?: string | null;
  /** null for builds recorded before migration 0004 and those that ran on no engine */
  engine?: string | null;
}

// --- packages ---

const PACKAGE_COLUMNS: {
  [K in keyof Omit<PackageRecord, 'base'>]: (value: PackageRecord[K]) => [string, unknown];
} = {
  added: (value) => ['added', formatTimestamp(value)],
  source: (value) => ['source', JSON.stringify(value)],
  srcinfo: (value) => ['srcinfo', value],
  pkgbuild: (value) => ['pkgbuild', value],
  enabled: (value) => ['enabled', value],
  clean: (value) => ['clean', value],
  private: (value) => ['private', value],
  dependency: (value) => ['dependency', value],
  schedule: (value) => ['schedule', value],
  prepare: (value) => ['prepare', value],
  flags: (value) => ['flags', JSON.stringify(value)],
  builtState: (value) => ['built_state', value],
  failedState: (value) => ['failed_state', value],
};

/** The columns to write for some fields of a package. */
export function packageColumns(changes: PackageChanges): Record<string, unknown> {
  const columns: Record<string, unknown> = {};
  for (const [key, toColumn] of Object.entries(PACKAGE_COLUMNS) as [
    keyof PackageChanges,
    (value: unknown) => [string, unknown],
  ][]) {
    if (changes[key] === undefined) continue;
    const [column, value] = toColumn(changes[key]);
    columns[column] = value;
  }
  return columns;
}

/** The row of a whole package. */
export function packageRow(record: PackageRecord): Record<string, unknown> {
  return { base: record.base, ...packageColumns(record) };
}

export function packageFromRow(row: PackageRow): PackageRecord {
  return {
    base: row.base,
    added: fromStoredTimestamp(row.added),
    source: JSON.parse(row.source) as Record<string, unknown>,
    srcinfo: row.srcinfo,
    pkgbuild: row.pkgbuild,
    enabled: Boolean(row.enabled),
    clean: Boolean(row.clean),
    private: Boolean(row.private),
    dependency: Boolean(row.dependency),
    schedule: row.schedule,
    prepare: row.prepare,
    flags: JSON.parse(row.flags) as PackageRecord['flags'],
    builtState: row.built_state,
    failedState: row.failed_state ?? null,
  };
}

// --- builds ---

/** The `state`, `progress` and `fatal` columns of a state (docs/compatibility.md#database-schema). */
function stateColumns(state: BuildState): { state: string; progress: string | null; fatal: string | null } {
  switch (state.state) {
    case 'pending':
    case 'success':
    case 'failure':
      return { state: state.state, progress: null, fatal: null };
    case 'cancelled':
      return { state: state.state, progress: null, fatal: state.info };
    case 'running':
      return { state: state.state, progress: state.info, fatal: null };
    case 'fatal':
      return { state: state.state, progress: state.info[1], fatal: state.info[0] };
  }
}

function stateFromColumns(row: BuildRow): BuildState {
  switch (row.state) {
    case 'pending':
    case 'success':
    case 'failure':
      return { state: row.state };
    case 'cancelled':
      return { state: 'cancelled', info: row.fatal ?? '' };
    case 'running':
      return { state: 'running', info: (row.progress ?? 'build') as BuildProgress };
    case 'fatal':
      return { state: 'fatal', info: [row.fatal ?? '', (row.progress ?? 'resolve') as BuildProgress] };
    default:
      throw new SereneError(`build ${row.package} ${row.started} has an unknown state '${row.state}'`);
  }
}

function statsColumns(stats: BuildStats | null): Record<string, number | null> {
  return {
    mem_peak: stats?.memoryPeak ?? null,
    cpu_user: stats?.cpuUser ?? null,
    cpu_system: stats?.cpuSystem ?? null,
    io_tbr: stats?.ioRead ?? null,
    io_tbw: stats?.ioWritten ?? null,
  };
}

const toNumber = (value: number | string | null): number | null => (value === null ? null : Number(value));

function statsFromColumns(row: BuildRow): BuildStats | null {
  const stats: BuildStats = {
    memoryPeak: toNumber(row.mem_peak),
    cpuUser: toNumber(row.cpu_user),
    cpuSystem: toNumber(row.cpu_system),
    ioRead: toNumber(row.io_tbr),
    ioWritten: toNumber(row.io_tbw),
  };
  return Object.values(stats).every((value) => value === null) ? null : stats;
}

const optionalTimestamp = (date: Date | null): string | null =>
  date === null ? null : formatTimestamp(date);

/** The columns to write for some fields of a build. */
export function buildColumns(changes: BuildChanges): Record<string, unknown> {
  const columns: Record<string, unknown> = {};
  if (changes.ended !== undefined) columns.ended = optionalTimestamp(changes.ended);
  if (changes.state !== undefined) Object.assign(columns, stateColumns(changes.state));
  if (changes.reason !== undefined) columns.reason = changes.reason;
  if (changes.version !== undefined) columns.version = changes.version;
  if (changes.runSuccess !== undefined) columns.run_success = changes.runSuccess;
  if (changes.runStarted !== undefined) columns.run_started = optionalTimestamp(changes.runStarted);
  if (changes.runEnded !== undefined) columns.run_ended = optionalTimestamp(changes.runEnded);
  if (changes.stats !== undefined) Object.assign(columns, statsColumns(changes.stats));
  if (changes.engine !== undefined) columns.engine = changes.engine;
  return columns;
}

/** The row of a whole build. */
export function buildRow(record: BuildRecord): Record<string, unknown> {
  return {
    package: record.package,
    started: formatTimestamp(record.started),
    ...buildColumns(record),
    ...(record.arch === undefined ? {} : { arch: record.arch }),
  };
}

export function buildFromRow(row: BuildRow): BuildRecord {
  return {
    package: row.package,
    started: fromStoredTimestamp(row.started),
    ended: row.ended === null ? null : fromStoredTimestamp(row.ended),
    state: stateFromColumns(row),
    reason: row.reason as BuildRecord['reason'],
    version: row.version,
    runSuccess: row.run_success === null ? null : Boolean(row.run_success),
    runStarted: row.run_started === null ? null : fromStoredTimestamp(row.run_started),
    runEnded: row.run_ended === null ? null : fromStoredTimestamp(row.run_ended),
    stats: statsFromColumns(row),
    ...(row.arch === null || row.arch === undefined ? {} : { arch: row.arch }),
    ...(row.engine === null || row.engine === undefined ? {} : { engine: row.engine }),
  };
}

// --- gates ---

/** A row of table `package_gate`. */
export interface GateRow {
  base: string;
  policy: string;
  inherits_from: string | null;
  trust: string | null;
  accepted: string | null;
  held: string | null;
  approved: string | null;
  rejected: string | null;
}

/** The row of a gate record; dates in the JSON are ISO strings. */
export function gateRow(record: GateRecord): GateRow {
  return {
    base: record.base,
    policy: JSON.stringify(record.policy),
    inherits_from: record.inheritsFrom,
    trust: record.trust === null ? null : JSON.stringify(record.trust),
    accepted: record.accepted,
    held: record.held === null ? null : JSON.stringify(record.held),
    approved: record.approved,
    rejected: record.rejected,
  };
}

export function gateFromRow(row: GateRow): GateRecord {
  let held: HeldUpdate | null = null;
  if (row.held !== null) {
    const json = JSON.parse(row.held) as HeldUpdate & { detected: string; modified: string };
    held = {
      ...json,
      detected: new Date(json.detected),
      modified: new Date(json.modified),
      reasons: json.reasons.map((reason) =>
        reason.until === undefined
          ? reason
          : { ...reason, until: new Date(reason.until as unknown as string) },
      ),
    };
  }
  return {
    base: row.base,
    policy: JSON.parse(row.policy) as GateRecord['policy'],
    inheritsFrom: row.inherits_from,
    trust: row.trust === null ? null : (JSON.parse(row.trust) as TrustRecord),
    accepted: row.accepted,
    held,
    approved: row.approved,
    rejected: row.rejected,
  };
}
