import type { BuildStats } from '@serene/core';

/** One snapshot as the runner scripts write it (`.stats-before.json`, `.stats-after.json`). */
interface StatsSnapshot {
  memory_bytes_peak: number | null;
  cpu_user_us: number | null;
  cpu_system_us: number | null;
  io_total_bytes_read: number | null;
  io_total_bytes_written: number | null;
}

const FIELDS = [
  'memory_bytes_peak',
  'cpu_user_us',
  'cpu_system_us',
  'io_total_bytes_read',
  'io_total_bytes_written',
] as const;

function snapshot(value: unknown): StatsSnapshot | null {
  if (typeof value !== 'object' || value === null) return null;
  const record = value as Record<string, unknown>;
  const out = {} as StatsSnapshot;
  for (const field of FIELDS) {
    const number = record[field];
    out[field] = typeof number === 'number' && Number.isFinite(number) && number >= 0 ? number : null;
  }
  return out;
}

/**
 * Combines the snapshots taken before and after `makepkg` as the original does: the memory peak is
 * the larger of both, everything else is after minus before (null when either side is unknown).
 * Null when a snapshot is missing or not a stats object.
 */
export function combineStats(before: unknown, after: unknown): BuildStats | null {
  const a = snapshot(before);
  const b = snapshot(after);
  if (!a || !b) return null;
  const delta = (x: number | null, y: number | null): number | null =>
    x === null || y === null ? null : Math.max(0, y - x);
  return {
    memoryPeak:
      a.memory_bytes_peak === null && b.memory_bytes_peak === null
        ? null
        : Math.max(a.memory_bytes_peak ?? 0, b.memory_bytes_peak ?? 0),
    cpuUser: delta(a.cpu_user_us, b.cpu_user_us),
    cpuSystem: delta(a.cpu_system_us, b.cpu_system_us),
    ioRead: delta(a.io_total_bytes_read, b.io_total_bytes_read),
    ioWritten: delta(a.io_total_bytes_written, b.io_total_bytes_written),
  };
}
