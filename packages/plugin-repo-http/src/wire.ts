/**
 * Core records as the original's JSON (docs/compatibility.md#json-types): snake_case fields, RFC 3339 `Z` timestamps.
 */
import {
  type BuildEvents,
  type BuildInFlight,
  type BuildRecord,
  type EngineStatus,
  formatCoolOff,
  type GatePolicy,
  type GatePolicyView,
  type HeldUpdateView,
  type PackageSummary,
  type PackageView,
  type QueuedBuild,
  type TrustRecord,
} from '@serene/core';
import type {
  BuildInfo,
  EngineJson,
  GatePolicyJson,
  HeldUpdateJson,
  PackageInfo,
  PackagePeek,
  PackagePolicy,
  QueueEntry,
  RecentBuild,
  StateEvent,
} from './schemas.js';

/**
 * A time as chrono's serde writes it: RFC 3339 in UTC with a trailing `Z`, and the fraction only
 * when there is one (a `Date` holds milliseconds, so 0 or 3 digits).
 */
export function formatTime(date: Date): string {
  const text = date.toISOString();
  return text.endsWith('.000Z') ? `${text.slice(0, -5)}Z` : text;
}

/** `BuildInfo` of a build record. */
export function buildInfo(build: BuildRecord): BuildInfo {
  const stats = build.stats;
  return {
    state: build.state,
    reason: build.reason,
    version: build.version,
    started: formatTime(build.started),
    ended: build.ended ? formatTime(build.ended) : null,
    mem_peak: stats?.memoryPeak ?? null,
    cpu_user: stats?.cpuUser ?? null,
    cpu_system: stats?.cpuSystem ?? null,
    io_tbr: stats?.ioRead ?? null,
    io_tbw: stats?.ioWritten ?? null,
  };
}

/** `PackagePeek` of a package and its newest build. */
export function packagePeek(view: PackageView, latest: BuildRecord | undefined): PackagePeek {
  return {
    base: view.record.base,
    members: view.srcinfo ? view.srcinfo.packages.map((member) => member.pkgname) : [],
    version: view.srcinfo ? view.srcinfo.base.pkgver : null,
    enabled: view.record.enabled,
    devel: view.source.devel,
    build: latest ? buildInfo(latest) : null,
    added: formatTime(view.record.added),
  };
}

/** `PackagePeek` of a package's summary: the same entry as {@link packagePeek} of its view. */
export function summaryPeek(summary: PackageSummary): PackagePeek {
  return {
    base: summary.record.base,
    members: summary.members,
    version: summary.version,
    enabled: summary.record.enabled,
    devel: summary.devel,
    build: summary.latest ? buildInfo(summary.latest) : null,
    added: formatTime(summary.record.added),
  };
}

/** `PackageInfo` of a package; `builds` is its number of builds. */
export function packageInfo(view: PackageView, builds: number): PackageInfo {
  const { record, srcinfo, source } = view;
  const described = source.describe();
  return {
    base: record.base,
    members: srcinfo ? srcinfo.packages.map((member) => member.pkgname) : [],
    description: srcinfo?.base.pkgdesc ?? null,
    upstream_url: srcinfo?.base.url ?? null,
    builds,
    version: srcinfo ? srcinfo.base.pkgver : null,
    source: described.label,
    source_url: described.url,
    devel: source.devel,
    srcinfo_override: source.srcinfoOverride,
    enabled: record.enabled,
    clean: record.clean,
    private: record.private,
    dependency: record.dependency,
    schedule: view.schedule,
    schedule_changed: record.schedule !== null,
    prepare_commands: record.private ? null : record.prepare,
    makepkg_flags: record.flags,
    added: formatTime(record.added),
  };
}

// --- update gate (beyond the original) ---

/** A gate policy as JSON: the cool-off as text (`2d`). */
export function gatePolicy(policy: GatePolicy): GatePolicyJson {
  return { cool_off: formatCoolOff(policy.coolOffMs), trust: policy.trust, review: policy.review };
}

/** `GET /package/{name}/policy`. */
export function packagePolicy(view: GatePolicyView): PackagePolicy {
  const overrides: Partial<GatePolicyJson> = {};
  if (view.overrides.coolOffMs !== undefined) overrides.cool_off = formatCoolOff(view.overrides.coolOffMs);
  if (view.overrides.trust !== undefined) overrides.trust = view.overrides.trust;
  if (view.overrides.review !== undefined) overrides.review = view.overrides.review;
  return {
    effective: gatePolicy(view.effective),
    overrides,
    inherits_from: view.inheritsFrom,
    accepted_revision: view.accepted,
    trust: view.trust === null ? null : trustJson(view.trust),
  };
}

function trustJson(trust: TrustRecord): HeldUpdateJson['trust'] {
  const json: HeldUpdateJson['trust'] = { co_maintainers: trust.coMaintainers, packagers: trust.packagers };
  if (trust.maintainer !== undefined) json.maintainer = trust.maintainer;
  if (trust.submitter !== undefined) json.submitter = trust.submitter;
  return json;
}

/** One held update as `GET /review` lists it. */
export function heldUpdate(view: HeldUpdateView): HeldUpdateJson {
  const { held } = view;
  return {
    base: view.base,
    revision: held.revision,
    version: held.version,
    base_revision: held.baseRevision,
    reasons: held.reasons.map((reason) =>
      reason.until === undefined
        ? { kind: reason.kind, message: reason.message }
        : { kind: reason.kind, message: reason.message, until: formatTime(reason.until) },
    ),
    detected: formatTime(held.detected),
    modified: formatTime(held.modified),
    trust: trustJson(held.trust),
    files: held.files,
    policy: gatePolicy(view.policy),
  };
}

/** `QueueEntry` of a build in flight; `engine` when it is known (`PackageService.queue`). */
export function queueEntry(build: BuildInFlight | QueuedBuild): QueueEntry {
  return {
    base: build.base,
    started: formatTime(build.started),
    reason: build.reason,
    state: build.state,
    phase: build.phase,
    waiting_for: build.waitingFor,
    engine: ('engine' in build ? build.engine : undefined) ?? null,
    architecture: build.arch,
  };
}

/** `RecentBuild` of a build record. */
export function recentBuild(build: BuildRecord, primaryArch: string): RecentBuild {
  return {
    base: build.package,
    ...buildInfo(build),
    architecture: build.arch ?? primaryArch,
    engine: build.engine ?? null,
  };
}

/** `Engine` of an engine's status. */
export function engineJson(engine: EngineStatus): EngineJson {
  return {
    name: engine.name,
    architecture: engine.arch ?? null,
    state: engine.state,
    since: formatTime(engine.since),
    reason: engine.reason ?? null,
    capacity: engine.capacity,
    running: engine.running,
    builds: [...engine.builds],
    labels: [...engine.labels],
  };
}

/** The data of a server-wide `change` event. */
export function stateEvent(event: BuildEvents['state']): StateEvent {
  return {
    base: event.base,
    started: formatTime(event.started),
    reason: event.reason ?? null,
    state: event.state,
  };
}
