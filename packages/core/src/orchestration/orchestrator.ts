import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Publisher } from '../contracts/publisher.js';
import type { Runner, RunResult } from '../contracts/runner.js';
import type { Source, SourceFactory } from '../contracts/source.js';
import type {
  BuildChanges,
  BuildProgress,
  BuildReason,
  BuildRecord,
  BuildState,
  PackageRecord,
  Store,
} from '../contracts/store.js';
import { ConflictError, formatErrorChain, NotFoundError } from '../errors.js';
import type { UpdateGate } from '../gate/gate.js';
import { createNoopLogger, type Logger } from '../logger.js';
import type { Provider } from '../pacman/depend.js';
import { memberArch, parseSrcinfo, type Srcinfo, srcinfoVersion } from '../pacman/srcinfo.js';
import { createLimiter } from '../sources/limit.js';
import { type BuildEvents, EventBus } from './events.js';
import { BUILD_OUTPUT_LIMITS, type BuildOutputLimits, checkBuildOutput } from './limits.js';
import { providersOf, type Resolution, resolveSession } from './resolve.js';
import { Semaphore } from './semaphore.js';

/** Options of one run (a build session), as the original's triggers set them (docs/compatibility.md#build-sessions). */
export interface RunSettings {
  reason: BuildReason;
  /** order the session by dependencies */
  resolve: boolean;
  /** one-off clean build (a new container) */
  clean: boolean;
  /** build even when the source is up to date (and even when it failed at this state before) */
  force: boolean;
}

/** Options of {@link BuildOrchestrator}. */
export interface OrchestratorOptions {
  /** limits on what a build's output may hold (a build is untrusted) */
  outputLimits?: Partial<BuildOutputLimits>;
  store: Store;
  sources: SourceFactory;
  runner: Runner;
  publisher: Publisher;
  logger?: Logger;
  /** the bus state changes and log chunks are emitted on; a new one when not given */
  bus?: EventBus<BuildEvents>;
  /** `ARCH` @default 'x86_64' */
  arch?: string;
  /** `NAME`: the repository name, used in the runner's `custom-repo` @default 'serene' */
  repositoryName?: string;
  /** the folder holding `sources/<pkgbase>` */
  sourcesDir: string;
  /** a folder for the outputs of running builds */
  workDir: string;
  /** `OWN_REPOSITORY_URL`: where runners reach this repository */
  ownRepositoryUrl?: string | undefined;
  /** `CONCURRENT_BUILDS`: builds running at once across the whole server @default 5 */
  concurrentBuilds?: number;
  /** `BUILD_TIMEOUT` in ms @default undefined: no timeout, as the original */
  buildTimeoutMs?: number | undefined;
  /**
   * `SCHEDULE_SKIP_FAILED`: scheduled runs skip a package whose last build failed until its source
   * changes. @default false: scheduled runs build it again, as the original's
   */
  skipFailedOnSchedule?: boolean;
  /** `RESOLVE_BUILD_SEQUENCE` @default true */
  resolveBuildSequence?: boolean;
  /** `RESOLVE_IGNORE_FAILED` @default false */
  resolveIgnoreFailed?: boolean;
  /** `FORCE_CLEAN` @default false */
  forceClean?: boolean;
  /** packages of the sync databases (core, extra, multilib), refreshed before resolving */
  syncProviders?: () => Promise<readonly Provider[]>;
  /** the clock @default () => new Date() */
  now?: () => Date;
  /** the update gate: checks updates before they are built (docs/update-gate.md); none lets every update pass */
  gate?: UpdateGate;
}

/** The defaults of the build settings (the original's: no timeout, failed packages retried on schedule); the host's settings take them from here. */
export const BUILD_DEFAULTS = {
  concurrentBuilds: 5,
  buildTimeoutMs: undefined as number | undefined,
  skipFailedOnSchedule: false,
  resolveBuildSequence: true,
  resolveIgnoreFailed: false,
  forceClean: false,
} as const;

/**
 * Source updates a session runs at once. Enough for the AUR client to batch a session's version
 * checks into requests of a hundred names; few enough that a session of thousands of packages does
 * not fill libuv's thread pool queue (file writes, store queries) ahead of the requests the server
 * answers meanwhile.
 */
