/**
 * Core records as the original's JSON (docs/compatibility.md#json-types): snake_case fields, RFC 3339 `Z` timestamps.
 */
import type { BuildRecord, PackageView } from '@serene/core';
import type { BuildInfo, PackageInfo, PackagePeek } from './schemas.js';

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
