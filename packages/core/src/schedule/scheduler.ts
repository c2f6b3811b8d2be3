import type { PackageRecord } from '../contracts/store.js';
import { formatErrorChain } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';
import { type CronSchedule, parseCron } from './cron.js';

/** `SCHEDULE`'s default: every day at midnight UTC. */
export const DEFAULT_SCHEDULE = '0 0 0 * * *';

/** The longest delay `setTimeout` takes (2^31-1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;

/** The timer functions the schedulers use; tests may pass fakes. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** What the scheduler needs to know of a package. */
export interface PackageScheduleSettings {
  /** automatic building on (`enabled`) */
  enabled: boolean;
  /** custom cron expression, null for the default */
  schedule: string | null;
  /** the package is a devel package (its source's `devel` flag) */
  devel: boolean;
}

/** A package as {@link PackageSchedulerOptions.listPackages} lists it. */
export interface ScheduledPackage extends PackageScheduleSettings {
  base: string;
}

/** The scheduling settings of a stored package. */
export function scheduledPackageOf(record: PackageRecord): ScheduledPackage {
  return {
    base: record.base,
    enabled: record.enabled,
    schedule: record.schedule,
    devel: record.source.devel === true,
  };
}

/** Options shared by {@link createPackageScheduler} and {@link createCronJob}. */
export interface ClockOptions {
  logger?: Logger;
  /** the wall clock @default () => new Date() */
  now?: () => Date;
  /** @default the global setTimeout and clearTimeout */
  timers?: Timers;
  /**
   * The longest single sleep: the clock is looked at again at least this often, so a wall-clock jump
   * forward is noticed within this time. Capped at {@link MAX_TIMER_DELAY}.
   * @default 60000
   */
  maxSleepMs?: number;
}

/** Options of {@link createPackageScheduler}. */
export interface PackageSchedulerOptions extends ClockOptions {
  /** every package, read once at {@link PackageScheduler.start} */
  listPackages: () => Promise<ScheduledPackage[]>;
  /**
   * Starts one build session for packages whose time has come (the host passes
   * `orchestrator.start(bases, { reason: 'schedule', resolve: true, clean: false, force: false })`).
   */
  run: (bases: string[]) => Promise<unknown>;
  /** `SCHEDULE` @default DEFAULT_SCHEDULE */
  defaultSchedule?: string;
  /** `SCHEDULE_DEVEL` @default defaultSchedule */
  develSchedule?: string;
  /** `SCHEDULING_DISABLED`: nothing is ever run @default false */
  disabled?: boolean;
}

/**
 * Runs enabled packages at the times of their cron schedules (docs/compatibility.md#scheduling): a map from fire time to
 * the packages due then, one timer for the earliest, and one `run` for all packages due together.
 */
export interface PackageScheduler {
  /** Reads the packages and starts the loop; does nothing when scheduling is disabled. */
  start(): Promise<void>;
  /** Stops the loop and forgets the plan; runs already started go on. `start` may be called again. */
  stop(): void;
  /**
   * Applies a package's changed settings at once: it is taken out and, when enabled, put back at its
   * next time. `undefined` unschedules it (the package was removed). Ignored while the scheduler is
   * not started (or disabled): `start` reads the stored settings.
   *
   * @remarks An invalid custom schedule is logged and leaves the package unscheduled; validate with
   * {@link parseCron} before storing it.
   */
  reschedule(base: string, settings: PackageScheduleSettings | undefined): void;
  /** The expression a package runs on: its own, else `SCHEDULE_DEVEL` for devel packages, else `SCHEDULE`. */
  effectiveSchedule(settings: Pick<PackageScheduleSettings, 'schedule' | 'devel'>): string;
  /** When a package runs next, or undefined when it is not scheduled. */
  next(base: string): Date | undefined;
}

/**
 * Creates the package scheduler.
 *
 * @throws InputError when `defaultSchedule` or `develSchedule` is not a valid expression.
 */
export function createPackageScheduler(options: PackageSchedulerOptions): PackageScheduler {
  return new Scheduler(options);
}

class Scheduler implements PackageScheduler {
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly alarm: Alarm;
  private readonly defaultSchedule: string;
  private readonly develSchedule: string;
  private readonly parsed = new Map<string, CronSchedule>();
  /** fire time (ms) → packages due then */
  private readonly slots = new Map<number, Set<string>>();
  /** package → its fire time and schedule */
  private readonly entries = new Map<string, { at: number; schedule: CronSchedule }>();
  private running = false;
  /** packages rescheduled while `start` lists packages: their newer settings win */
  private touched: Set<string> | undefined;