export const SESSION_UPDATES = 100;

/** Packages a session handles between two turns of the event loop where it handles them all at once. */
const YIELD_EVERY = 500;

/** Message of builds found unfinished at start-up, as the original's. */
export const RESTART_MESSAGE =
  'build was not finished or failed beyond fatally, then serene was restarted - check your logs!';

/** Message of builds cancelled because the server stops (SIGTERM). */
export const SHUTDOWN_MESSAGE = 'build was cancelled because serene was shut down';

/**
 * Where a build in flight stands: `waiting` for builds of its session it depends on (or for the
 * session to be resolved), `queued` for a free build slot, `running` on the runner.
 */
export type BuildPhase = 'waiting' | 'queued' | 'running';

/** A build in flight, as {@link BuildOrchestrator.inFlight} shows it. */
export interface BuildInFlight {
  base: string;
  started: Date;
  reason: BuildReason;
  state: BuildState;
  phase: BuildPhase;
  /** bases of its session it still waits for (phase `waiting`) */
  waitingFor: string[];
  /** the runner that runs it */
  runner: string;
  /** the architecture it is built for */
  arch: string;
}

/** A build of a session in flight. */
interface Job {
  base: string;
  started: Date;
  reason: BuildReason;
  /** the last state recorded */
  state: BuildState;
  phase: BuildPhase;
  /** in-session bases it still waits for */
  waitingFor?: ReadonlySet<string>;
  record: PackageRecord;
  source: Source;
  controller: AbortController;
  /** why the controller was aborted */
  abortReason?: 'cancelled' | 'timeout';
  /** the message of the cancelled state, when not the default one */
  cancelMessage?: string;
  /** the last `.SRCINFO` parsed for this job (resolve, then publish; a large session's not kept), with its text */
  srcinfo?: { text: string; parsed: Srcinfo };
}

/**
 * Runs build sessions: locks, source updates, up-to-date checks, dependency order, the server-wide
 * build queue, runner, publisher, and the state machine of every build (docs/compatibility.md#build-states), emitting each
 * state change and log chunk on the event bus.
 *
 * @remarks Beyond the original: the concurrency limit is server-wide, builds time out, queued and
 * running builds can be cancelled, and a package whose build failed is not rebuilt by non-forced
 * runs until its source state changes.
 */
export class BuildOrchestrator {
  /** the bus state changes and log chunks are emitted on */
  readonly bus: EventBus<BuildEvents>;

  private readonly store: Store;
  private readonly sources: SourceFactory;
  private readonly runner: Runner;
  private readonly publisher: Publisher;
  private readonly logger: Logger;
  private readonly arch: string;
  private readonly repositoryName: string;
  private readonly sourcesDir: string;
  private readonly workDir: string;
  private readonly ownRepositoryUrl: string | undefined;
  private readonly buildTimeoutMs: number | undefined;
  private readonly outputLimits: Readonly<BuildOutputLimits>;
  private readonly skipFailedOnSchedule: boolean;
  private readonly resolveBuildSequence: boolean;
  private readonly resolveIgnoreFailed: boolean;
  private readonly forceClean: boolean;
  private readonly syncProviders: () => Promise<readonly Provider[]>;
  private readonly now: () => Date;
  private readonly gate: UpdateGate | undefined;
  private readonly slots: Semaphore;
  private readonly locks = new Set<string>();
  private readonly jobs = new Map<string, Job>();
  private readonly sessions = new Set<Promise<void>>();
  private readonly lastStarted = new Map<string, number>();

