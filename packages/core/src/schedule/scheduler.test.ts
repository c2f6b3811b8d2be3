import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PackageRecord } from '../contracts/store.js';
import { InputError } from '../errors.js';
import { createMemoryLogger } from '../logger.js';
import {
  createCronJob,
  createPackageScheduler,
  DEFAULT_SCHEDULE,
  MAX_TIMER_DELAY,
  type PackageSchedulerOptions,
  type ScheduledPackage,
  scheduledPackageOf,
  type Timers,
} from './scheduler.js';

const utc = (text: string) => new Date(`${text}Z`);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const pkg = (base: string, settings: Partial<ScheduledPackage> = {}): ScheduledPackage => ({
  base,
  enabled: true,
  schedule: null,
  devel: false,
  ...settings,
});

/** A scheduler over `packages` whose runs are recorded with the time they started. */
function setup(packages: ScheduledPackage[], options: Partial<PackageSchedulerOptions> = {}) {
  const runs: { at: string; bases: string[] }[] = [];
  const logger = createMemoryLogger();
  const listPackages = vi.fn(async () => packages);
  const scheduler = createPackageScheduler({
    listPackages,
    run: async (bases) => {
      runs.push({ at: new Date().toISOString(), bases });
    },
    defaultSchedule: DEFAULT_SCHEDULE,
    develSchedule: '0 0 12 * * *',
    logger,
    ...options,
  });
  return { scheduler, runs, logger, listPackages };
}

const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

