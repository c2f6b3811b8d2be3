import type { BuildRecord } from '@serene/core';
import { describe, expect, it } from 'vitest';
import { buildInfo, formatTime, recentBuild } from './wire.js';

describe('formatTime', () => {
  it('writes RFC 3339 UTC with a Z, the fraction only when there is one (as chrono)', () => {
    expect(formatTime(new Date('2025-03-08T12:00:01Z'))).toBe('2025-03-08T12:00:01Z');
    expect(formatTime(new Date('2025-03-08T12:00:01.120Z'))).toBe('2025-03-08T12:00:01.120Z');
    expect(formatTime(new Date('2025-03-08T13:00:01.5+01:00'))).toBe('2025-03-08T12:00:01.500Z');
  });
});

describe('buildInfo', () => {
  it('maps a record to the original BuildInfo, stats in snake case', () => {
    const record: BuildRecord = {
      package: 'alpha',
      started: new Date('2025-03-08T12:00:00Z'),
      ended: null,
      state: { state: 'fatal', info: ['publish failed', 'publish'] },
      reason: 'schedule',
      version: null,
      runSuccess: null,
      runStarted: null,
      runEnded: null,
      stats: { memoryPeak: 1024, cpuUser: 5, cpuSystem: 6, ioRead: 7, ioWritten: null },
    };
    expect(buildInfo(record)).toEqual({
      state: { state: 'fatal', info: ['publish failed', 'publish'] },
      reason: 'schedule',
      version: null,
      started: '2025-03-08T12:00:00Z',
      ended: null,
      mem_peak: 1024,
      cpu_user: 5,
      cpu_system: 6,
      io_tbr: 7,
      io_tbw: null,
    });
    expect(buildInfo({ ...record, stats: null })).toMatchObject({
      mem_peak: null,
      cpu_user: null,
      io_tbw: null,
    });
  });
});

describe('recentBuild', () => {
  it("names the build's architecture: the recorded one, or the primary for a record without one", () => {
    const record: BuildRecord = {
      package: 'alpha',
      started: new Date('2025-03-08T12:00:00Z'),
      ended: null,
      state: { state: 'pending' },
      reason: 'manual',
      version: null,
      runSuccess: null,
      runStarted: null,
      runEnded: null,
      stats: null,
    };
    // a row of the original's database (or from before migration 0003) has no arch: the primary's
    expect(recentBuild(record, 'x86_64')).toMatchObject({ base: 'alpha', architecture: 'x86_64' });
    expect(recentBuild({ ...record, arch: 'aarch64' }, 'x86_64')).toMatchObject({
      base: 'alpha',
      architecture: 'aarch64',
    });
  });
});