  constructor(options: OrchestratorOptions) {
    this.store = options.store;
    this.sources = options.sources;
    this.runner = options.runner;
    this.publisher = options.publisher;
    this.logger = options.logger ?? createNoopLogger();
    this.bus = options.bus ?? new EventBus((error) => this.logger.error('event handler failed', { error }));
    this.arch = options.arch ?? 'x86_64';
    this.repositoryName = options.repositoryName ?? 'serene';
    this.sourcesDir = options.sourcesDir;
    this.workDir = options.workDir;
    this.ownRepositoryUrl = options.ownRepositoryUrl;
    this.buildTimeoutMs = options.buildTimeoutMs ?? BUILD_DEFAULTS.buildTimeoutMs;
    this.outputLimits = { ...BUILD_OUTPUT_LIMITS, ...options.outputLimits };
    this.skipFailedOnSchedule = options.skipFailedOnSchedule ?? BUILD_DEFAULTS.skipFailedOnSchedule;
    this.resolveBuildSequence = options.resolveBuildSequence ?? BUILD_DEFAULTS.resolveBuildSequence;
    this.resolveIgnoreFailed = options.resolveIgnoreFailed ?? BUILD_DEFAULTS.resolveIgnoreFailed;
    this.forceClean = options.forceClean ?? BUILD_DEFAULTS.forceClean;
    this.syncProviders = options.syncProviders ?? (async () => []);
    this.now = options.now ?? (() => new Date());
    this.gate = options.gate;
    this.slots = new Semaphore(options.concurrentBuilds ?? BUILD_DEFAULTS.concurrentBuilds);
  }

  /** Builds waiting for a slot and builds running now. */
  get queue(): { running: number; queued: number } {
    return { running: this.slots.running, queued: this.slots.queued };
  }

  /** The builds queued and running now, oldest first (the queue of the server). */
  inFlight(): BuildInFlight[] {
    return [...this.jobs.values()]
      .map((job) => ({
        base: job.base,
        started: job.started,
        reason: job.reason,
        state: job.state,
        phase: job.phase,
        waitingFor: job.phase === 'waiting' ? [...(job.waitingFor ?? [])].sort() : [],
        runner: this.runner.name,
        arch: this.arch,
      }))
      .sort((a, b) => a.started.getTime() - b.started.getTime() || (a.base < b.base ? -1 : 1));
  }

  /** The build in flight of a package, if it has one. */
  buildInFlight(base: string): BuildInFlight | undefined {
    return this.inFlight().find((build) => build.base === base);
  }

  /** Whether a package is in a running session. */
  isLocked(base: string): boolean {
    return this.locks.has(base);
  }

  /** The folder of a package's source checkout. */
  sourceDir(base: string): string {
    return path.join(this.sourcesDir, base);
  }

  /**
   * Starts a session for `bases` (docs/compatibility.md#build-sessions). With `failIfLocked` (manual, webhook and add
   * triggers) a package already in a session refuses the whole request with a `ConflictError`;
   * otherwise (schedule) locked packages are silently left out. Resolves once the session is
   * started, with the promise of its end.
   */
  async start(
    bases: readonly string[],
    settings: RunSettings,
    options: { failIfLocked?: boolean } = {},
  ): Promise<{ done: Promise<void>; bases: string[] }> {
    const unique = [...new Set(bases)].sort();
    if (options.failIfLocked) {
      const locked = unique.find((base) => this.locks.has(base));
      if (locked)
        throw new ConflictError(`cannot build now, ${locked} is currently in a running build session`);
    }
    const taken = unique.filter((base) => !this.locks.has(base));
    for (const base of taken) this.locks.add(base);
    const done = this.session(taken, settings)
      .catch((error) => this.logger.error('build session failed', { error: formatErrorChain(error) }))
      .finally(() => {
        for (const base of taken) this.locks.delete(base);
        this.sessions.delete(done);
      });
    this.sessions.add(done);
    return { done, bases: taken };
  }

  /**
   * Cancels the queued or running build of a package; false when it has none. A build waiting for
   * a slot or for its dependencies ends at once; a running one when its runner has stopped. It is
   * recorded as cancelled with `message` (the default says only that it was cancelled).
   */
  cancel(base: string, message?: string): boolean {
    const job = this.jobs.get(base);
    if (!job) return false;
    job.abortReason ??= 'cancelled';
    if (message) job.cancelMessage ??= message;
    job.controller.abort(new Error('cancelled'));
    return true;
  }

  /** Waits until every session has ended. */
  async idle(): Promise<void> {
    while (this.sessions.size > 0) await Promise.all([...this.sessions]);
  }

  /** Cancels everything in flight and waits for the sessions to end (shutdown). */
  async stop(message = SHUTDOWN_MESSAGE): Promise<void> {
    for (const base of this.jobs.keys()) this.cancel(base, message);
    await this.idle();
  }