  constructor(private readonly options: PackageSchedulerOptions) {
    this.logger = options.logger ?? createNoopLogger();
    this.now = options.now ?? (() => new Date());
    this.alarm = new Alarm(options);
    this.defaultSchedule = options.defaultSchedule ?? DEFAULT_SCHEDULE;
    this.develSchedule = options.develSchedule ?? this.defaultSchedule;
    // MUST fail at boot, not at the first fire: these come from the configuration
    this.cron(this.defaultSchedule);
    this.cron(this.develSchedule);
  }

  async start(): Promise<void> {
    if (this.options.disabled) {
      this.logger.info('scheduling is disabled, packages are only built on request');
      return;
    }
    if (this.running || this.touched) return;
    this.touched = new Set();
    try {
      const packages = await this.options.listPackages();
      for (const pkg of packages) {
        if (!this.touched.has(pkg.base)) this.place(pkg.base, pkg);
      }
    } finally {
      this.touched = undefined;
    }
    this.running = true;
    this.logger.info('package scheduler started', { scheduled: this.entries.size });
    this.wake();
  }

  stop(): void {
    this.running = false;
    this.alarm.cancel();
    this.slots.clear();
    this.entries.clear();
  }

  reschedule(base: string, settings: PackageScheduleSettings | undefined): void {
    // before start (and after stop) the store is read again at start, which has the new settings
    if (!this.running && !this.touched) return;
    this.touched?.add(base);
    this.place(base, settings);
    this.wake();
  }

  effectiveSchedule(settings: Pick<PackageScheduleSettings, 'schedule' | 'devel'>): string {
    if (settings.schedule !== null && settings.schedule !== '') return settings.schedule;
    return settings.devel ? this.develSchedule : this.defaultSchedule;
  }

  next(base: string): Date | undefined {
    const entry = this.entries.get(base);
    return entry && new Date(entry.at);
  }

  // --- Internal helpers ---

  private cron(expression: string): CronSchedule {
    let schedule = this.parsed.get(expression);
    if (!schedule) {
      schedule = parseCron(expression);
      this.parsed.set(expression, schedule);
    }
    return schedule;
  }

  /** Takes a package out of its slot and, when enabled, puts it at its next time after now. */
  private place(base: string, settings: PackageScheduleSettings | undefined): void {
    this.unplace(base);
    if (!settings?.enabled) return;
    const expression = this.effectiveSchedule(settings);
    let schedule: CronSchedule;
    try {
      schedule = this.cron(expression);
    } catch (error) {
      this.logger.error('package not scheduled: invalid schedule', {
        base,
        schedule: expression,
        error: formatErrorChain(error),
      });
      return;
    }
    this.insert(base, schedule, this.now());
  }

  /**
   * Puts a package at its schedule's next time after `after`; `nexts` keeps the times computed for
   * that same `after`, as a fire puts thousands of packages of one schedule back at once.
   */
  private insert(
    base: string,
    schedule: CronSchedule,
    after: Date,
    nexts?: Map<CronSchedule, Date | undefined>,
  ): void {
    let next: Date | undefined;
    if (nexts?.has(schedule)) next = nexts.get(schedule);
    else {
      next = schedule.next(after);
      nexts?.set(schedule, next);
    }
    if (!next) {
      this.logger.warn('package not scheduled: its schedule has no future time', {
        base,
        schedule: schedule.source,
      });
      return;
    }
    const at = next.getTime();
    this.entries.set(base, { at, schedule });
    let slot = this.slots.get(at);
    if (!slot) {
      slot = new Set();
      this.slots.set(at, slot);
    }
    slot.add(base);
  }

  private unplace(base: string): void {
    const entry = this.entries.get(base);
    if (!entry) return;
    this.entries.delete(base);
    const slot = this.slots.get(entry.at);
    slot?.delete(base);
    if (slot?.size === 0) this.slots.delete(entry.at);
  }

  /** Sets the one timer for the earliest slot. */
  private wake(): void {
    if (!this.running) return;
    let earliest: number | undefined;
    for (const at of this.slots.keys()) if (earliest === undefined || at < earliest) earliest = at;
    if (earliest === undefined) this.alarm.cancel();
    else this.alarm.set(earliest, () => this.fire());
  }

  /**
   * Takes every due slot out, puts its packages back at their following time, and runs them together.
   *
   * @remarks Usually one slot is due. After a suspend or a clock jump forward several may be: each
   * package then runs once, in one session, and moves on to its next time after now.
   */
  private fire(): void {
    const now = this.now();
    const due: string[] = [];
    for (const [at, bases] of [...this.slots]) {
      if (at > now.getTime()) continue;
      for (const base of bases) due.push(base);
    }
    const nexts = new Map<CronSchedule, Date | undefined>();
    for (const base of due) {
      const entry = this.entries.get(base);
      this.unplace(base);
      if (entry) this.insert(base, entry.schedule, now, nexts);
    }
    this.wake();
    if (due.length === 0) return;
    const bases = due.sort();
    this.logger.info('scheduled run', logged(bases));
    // never awaited: a session may run for hours while later slots come due
    void Promise.resolve()
      .then(() => this.options.run(bases))
      .catch((error: unknown) => {
        this.logger.error('scheduled run failed', { ...logged(bases), error: formatErrorChain(error) });
      });
  }
}

