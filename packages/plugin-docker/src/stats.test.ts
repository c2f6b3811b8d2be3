import { describe, expect, it } from 'vitest';
import { combineStats } from './stats.js';

const snapshot = (values: Partial<Record<string, number | null>>) => ({
  memory_bytes_peak: null,
  cpu_user_us: null,
  cpu_system_us: null,
  io_total_bytes_read: null,
  io_total_bytes_written: null,
  ...values,
});

describe('combineStats', () => {
  it('takes the larger memory peak and the differences of the rest, as the original', () => {
    const before = snapshot({
      memory_bytes_peak: 300,
      cpu_user_us: 1_000,
      cpu_system_us: 500,
      io_total_bytes_read: 10,
      io_total_bytes_written: 20,
    });
    const after = snapshot({
      memory_bytes_peak: 200,
      cpu_user_us: 4_000,
      cpu_system_us: 700,
      io_total_bytes_read: 110,
      io_total_bytes_written: 20,
    });
    expect(combineStats(before, after)).toEqual({
      memoryPeak: 300,
      cpuUser: 3_000,
      cpuSystem: 200,
      ioRead: 100,
      ioWritten: 0,
    });
  });

  it('is null per value when either side is unknown, and null when a snapshot is missing', () => {
    const stats = combineStats(
      snapshot({ cpu_user_us: 1 }),
      snapshot({ cpu_system_us: 2, memory_bytes_peak: 5 }),
    );
    expect(stats).toEqual({ memoryPeak: 5, cpuUser: null, cpuSystem: null, ioRead: null, ioWritten: null });
    expect(combineStats(null, snapshot({}))).toBeNull();
    expect(combineStats(snapshot({}), 'garbage')).toBeNull();
    expect(combineStats(snapshot({}), snapshot({}))?.memoryPeak).toBeNull();
  });
});