  /**
   * Start-up recovery, as the original: builds left pending or running by a previous process
   * become fatal with `ended = started`. Returns how many were marked.
   */
  async recover(): Promise<number> {
    const unfinished = await this.store.listUnfinishedBuilds();
    for (const build of unfinished) {
      const progress: BuildProgress = build.state.state === 'running' ? build.state.info : 'resolve';
      await this.store.updateBuild(build.package, build.started, {
        state: { state: 'fatal', info: [RESTART_MESSAGE, progress] },
        ended: build.started,
      });
    }
    return unfinished.length;
  }

  // --- Session ----------------------------------------------------------------------------------

  private async session(bases: string[], settings: RunSettings): Promise<void> {
    // a large session reads its packages in one query, not one each
    const records =
      bases.length > SESSION_UPDATES
        ? new Map((await this.store.listPackages()).map((record) => [record.base, record]))
        : undefined;
    // updates run together, so that the AUR client batches their version checks into few requests,
    // but SESSION_UPDATES at most: a scheduled session of thousands would otherwise queue all their
    // file and store operations at once in libuv's thread pool, where every request's query waits
    // behind them
    const limit = createLimiter(SESSION_UPDATES);
    const updated = await Promise.all(
      bases.map((base) =>
        limit(async () => {
          const record = records ? records.get(base) : await this.store.getPackage(base);
          if (!record) {
            this.logger.warn('package to build is not added (any more)', { base });
            return undefined;
          }
          const source = this.sources.restore(record.source);
          const dir = this.sourceDir(base);
          try {
            // an approved revision is built as it is, never a newer one pushed since
            const { approved } = this.gate ? await this.gate.beforeUpdate(base, source, dir) : {};
            if (approved !== undefined && source.pin) {
              await source.pin(dir, approved);
            } else {
              await source.update(dir);
              if (this.gate && source.state() !== record.builtState) {
                const decision = await this.gate.check(base, source, dir);
                // held or rejected: the checkout is back at the accepted revision, the stored source stays;
                // a checkout that could not be put back is not built at all, not even by a forced build
                if (decision.action !== 'build') {
                  return decision.restored
                    ? { record, source: this.sources.restore(record.source) }
                    : undefined;
                }
              }
            }
            const json = source.toJSON();
            // most updates find nothing new: then the stored source is already this one
            if (JSON.stringify(json) !== JSON.stringify(record.source)) {
              await this.store.updatePackage(base, { source: json });
            }
          } catch (error) {
            // as the original: a failed update is logged, the package proceeds with its old checkout
            this.logger.warn('could not update source', { base, error: formatErrorChain(error) });
          }
          return { record, source };
        }),
      ),
    );
    const jobs: Job[] = [];
    for (const item of updated) {
      if (!item) continue;
      const { record, source } = item;
      const base = record.base;
      const state = source.state();
      if (!settings.force && record.builtState === state) {
        this.logger.debug('package is up to date', { base });
        continue;
      }
      if (
        this.skipFailedOnSchedule &&
        !settings.force &&
        settings.reason === 'schedule' &&
        record.failedState === state
      ) {
        this.logger.debug('package failed at this state before, not rebuilding', { base });
        continue;
      }
      jobs.push({
        base,
        started: this.uniqueStart(base),
        reason: settings.reason,
        record,
        source,
        controller: new AbortController(),
        state: { state: 'pending' },
        phase: 'waiting',
      });
    }
    if (jobs.length === 0) return;

    for (const job of jobs) {
      this.jobs.set(job.base, job);
      await this.store.insertBuild({
        package: job.base,
        started: job.started,
        ended: null,
        state: { state: 'pending' },
        reason: settings.reason,
        version: null,
        runSuccess: null,
        runStarted: null,
        runEnded: null,
        stats: null,
      });
      this.bus.emit('state', {
        base: job.base,
        started: job.started,
        state: { state: 'pending' },
        reason: job.reason,
      });
    }
    try {
      const waiting = await this.resolve(jobs, settings);
      await this.loop(jobs, waiting, settings);
    } finally {
      for (const job of jobs) this.jobs.delete(job.base);
    }
  }