/** Bases named in a log line at most; a run of all of thousands of packages says how many. */
const LOGGED_BASES = 50;

/**
 * What a log line says of a run's bases: all of them, or the first {@link LOGGED_BASES} and how
 * many in all (one line naming 20,000 packages is 300 KB, and writing it held the event loop for
 * over 100 ms; docs/benchmarks.md, issue 16).
 */
function logged(bases: readonly string[]): { bases: readonly string[]; count?: number } {
  return bases.length <= LOGGED_BASES
    ? { bases }
    : { bases: bases.slice(0, LOGGED_BASES), count: bases.length };
}

// --- CRON JOB ---

/** A job run at the times of a cron expression; see {@link createCronJob}. */
export interface CronJob {
  /** Starts waiting for the next time; does nothing when started. */
  start(): void;
  /** Stops; a run in progress goes on. */
  stop(): void;
  /** The next time the job runs, or undefined when stopped or the expression has no future time. */
  next(): Date | undefined;
}

/** Options of {@link createCronJob}. */
export interface CronJobOptions extends ClockOptions {
  /** a name for the log lines @default the expression */
  name?: string;
}

/**
 * A job run at every time of a cron expression (the host's runner image pulls on `SCHEDULE_IMAGE`).
 * A time that comes while the previous run is still going is skipped; a failed run is logged and the
 * job goes on.
 *
 * @throws InputError when `expression` is not valid.
 */
export function createCronJob(
  expression: string | CronSchedule,
  job: () => unknown,
  options: CronJobOptions = {},
): CronJob {
  const schedule = typeof expression === 'string' ? parseCron(expression) : expression;
  const logger = (options.logger ?? createNoopLogger()).child({ job: options.name ?? schedule.source });
  const now = options.now ?? (() => new Date());
  const alarm = new Alarm(options);
  let at: Date | undefined;
  let busy = false;
  let started = false;

  const arm = (after: Date) => {
    at = schedule.next(after);
    if (at) alarm.set(at.getTime(), fire);
    else logger.warn('cron job stopped: its schedule has no future time');
  };
  const fire = () => {
    arm(now());
    if (busy) {
      logger.warn('cron job skipped: the previous run is still going');
      return;
    }
    busy = true;
    void Promise.resolve()
      .then(() => job())
      .catch((error: unknown) => logger.error('cron job failed', { error: formatErrorChain(error) }))
      .finally(() => {
        busy = false;
      });
  };

  return {
    start() {
      if (started) return;
      started = true;
      arm(now());
    },
    stop() {
      started = false;
      at = undefined;
      alarm.cancel();
    },
    next: () => at,
  };
}

// --- Internal helpers ---

/**
 * One wall-clock alarm: calls back once the clock reaches a time. Sleeps in steps of at most
 * `maxSleepMs` and looks at the clock after each, so long delays (beyond setTimeout's 2^31-1 ms) and
 * clock jumps either way are handled.
 */
class Alarm {
  private readonly now: () => Date;
  private readonly timers: Timers;
  private readonly maxSleepMs: number;
  private handle: unknown;
  private armed = false;

  constructor(options: ClockOptions) {
    this.now = options.now ?? (() => new Date());
    // looked up at call time, so fake timers installed after creation still apply
    this.timers = options.timers ?? {
      setTimeout: (callback, ms) => setTimeout(callback, ms),
      clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
    };
    this.maxSleepMs = Math.min(Math.max(options.maxSleepMs ?? 60_000, 1), MAX_TIMER_DELAY);
  }

  set(at: number, callback: () => void): void {
    this.cancel();
    this.armed = true;
    const check = () => {
      this.handle = undefined;
      if (!this.armed) return;
      const delay = at - this.now().getTime();
      if (delay <= 0) {
        this.armed = false;
        callback();
        return;
      }
      this.handle = this.timers.setTimeout(check, Math.min(delay, this.maxSleepMs));
    };
    // via a timer even when due, so callers never re-enter themselves
    this.handle = this.timers.setTimeout(
      check,
      Math.max(0, Math.min(at - this.now().getTime(), this.maxSleepMs)),
    );
  }

  cancel(): void {
    this.armed = false;
    if (this.handle !== undefined) this.timers.clearTimeout(this.handle);
    this.handle = undefined;
  }
}