beforeEach(() => {
  vi.useFakeTimers({ now: utc('2024-01-01T06:00:00') });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('createPackageScheduler', () => {
  it('runs packages due at the same instant in one run, and each at its own schedule', async () => {
    const { scheduler, runs } = setup([
      pkg('b'),
      pkg('a'),
      pkg('git-thing', { devel: true }),
      pkg('hourly', { schedule: '0 30 * * * *' }),
      pkg('off', { enabled: false }),
    ]);
    await scheduler.start();
    expect(scheduler.next('a')).toEqual(utc('2024-01-02T00:00:00'));
    expect(scheduler.next('git-thing')).toEqual(utc('2024-01-01T12:00:00'));
    expect(scheduler.next('hourly')).toEqual(utc('2024-01-01T06:30:00'));
    expect(scheduler.next('off')).toBeUndefined();

    await advance(DAY);
    // 06:30 to 05:30
    expect(runs.filter((run) => run.bases.includes('hourly'))).toHaveLength(24);
    expect(runs.filter((run) => !run.bases.includes('hourly'))).toEqual([
      { at: '2024-01-01T12:00:00.000Z', bases: ['git-thing'] },
      { at: '2024-01-02T00:00:00.000Z', bases: ['a', 'b'] },
    ]);
    expect(runs.some((run) => run.bases.includes('off'))).toBe(false);
    expect(scheduler.next('a')).toEqual(utc('2024-01-03T00:00:00'));
  });

  it('shares one run between packages whose different schedules meet', async () => {
    const { scheduler, runs } = setup([
      pkg('daily'),
      pkg('custom', { schedule: '0 0 */6 * * *' }),
      pkg('devel', { devel: true, schedule: '0 0 0 * * *' }),
    ]);
    await scheduler.start();
    await advance(18 * HOUR);
    expect(runs).toEqual([
      { at: '2024-01-01T12:00:00.000Z', bases: ['custom'] },
      { at: '2024-01-01T18:00:00.000Z', bases: ['custom'] },
      { at: '2024-01-02T00:00:00.000Z', bases: ['custom', 'daily', 'devel'] },
    ]);
  });

  it('picks the custom schedule, else SCHEDULE_DEVEL for devel packages, else SCHEDULE', () => {
    const { scheduler } = setup([], { defaultSchedule: '0 0 1 * * *', develSchedule: '0 0 2 * * *' });
    expect(scheduler.effectiveSchedule({ schedule: null, devel: false })).toBe('0 0 1 * * *');
    expect(scheduler.effectiveSchedule({ schedule: null, devel: true })).toBe('0 0 2 * * *');
    expect(scheduler.effectiveSchedule({ schedule: '0 0 3 * * *', devel: true })).toBe('0 0 3 * * *');
    expect(scheduler.effectiveSchedule({ schedule: '0 0 3 * * *', devel: false })).toBe('0 0 3 * * *');
    expect(scheduler.effectiveSchedule({ schedule: '', devel: false })).toBe('0 0 1 * * *');

    const defaults = createPackageScheduler({ listPackages: async () => [], run: async () => {} });
    expect(defaults.effectiveSchedule({ schedule: null, devel: false })).toBe('0 0 0 * * *');
    // SCHEDULE_DEVEL falls back to SCHEDULE
    const onlyDefault = createPackageScheduler({
      listPackages: async () => [],
      run: async () => {},
      defaultSchedule: '0 0 5 * * *',
    });
    expect(onlyDefault.effectiveSchedule({ schedule: null, devel: true })).toBe('0 0 5 * * *');
  });

  it('applies enabling at once', async () => {
    const { scheduler, runs } = setup([pkg('a', { enabled: false })]);
    await scheduler.start();
    expect(scheduler.next('a')).toBeUndefined();
    scheduler.reschedule('a', { enabled: true, schedule: '*/10 * * * * *', devel: false });
    expect(scheduler.next('a')).toEqual(utc('2024-01-01T06:00:10'));
    await advance(10 * SECOND);
    expect(runs).toEqual([{ at: '2024-01-01T06:00:10.000Z', bases: ['a'] }]);
  });

  it('applies disabling at once', async () => {
    const { scheduler, runs } = setup([pkg('a', { schedule: '*/10 * * * * *' }), pkg('b')]);
    await scheduler.start();
    await advance(10 * SECOND);
    expect(runs).toHaveLength(1);
    scheduler.reschedule('a', { enabled: false, schedule: '*/10 * * * * *', devel: false });
    expect(scheduler.next('a')).toBeUndefined();
    await advance(DAY);
    expect(runs).toEqual([
      { at: '2024-01-01T06:00:10.000Z', bases: ['a'] },
      { at: '2024-01-02T00:00:00.000Z', bases: ['b'] },
    ]);
  });

  it('applies a changed schedule at once, earlier or later', async () => {
    const { scheduler, runs } = setup([pkg('a')]);
    await scheduler.start();
    // earlier than the timer set for midnight: the loop wakes for it
    scheduler.reschedule('a', { enabled: true, schedule: '0 0 7 * * *', devel: false });
    expect(scheduler.next('a')).toEqual(utc('2024-01-01T07:00:00'));
    await advance(HOUR);
    expect(runs).toEqual([{ at: '2024-01-01T07:00:00.000Z', bases: ['a'] }]);
    // later than the one set for 07:00 tomorrow: nothing runs then
    scheduler.reschedule('a', { enabled: true, schedule: '0 0 9 * * *', devel: false });
    await advance(DAY + 2 * HOUR);
    expect(runs).toEqual([
      { at: '2024-01-01T07:00:00.000Z', bases: ['a'] },
      { at: '2024-01-01T09:00:00.000Z', bases: ['a'] },
      { at: '2024-01-02T09:00:00.000Z', bases: ['a'] },
    ]);
  });

  it('applies a changed devel flag through the devel default', async () => {
    const { scheduler } = setup([pkg('a')]);
    await scheduler.start();
    expect(scheduler.next('a')).toEqual(utc('2024-01-02T00:00:00'));
    scheduler.reschedule('a', { enabled: true, schedule: null, devel: true });
    expect(scheduler.next('a')).toEqual(utc('2024-01-01T12:00:00'));
  });

  it('unschedules a removed package', async () => {
    const { scheduler, runs } = setup([pkg('a'), pkg('b')]);
    await scheduler.start();
    scheduler.reschedule('a', undefined);
    expect(scheduler.next('a')).toBeUndefined();
    await advance(DAY);
    expect(runs).toEqual([{ at: '2024-01-02T00:00:00.000Z', bases: ['b'] }]);
  });

  it('adds a package added after the start', async () => {
    const { scheduler, runs } = setup([]);
    await scheduler.start();
    scheduler.reschedule('new', { enabled: true, schedule: null, devel: false });
    await advance(DAY);
    expect(runs).toEqual([{ at: '2024-01-02T00:00:00.000Z', bases: ['new'] }]);
  });

  it('never runs when disabled, and leaves the store alone', async () => {
    const { scheduler, runs, listPackages, logger } = setup([pkg('a', { schedule: '* * * * * *' })], {
      disabled: true,
    });
    await scheduler.start();
    scheduler.reschedule('b', { enabled: true, schedule: '* * * * * *', devel: false });
    await advance(3 * DAY);
    expect(runs).toEqual([]);
    expect(listPackages).not.toHaveBeenCalled();
    expect(scheduler.next('a')).toBeUndefined();
    expect(scheduler.next('b')).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    expect(logger.records.map((record) => record.message)).toContain(
      'scheduling is disabled, packages are only built on request',
    );
  });

  it('goes on after a run rejects or throws', async () => {
    const logger = createMemoryLogger();
    let calls = 0;
    const scheduler = createPackageScheduler({
      listPackages: async () => [pkg('a', { schedule: '* * * * * *' })],
      run: (bases) => {
        calls++;
        if (calls === 1) return Promise.reject(new Error('docker is gone'));
        if (calls === 2) throw new Error('thrown at once');
        expect(bases).toEqual(['a']);
        return Promise.resolve();
      },
      logger,
    });
    await scheduler.start();
    await advance(3 * SECOND);
    expect(calls).toBe(3);
    const errors = logger.records.filter((record) => record.level === 'error');
    expect(errors).toEqual([
      { level: 'error', message: 'scheduled run failed', meta: { bases: ['a'], error: 'docker is gone' } },
      { level: 'error', message: 'scheduled run failed', meta: { bases: ['a'], error: 'thrown at once' } },
    ]);
  });

  it('names at most 50 packages of a run in its log line, and says how many there are', async () => {
    const logger = createMemoryLogger();
    const bases = Array.from({ length: 120 }, (_, i) => `p${String(i).padStart(3, '0')}`);
    const ran: string[][] = [];
    const scheduler = createPackageScheduler({
      listPackages: async () => bases.map((base) => pkg(base, { schedule: '* * * * * *' })),
      run: async (run) => {
        ran.push(run);
      },
      logger,
    });
    await scheduler.start();
    await advance(SECOND);
    expect(ran[0]).toEqual(bases);
    const line = logger.records.find((record) => record.message === 'scheduled run');
    expect(line?.meta).toEqual({ bases: bases.slice(0, 50), count: 120 });
    scheduler.stop();
  });

  it('does not wait for a run to end before the next slot', async () => {
    let calls = 0;
    const scheduler = createPackageScheduler({
      listPackages: async () => [pkg('a', { schedule: '* * * * * *' })],
      run: () => {
        calls++;
        return new Promise<void>(() => {});
      },
    });
    await scheduler.start();
    await advance(5 * SECOND);
    expect(calls).toBe(5);
  });

  it('sleeps beyond the longest setTimeout delay in steps', async () => {
    const delays: number[] = [];
    const timers: Timers = {
      setTimeout: (callback, ms) => {
        delays.push(ms);
        return setTimeout(callback, ms);
      },
      clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    };
    const { scheduler, runs } = setup([pkg('a', { schedule: '0 0 0 1 1 *' })], {
      timers,
      maxSleepMs: Number.POSITIVE_INFINITY,
    });
    await scheduler.start();
    expect(scheduler.next('a')).toEqual(utc('2025-01-01T00:00:00'));
    await advance(utc('2025-01-01T00:00:00').getTime() - Date.now() - 1);
    expect(runs).toEqual([]);
    await advance(1);
    expect(runs).toEqual([{ at: '2025-01-01T00:00:00.000Z', bases: ['a'] }]);
    expect(Math.max(...delays)).toBe(MAX_TIMER_DELAY);
    expect(delays.length).toBeGreaterThan(10);
  });

  it('notices a wall-clock jump forward within maxSleepMs, running overdue slots together once', async () => {
    const { scheduler, runs } = setup(
      [pkg('one', { schedule: '0 0 1 * * *' }), pkg('two', { schedule: '0 0 2 * * *' }), pkg('c')],
      { maxSleepMs: MINUTE },
    );
    await scheduler.start();
    // the machine slept or NTP stepped the clock: 06:00 → 03:00 the next day
    vi.setSystemTime(utc('2024-01-02T03:00:00'));
    await advance(MINUTE);
    expect(runs).toEqual([{ at: '2024-01-02T03:01:00.000Z', bases: ['c', 'one', 'two'] }]);
    expect(scheduler.next('one')).toEqual(utc('2024-01-03T01:00:00'));
    expect(scheduler.next('c')).toEqual(utc('2024-01-03T00:00:00'));
  });

  it('waits for the wall clock after a jump backward', async () => {
    const { scheduler, runs } = setup([pkg('a', { schedule: '0 0 7 * * *' })], { maxSleepMs: DAY });
    await scheduler.start();
    vi.setSystemTime(utc('2024-01-01T05:00:00'));
    // the timer set for one hour fires, but it is 06:00 by the wall clock
    await advance(HOUR);
    expect(runs).toEqual([]);
    await advance(HOUR);
    expect(runs).toEqual([{ at: '2024-01-01T07:00:00.000Z', bases: ['a'] }]);
  });

  it('keeps one timer whatever the number of packages', async () => {
    const packages = Array.from({ length: 50 }, (_, i) => pkg(`p${i}`, { schedule: `${i} * * * * *` }));
    const { scheduler } = setup(packages);
    await scheduler.start();
    expect(vi.getTimerCount()).toBe(1);
    scheduler.reschedule('p1', { enabled: false, schedule: null, devel: false });
    expect(vi.getTimerCount()).toBe(1);
  });

  it('refuses invalid default schedules at creation', () => {
    const create = (options: Partial<PackageSchedulerOptions>) => () =>
      createPackageScheduler({ listPackages: async () => [], run: async () => {}, ...options });
    expect(create({ defaultSchedule: '0 0 * * *' })).toThrow(InputError);
    expect(create({ defaultSchedule: '0 0 * * *' })).toThrow(/you probably forgot the seconds/);
    expect(create({ develSchedule: '0 0 0 * * 0' })).toThrow(/day-of-week field: 0 is out of range/);
  });

  it('logs and skips a package whose stored schedule is invalid or never fires', async () => {
    const { scheduler, runs, logger } = setup([
      pkg('broken', { schedule: '0 0 * * *' }),
      pkg('past', { schedule: '0 0 0 1 1 * 2020' }),
      pkg('fine'),
    ]);
    await scheduler.start();
    expect(scheduler.next('broken')).toBeUndefined();
    expect(scheduler.next('past')).toBeUndefined();
    await advance(DAY);
    expect(runs).toEqual([{ at: '2024-01-02T00:00:00.000Z', bases: ['fine'] }]);
    expect(logger.records.find((record) => record.meta.base === 'broken')).toMatchObject({
      level: 'error',
      message: 'package not scheduled: invalid schedule',
      meta: { schedule: '0 0 * * *' },
    });
    expect(logger.records.find((record) => record.meta.base === 'past')).toMatchObject({
      level: 'warn',
      message: 'package not scheduled: its schedule has no future time',
    });
  });

  it('lets a reschedule during start win over the listing', async () => {
    let resolveList: (packages: ScheduledPackage[]) => void = () => {};
    const { scheduler, runs } = setup([], {
      listPackages: () =>
        new Promise((resolve) => {
          resolveList = resolve;
        }),
    });
    const starting = scheduler.start();
    scheduler.reschedule('a', { enabled: false, schedule: null, devel: false });
    scheduler.reschedule('b', { enabled: true, schedule: '0 0 7 * * *', devel: false });
    resolveList([pkg('a'), pkg('b'), pkg('c')]);
    await starting;
    expect(scheduler.next('a')).toBeUndefined();
    expect(scheduler.next('b')).toEqual(utc('2024-01-01T07:00:00'));
    await advance(DAY);
    expect(runs).toEqual([
      { at: '2024-01-01T07:00:00.000Z', bases: ['b'] },
      { at: '2024-01-02T00:00:00.000Z', bases: ['c'] },
    ]);
  });

  it('ignores reschedules before start, since start reads the store', async () => {
    const { scheduler, listPackages } = setup([pkg('a')]);
    scheduler.reschedule('x', { enabled: true, schedule: null, devel: false });
    expect(scheduler.next('x')).toBeUndefined();
    await scheduler.start();
    expect(listPackages).toHaveBeenCalledTimes(1);
    expect(scheduler.next('a')).toEqual(utc('2024-01-02T00:00:00'));
  });

  it('stops, and starts again from the store', async () => {
    const packages = [pkg('a', { schedule: '0 0 * * * *' })];
    const { scheduler, runs, listPackages } = setup(packages);
    await scheduler.start();
    await scheduler.start();
    expect(listPackages).toHaveBeenCalledTimes(1);
    await advance(HOUR);
    expect(runs).toHaveLength(1);
    scheduler.stop();
    expect(vi.getTimerCount()).toBe(0);
    expect(scheduler.next('a')).toBeUndefined();
    await advance(5 * HOUR);
    expect(runs).toHaveLength(1);
    packages.push(pkg('b', { schedule: '0 0 * * * *' }));
    await scheduler.start();
    await advance(HOUR);
    expect(runs.at(-1)).toEqual({ at: '2024-01-01T13:00:00.000Z', bases: ['a', 'b'] });
  });

  it('fails start when the packages cannot be listed', async () => {
    const { scheduler } = setup([], {
      listPackages: async () => {
        throw new Error('database is locked');
      },
    });
    await expect(scheduler.start()).rejects.toThrow('database is locked');
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('scheduledPackageOf', () => {
  it('takes the settings and the source devel flag of a stored package', () => {
    const record = {
      base: 'foo-git',
      enabled: true,
      schedule: '0 0 3 * * *',
      source: { type: 'aur', devel: true },
    } as unknown as PackageRecord;
    expect(scheduledPackageOf(record)).toEqual({
      base: 'foo-git',
      enabled: true,
      schedule: '0 0 3 * * *',
      devel: true,
    });
    expect(scheduledPackageOf({ ...record, source: {} }).devel).toBe(false);
  });
});

describe('createCronJob', () => {
  it('runs at every time of the expression', async () => {
    const times: string[] = [];
    const job = createCronJob('0 0 */8 * * *', () => {
      times.push(new Date().toISOString());
    });
    expect(job.next()).toBeUndefined();
    job.start();
    job.start();
    expect(job.next()).toEqual(utc('2024-01-01T08:00:00'));
    await advance(DAY);
    expect(times).toEqual([
      '2024-01-01T08:00:00.000Z',
      '2024-01-01T16:00:00.000Z',
      '2024-01-02T00:00:00.000Z',
    ]);
    job.stop();
    expect(job.next()).toBeUndefined();
    await advance(DAY);
    expect(times).toHaveLength(3);
  });

  it('logs a failed run and goes on', async () => {
    const logger = createMemoryLogger();
    let calls = 0;
    const job = createCronJob(
      '0 0 * * * *',
      async () => {
        calls++;
        throw new Error('pull failed');
      },
      { logger, name: 'image pull' },
    );
    job.start();
    await advance(2 * HOUR);
    expect(calls).toBe(2);
    expect(logger.records.filter((record) => record.level === 'error')).toEqual([
      { level: 'error', message: 'cron job failed', meta: { job: 'image pull', error: 'pull failed' } },
      { level: 'error', message: 'cron job failed', meta: { job: 'image pull', error: 'pull failed' } },
    ]);
  });

  it('skips a time while the previous run still goes on', async () => {
    const logger = createMemoryLogger();
    let calls = 0;
    let finish: () => void = () => {};
    const job = createCronJob(
      '* * * * * *',
      () => {
        calls++;
        return new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
      { logger },
    );
    job.start();
    await advance(3 * SECOND);
    expect(calls).toBe(1);
    expect(logger.records.filter((record) => record.level === 'warn')).toHaveLength(2);
    finish();
    await advance(SECOND);
    expect(calls).toBe(2);
  });

  it('refuses an invalid expression', () => {
    expect(() => createCronJob('0 0 * * *', () => {})).toThrow(/you probably forgot the seconds/);
  });
});