  /** The in-session bases each job waits for; cancels jobs that cannot be built. */
  private async resolve(jobs: Job[], settings: RunSettings): Promise<Map<string, Set<string>>> {
    const waiting = new Map(jobs.map((job) => [job.base, new Set<string>()]));
    if (!(settings.resolve && this.resolveBuildSequence && jobs.length > 1)) return waiting;
    let resolutions: Resolution[];
    try {
      const sessionPackages: { base: string; srcinfo: Srcinfo }[] = [];
      for (const [i, job] of jobs.entries()) {
        // thousands of .SRCINFO files take a while to parse: requests are answered in between
        if (i > 0 && i % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
        sessionPackages.push({
          base: job.base,
          srcinfo: parseJobSrcinfo(job, await job.source.srcinfo(this.sourceDir(job.base))),
        });
      }
      const inSession = new Set(jobs.map((job) => job.base));
      const all = await this.store.listPackages();
      const repository = all
        .filter((pkg) => !inSession.has(pkg.base) && pkg.srcinfo)
        .flatMap((pkg) => providersOf(parseSrcinfo(pkg.srcinfo!)));
      resolutions = await resolveSession(sessionPackages, {
        arch: this.arch,
        sync: await this.syncProviders(),
        repository,
        added: new Set(all.map((pkg) => pkg.base)),
      });
      // a large session does not keep the parses for its publishes: thousands of parsed .SRCINFO
      // files are tens of MB held while the builds wait (each is parsed again when it publishes)
      if (jobs.length > SESSION_UPDATES) for (const job of jobs) delete job.srcinfo;
    } catch (error) {
      for (const job of jobs) {
        await this.finish(job, { state: 'fatal', info: [formatErrorChain(error), 'resolve'] });
        waiting.delete(job.base);
      }
      return waiting;
    }
    const byBase = new Map(jobs.map((job) => [job.base, job]));
    for (const resolution of resolutions) {
      const job = byBase.get(resolution.base)!;
      if (resolution.cancelled) {
        await this.finish(job, { state: 'cancelled', info: resolution.message });
        waiting.delete(job.base);
      } else {
        waiting.set(job.base, resolution.dependsOn);
      }
    }
    return waiting;
  }

  /** Starts every job whose dependencies are done, until none is left (docs/compatibility.md#dependency-order-and-concurrency). */
  private async loop(jobs: Job[], waiting: Map<string, Set<string>>, settings: RunSettings): Promise<void> {
    const byBase = new Map(jobs.map((job) => [job.base, job]));
    // the bases waiting for each base, in the order of `waiting` (the order builds start in)
    const dependents = new Map<string, string[]>();
    for (const [base, deps] of waiting) {
      for (const dep of deps) {
        const list = dependents.get(dep);
        if (list) list.push(base);
        else dependents.set(dep, [base]);
      }
    }
    // Ended builds are queued and handled one at a time: a `Promise.race` over every running build
    // at each step would cost (and keep alive until the builds end) a reaction per build and step.
    const ended: { base: string; success: boolean; cancelled?: boolean }[] = [];
    let wake: (() => void) | undefined;
    let running = 0;
    const begun = new Set<string>();
    // a build cancelled while it waits for its dependencies ends now, not when they have ended
    for (const [base, deps] of waiting) {
      const job = byBase.get(base)!;
      job.waitingFor = deps;
      if (deps.size === 0) continue;
      const onAbort = () => {
        if (begun.has(base) || !waiting.has(base)) return;
        begun.add(base);
        running++;
        ended.push({ base, success: false, cancelled: true });
        wake?.();
      };
      if (job.controller.signal.aborted) onAbort();
      else job.controller.signal.addEventListener('abort', onAbort, { once: true });
    }
    const start = (base: string): void => {
      begun.add(base);
      running++;
      void this.build(byBase.get(base)!, settings)
        .catch((error: unknown) => {
          this.logger.error('build failed unexpectedly', { base, error: formatErrorChain(error) });
          return false;
        })
        .then((success) => {
          ended.push({ base, success });
          wake?.();
        });
    };
    let started = 0;
    for (const [base, deps] of waiting) {
      if (deps.size > 0) continue;
      start(base);
      if (++started % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    while (running > 0) {
      if (ended.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      const { base, success, cancelled } = ended.shift()!;
      running--;
      waiting.delete(base);
      if (cancelled) {
        const job = byBase.get(base)!;
        await this.finish(job, { state: 'cancelled', info: job.cancelMessage ?? 'build was cancelled' });
      }
      const ready: string[] = [];
      for (const other of dependents.get(base) ?? []) {
        const deps = waiting.get(other);
        if (!deps?.has(base)) continue;
        if (success || this.resolveIgnoreFailed) {
          deps.delete(base);
          if (deps.size === 0) ready.push(other);
        } else {
          await this.finish(byBase.get(other)!, {
            state: 'cancelled',
            info: `failed to build dependency ${base} successfully`,
          });
          waiting.delete(other);
        }
      }
      for (const other of ready) start(other);
    }
    for (const [base, deps] of waiting) {
      await this.finish(byBase.get(base)!, {
        state: 'fatal',
        info: [`package was orphaned in the build process, waiting for ${[...deps].join(', ')}`, 'resolve'],
      });
    }
  }

  // --- One build --------------------------------------------------------------------------------

  /** Runs and publishes one build; resolves whether it succeeded. Never rejects. */
  private async build(job: Job, settings: RunSettings): Promise<boolean> {
    let progress: BuildProgress = 'build';
    let release: (() => void) | undefined;
    let output: string | undefined;
    /** the files the runner reported, which are most often all that is in `output` */
    let outputFiles: readonly string[] = [];
    let timer: NodeJS.Timeout | undefined;
    const logs = this.logWriter(job);
    try {
      job.phase = 'queued';
      release = await this.slots.acquire(job.controller.signal);
      // the timeout counts from the start of the run, not from the wait for a slot
      if (this.buildTimeoutMs !== undefined) {
        timer = setTimeout(() => {
          job.abortReason ??= 'timeout';
          job.controller.abort(new Error('timeout'));
        }, this.buildTimeoutMs);
      }
      await this.setState(job, { state: 'running', info: 'build' });
      // running from the state the store and the bus say so (the queue shows both together)
      job.phase = 'running';
      output = await this.createOutputDir();
      const record = job.record;
      const clean = settings.clean || record.clean || this.forceClean;
      const result = await this.runner.run(
        {
          base: job.base,
          sourceDir: this.sourceDir(job.base),
          inputs: {
            customRepo: this.ownRepositoryUrl
              ? `[${this.repositoryName}]\nSigLevel = Never\nServer = ${this.ownRepositoryUrl}\n`
              : '',
            prepare: record.prepare ?? '',
            makepkgFlags: record.flags.map((flag) => `--${flag} `).join(''),
          },
          clean,
          outputDir: output,
          timeoutMs: this.buildTimeoutMs,
          arch: this.arch,
        },
        { onLog: logs.write, signal: job.controller.signal },
      );
      outputFiles = result.packages;
      await logs.flush();
      const run: BuildChanges = {
        runSuccess: result.success,
        runStarted: result.started,
        runEnded: result.ended,
        stats: result.stats,
      };
      const aborted = job.abortReason ?? result.aborted;
      const published = aborted === undefined && result.success;
      // a successful run is recorded with the publish state that follows it, in one write
      if (!published) await this.store.updateBuild(job.base, job.started, run);
      if (aborted === 'timeout') {
        const message = `build timed out after ${formatDuration(this.buildTimeoutMs ?? 0)} and was stopped`;
        await this.rememberFailure(job);
        // the runner's own words when it ended the build for its timeout; ours when we stopped it
        const text = result.aborted === 'timeout' && result.message ? result.message : message;
        await this.finish(job, { state: 'fatal', info: [text, 'build'] });
        return false;
      }
      if (aborted === 'cancelled') {
        await this.finish(job, { state: 'cancelled', info: job.cancelMessage ?? 'build was cancelled' });
        return false;
      }
      if (!result.success) {
        await this.rememberFailure(job);
        // a clean package leaves nothing behind after a failed build either
        if (record.clean || this.forceClean) {
          await this.runner.remove?.(job.base).catch((error) =>
            this.logger.warn('could not remove the runner of a failed clean build', {
              base: job.base,
              error: formatErrorChain(error),
            }),
          );
        }
        await this.finish(job, { state: 'failure' });
        return false;
      }
      progress = 'publish';
      await this.setState(job, { state: 'running', info: 'publish' }, run);
      const version = await this.publish(job, result);
      progress = 'clean';
      // the version is recorded with the state that follows the publish, in one write
      if (record.clean || this.forceClean) {
        await this.setState(job, { state: 'running', info: 'clean' }, { version });
        await this.runner.remove?.(job.base);
        await this.finish(job, { state: 'success' });
      } else {
        await this.finish(job, { state: 'success' }, { version });
      }
      return true;
    } catch (error) {
      await logs.flush().catch(() => undefined);
      if (job.abortReason === 'cancelled' && progress === 'build') {
        await this.finish(job, {
          state: 'cancelled',
          info: job.cancelMessage ?? 'build was cancelled',
        }).catch(() => undefined);
      } else {
        const message =
          job.abortReason === 'timeout'
            ? `build timed out after ${formatDuration(this.buildTimeoutMs ?? 0)} and was stopped`
            : formatErrorChain(error);
        await this.rememberFailure(job).catch(() => undefined);
        await this.finish(job, { state: 'fatal', info: [message, progress] }).catch((failure) =>
          this.logger.error('could not record a fatal build', {
            base: job.base,
            error: formatErrorChain(failure),
          }),
        );
      }
      return false;
    } finally {
      clearTimeout(timer);
      release?.();
      if (output) await removeOutputDir(output, outputFiles).catch(() => undefined);
    }
  }

  /** A new folder for the outputs of one build, in `workDir` (created when missing). */
  private async createOutputDir(): Promise<string> {
    const prefix = path.join(this.workDir, 'build-');
    try {
      return await fs.mkdtemp(prefix);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await fs.mkdir(this.workDir, { recursive: true });
      return fs.mkdtemp(prefix);
    }
  }

  /** Checks the built files against the `.SRCINFO` and publishes them (docs/compatibility.md#repository-layout). */
  private async publish(job: Job, result: RunResult): Promise<string> {
    const dir = this.sourceDir(job.base);
    let srcinfoText = await job.source.srcinfo(dir);
    const expected = parseJobSrcinfo(job, srcinfoText);
    // a build is untrusted: what its runner reports is bounded before it is parsed
    checkBuildOutput(result, this.outputLimits);
    if (!result.srcinfo) throw new Error('could not find .SRCINFO file in archive from container');
    const reported = result.srcinfo === srcinfoText ? expected : parseSrcinfo(result.srcinfo);
    if (job.source.devel) {
      srcinfoText = result.srcinfo;
    } else if (reported.base.pkgver !== expected.base.pkgver) {
      throw new Error(
        `version mismatch on package ${job.base}, expected ${expected.base.pkgver} but built ${reported.base.pkgver}`,
      );
    }
    const srcinfo = job.source.devel ? reported : expected;
    const version = srcinfoVersion(srcinfo);
    const wanted = srcinfo.packages.map(
      (member) => `${member.pkgname}-${version}-${memberArch(member, this.arch)}.pkg.tar.`,
    );
    const files = wanted.map((prefix) =>
      result.packages.find((file) => path.basename(file).startsWith(prefix)),
    );
    const missing = wanted.filter((_, i) => !files[i]);
    if (missing.length > 0) {
      throw new Error(
        `could not find all expected built packages: [${missing.map((m) => `${m}*`).join(', ')}]`,
      );
    }
    await this.publisher.publish(files as string[], { base: job.base });
    await this.store.updatePackage(job.base, {
      srcinfo: srcinfoText,
      pkgbuild: await job.source.pkgbuild(dir),
      builtState: job.source.state(),
      failedState: null,
      source: job.source.toJSON(),
    });
    await this.gate?.built(job.base, job.source, dir).catch((error: unknown) =>
      this.logger.warn('could not record the built revision', {
        base: job.base,
        error: formatErrorChain(error),
      }),
    );
    return srcinfo.base.pkgver;
  }

  // --- Helpers ----------------------------------------------------------------------------------

  /** Records a state change (with `changes` to the build in the same write) and emits it. */
  private async setState(job: Job, state: BuildState, changes?: BuildChanges): Promise<void> {
    await this.store.updateBuild(job.base, job.started, { ...changes, state });
    job.state = state;
    this.bus.emit('state', { base: job.base, started: job.started, state, reason: job.reason });
  }

  /** Records the source state a build failed at, so scheduled runs skip it until it changes. */
  private async rememberFailure(job: Job): Promise<void> {
    await this.store.updatePackage(job.base, { failedState: job.source.state() });
  }

  private async finish(job: Job, state: BuildState, changes?: BuildChanges): Promise<void> {
    await this.store.updateBuild(job.base, job.started, { ...changes, state, ended: this.now() });
    job.state = state;
    this.jobs.delete(job.base);
    this.bus.emit('state', { base: job.base, started: job.started, state, reason: job.reason });
  }

  /**
   * Collects log chunks: emitted at once, written to the store in batches. A build's output is
   * untrusted: past `logCharacters` it is cut, with a note, so that a build printing without end
   * fills neither the store nor the live streams.
   */
  private logWriter(job: Job): { write: (chunk: string) => void; flush: () => Promise<void> } {
    const limit = this.outputLimits.logCharacters;
    let kept = 0;
    let buffer = '';
    let timer: NodeJS.Timeout | undefined;
    let writing: Promise<void> = Promise.resolve();
    const flush = (): Promise<void> => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (buffer !== '') {
        const chunk = buffer;
        buffer = '';
        writing = writing.then(() => this.store.appendLog(job.base, job.started, chunk));
      }
      return writing;
    };
    return {
      write: (text) => {
        if (kept > limit) return;
        let chunk = text;
        kept += chunk.length;
        if (kept > limit) {
          chunk = `${chunk.slice(0, chunk.length - (kept - limit))}\n==> serene: the build's log is longer than ${limit} characters; the rest was cut\n`;
        }
        this.bus.emit('log', { base: job.base, started: job.started, chunk });
        buffer += chunk;
        if (buffer.length >= 64 * 1024) void flush().catch(() => undefined);
        else timer ??= setTimeout(() => void flush().catch(() => undefined), 250);
      },
      flush,
    };
  }

  /** A start time after the package's previous one: `(package, started)` identifies a build. */
  private uniqueStart(base: string): Date {
    const now = this.now().getTime();
    const previous = this.lastStarted.get(base) ?? 0;
    const started = Math.max(now, previous + 1);
    this.lastStarted.set(base, started);
    return new Date(started);
  }

  /** Throws `NotFoundError` unless every base is added. */
  async assertAdded(bases: readonly string[]): Promise<void> {
    for (const base of bases) {
      if (!(await this.store.getPackage(base)))
        throw new NotFoundError(`package with base ${base} is not added`);
    }
  }

  /** The newest build of a package, if any. */
  latestBuild(base: string): Promise<BuildRecord | undefined> {
    return this.store.getLatestBuild(base);
  }
}

/** Parses a `.SRCINFO` of a job, reusing the last parse when the text is the same. */
function parseJobSrcinfo(job: Job, text: string): Srcinfo {
  if (job.srcinfo?.text !== text) job.srcinfo = { text, parsed: parseSrcinfo(text) };
  return job.srcinfo.parsed;
}

/**
 * Removes a build's output folder: the files the runner reported in it, then the folder, which is
 * most often all it holds; anything else (other files, a failure) falls back to a recursive `fs.rm`.
 */
async function removeOutputDir(dir: string, files: readonly string[]): Promise<void> {
  const folder = path.resolve(dir);
  try {
    const inside = files.filter((file) => path.dirname(path.resolve(file)) === folder);
    await Promise.all(inside.map((file) => fs.unlink(file)));
    await fs.rmdir(folder);
    return;
  } catch {
    // the recursive removal below reports what is wrong, or succeeds where this did not
  }
  await fs.rm(folder, { recursive: true, force: true });
}

function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 100) / 10} s`;
}
