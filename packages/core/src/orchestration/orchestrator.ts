import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createLimiter, createPause, Semaphore } from '../concurrency.js';
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
import { packagePages } from '../contracts/store.js';
import {
  ConflictError,
  formatErrorChain,
  InputError,
  NotFoundError,
  UnsupportedArchitectureError,
} from '../errors.js';
import type { UpdateGate } from '../gate/gate.js';
import { createNoopLogger, type Logger } from '../logger.js';
import type { Provider } from '../pacman/depend.js';
import { memberArch, parseSrcinfo, type Srcinfo, srcinfoVersion } from '../pacman/srcinfo.js';
import { type BuildEvents, EventBus } from './events.js';
import { BUILD_OUTPUT_LIMITS, type BuildOutputLimits, checkBuildOutput } from './limits.js';
import { providersOf, resolveSession, type SessionPackage, sessionPackageOf } from './resolve.js';

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
  /** `ARCH`: the primary architecture, whose repository is `publisher` @default 'x86_64' */
  arch?: string;
  /**
   * every architecture built and published for, the primary among them (docs/engines.md#architectures)
   * @default [arch]
   */
  arches?: readonly string[];
  /** the repository of each architecture of `arches` other than the primary */
  publishers?: Readonly<Record<string, Publisher>>;
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
  /** `base/arch`: a package has one build per architecture in a session */
  key: string;
  base: string;
  /** the architecture it is built for (the runner's `job.arch`) */
  arch: string;
  /** the architectures whose repositories receive what it built: its own, or all of them for `any` */
  publishTo: readonly string[];
  started: Date;
  reason: BuildReason;
  /** the last state recorded */
  state: BuildState;
  phase: BuildPhase;
  /** keys of the in-session builds it still waits for */
  waitingFor?: ReadonlySet<string>;
  /**
   * what its build needs of its package's record: a session of thousands does not hold every
   * record (its `.SRCINFO`, PKGBUILD and source) while its builds wait (docs/benchmarks.md, issue 16)
   */
  record: Pick<PackageRecord, 'clean' | 'prepare' | 'flags'>;
  source: Source;
  /**
   * stops its run: made when the run begins (a session of thousands does not keep an
   * AbortController with its listeners for each build while it waits; docs/benchmarks.md, issue 16)
   */
  controller?: AbortController;
  /** ends the build at once while it waits for its dependencies or a slot (set by its session's loop) */
  dequeue?: (job: Job) => void;
  /** why the build was stopped (cancelled, or its run timed out) */
  abortReason?: 'cancelled' | 'timeout';
  /** the message of the cancelled state, when not the default one */
  cancelMessage?: string;
  /** the last `.SRCINFO` parsed for this job (resolve, then publish; a large session's not kept; none once it ended), with its text */
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
  private readonly arches: readonly string[];
  private readonly publishers: ReadonlyMap<string, Publisher>;
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
    this.arches = [this.arch, ...(options.arches ?? []).filter((arch) => arch !== this.arch)];
    this.arches = [...new Set(this.arches)];
    this.publishers = new Map(
      this.arches.map((arch) => [
        arch,
        arch === this.arch ? options.publisher : (options.publishers?.[arch] as Publisher),
      ]),
    );
    const unpublished = this.arches.filter((arch) => !this.publishers.get(arch));
    if (unpublished.length > 0)
      throw new InputError(`no repository (publisher) for architecture ${unpublished.join(', ')}`);
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
    let queued = 0;
    for (const job of this.jobs.values()) if (job.phase === 'queued') queued++;
    return { running: this.slots.running, queued };
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
        waitingFor:
          job.phase === 'waiting'
            ? [
                ...new Set([...(job.waitingFor ?? [])].map((key) => key.slice(0, key.lastIndexOf('/')))),
              ].sort()
            : [],
        runner: this.runner.name,
        arch: job.arch,
      }))
      .sort(
        (a, b) =>
          a.started.getTime() - b.started.getTime() ||
          (a.base < b.base ? -1 : a.base > b.base ? 1 : a.arch < b.arch ? -1 : 1),
      );
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
    // a package's builds for each of its architectures end together (looked up by key: a shutdown
    // cancels every package of a session of thousands)
    const jobs = this.arches
      .map((arch) => this.jobs.get(`${base}/${arch}`))
      .filter((job) => job !== undefined);
    for (const job of jobs) {
      job.abortReason ??= 'cancelled';
      if (message) job.cancelMessage ??= message;
      // a running build is stopped; one waiting is ended by its session's loop (which, not set up
      // yet, sees `abortReason` when it is)
      if (job.controller) job.controller.abort(new Error('cancelled'));
      else job.dequeue?.(job);
    }
    return jobs.length > 0;
  }

  /** Waits until every session has ended. */
  async idle(): Promise<void> {
    while (this.sessions.size > 0) await Promise.all([...this.sessions]);
  }

  /** Cancels everything in flight and waits for the sessions to end (shutdown). */
  async stop(message = SHUTDOWN_MESSAGE): Promise<void> {
    for (const base of new Set([...this.jobs.values()].map((job) => job.base))) this.cancel(base, message);
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
    // updates run together, so that the AUR client batches their version checks into few requests,
    // but SESSION_UPDATES at most: a scheduled session of thousands would otherwise queue all their
    // file and store operations at once in libuv's thread pool, where every request's query waits
    // behind them
    const limit = createLimiter(SESSION_UPDATES);
    const update = (base: string, stored?: PackageRecord) =>
      limit(async () => {
        const record = stored ?? (await this.store.getPackage(base));
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
                  ? { record: this.sessionRecord(record), source: this.sources.restore(record.source) }
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
        return { record: this.sessionRecord(record), source };
      });
    let updated: Awaited<ReturnType<typeof update>>[];
    if (bases.length > SESSION_UPDATES) {
      // a large session reads its packages by pages, not one query each, and holds a page of whole
      // records at a time (a session of thousands: tens of MB of PKGBUILDs, .SRCINFO and sources)
      const wanted = new Set(bases);
      updated = [];
      for await (const page of packagePages(this.store)) {
        const records = page.filter((record) => wanted.delete(record.base));
        updated.push(...(await Promise.all(records.map((record) => update(record.base, record)))));
      }
      for (const base of wanted) updated.push(await update(base));
    } else {
      updated = await Promise.all(bases.map((base) => update(base)));
    }
    const jobs: Job[] = [];
    /** builds that cannot run, with why: recorded, then ended fatal before the others are resolved */
    const refused: { job: Job; message: string }[] = [];
    // the .SRCINFO read here (its architectures, and whether it parses at all) is what the resolver
    // reads: a large session keeps what the resolver needs of it by job, a small one the parse
    const large = bases.length > SESSION_UPDATES;
    const resolving = settings.resolve && this.resolveBuildSequence;
    const prepared = new Map<string, SessionPackage>();
    const pause = createPause();
    for (const item of updated) {
      await pause();
      if (!item) continue;
      const { record, source } = item;
      const base = record.base;
      const state = source.state();
      let targets: Target[] | undefined;
      if (!settings.force && record.builtState === state) {
        // with several architectures, an architecture whose last build did not succeed (or that has
        // none: it was added since) is built again, the others are up to date
        targets = this.arches.length > 1 ? await this.outdatedTargets(record) : [];
        if (targets.length === 0) {
          this.logger.debug('package is up to date', { base });
          continue;
        }
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
      let message: string | undefined;
      let parsed: { text: string; srcinfo: Srcinfo } | undefined;
      if (targets === undefined) {
        try {
          const text = await source.srcinfo(this.sourceDir(base));
          parsed = { text, srcinfo: parseSrcinfo(text) };
          targets = this.targetsOf(parsed.srcinfo, record);
        } catch (error) {
          message = formatErrorChain(error);
          targets = [{ arch: this.arch, publishTo: [this.arch] }];
        }
      }
      for (const target of targets) {
        const job: Job = {
          key: `${base}/${target.arch}`,
          base,
          arch: target.arch,
          publishTo: target.publishTo,
          started: this.uniqueStart(base),
          reason: settings.reason,
          record: { clean: record.clean, prepare: record.prepare, flags: record.flags },
          source,
          state: { state: 'pending' },
          phase: 'waiting',
        };
        if (message !== undefined) {
          refused.push({ job, message });
          continue;
        }
        jobs.push(job);
        if (parsed && !large) job.srcinfo = { text: parsed.text, parsed: parsed.srcinfo };
        else if (parsed && resolving)
          prepared.set(job.key, sessionPackageOf(base, parsed.srcinfo, job.publishTo));
      }
    }
    // the records are no longer needed: a large session's builds wait with only their jobs
    updated.length = 0;
    if (jobs.length === 0 && refused.length === 0) return;

    for (const job of [...jobs, ...refused.map((item) => item.job)]) {
      this.jobs.set(job.key, job);
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
        arch: job.arch,
      });
      this.emitState(job, { state: 'pending' });
    }
    try {
      for (const { job, message } of refused) {
        await this.rememberFailure(job);
        await this.finish(job, { state: 'fatal', info: [message, 'resolve'] });
      }
      const waiting = await this.resolve(jobs, settings, prepared);
      await this.loop(jobs, waiting, settings);
    } finally {
      for (const job of jobs) this.jobs.delete(job.key);
      for (const { job } of refused) this.jobs.delete(job.key);
    }
  }

  /**
   * What a session keeps of a package's record until its builds are made: not its PKGBUILD, source
   * or (with one architecture) `.SRCINFO`, which for a session of thousands are tens of MB.
   */
  private sessionRecord(record: PackageRecord): SessionRecord {
    const { base, builtState, failedState, clean, prepare, flags } = record;
    return {
      base,
      builtState,
      failedState,
      clean,
      prepare,
      flags,
      srcinfo: this.arches.length > 1 ? record.srcinfo : null,
    };
  }

  /**
   * The architectures a package is built for, from its `.SRCINFO` (docs/engines.md#architectures):
   * with one architecture served, that one (makepkg decides, as in the original); `any` once, on the
   * primary, into every repository; else each served architecture the `.SRCINFO` lists.
   *
   * @throws UnsupportedArchitectureError when it lists none of the served ones (and has no `ignorearch`)
   */
  private targetsOf(srcinfo: Srcinfo, record: Pick<PackageRecord, 'base' | 'flags'>): Target[] {
    if (this.arches.length === 1) return [{ arch: this.arch, publishTo: [this.arch] }];
    const listed = srcinfo.base.arch;
    if (listed.includes('any')) return [{ arch: this.arch, publishTo: this.arches }];
    const served = this.arches.filter((arch) => listed.includes(arch));
    if (served.length > 0) return served.map((arch) => ({ arch, publishTo: [arch] }));
    if (record.flags.includes('ignorearch')) return [{ arch: this.arch, publishTo: [this.arch] }];
    throw new UnsupportedArchitectureError(
      `package ${record.base} is built for ${listed.join(', ') || 'no architecture'}, but this server builds for ${this.arches.join(', ')}`,
    );
  }

  /**
   * The architectures of an up-to-date package (several served) whose newest build is not a success,
   * or that have none: from its published `.SRCINFO`.
   */
  private async outdatedTargets(record: SessionRecord): Promise<Target[]> {
    if (!record.srcinfo) return [];
    let targets: Target[];
    try {
      targets = this.targetsOf(parseSrcinfo(record.srcinfo), record);
    } catch {
      return [];
    }
    const newest = new Map<string, BuildRecord>();
    // the newest builds of every architecture are among the last few (one per architecture a session)
    for (const build of await this.store.listBuilds(record.base, 4 * this.arches.length)) {
      const arch = build.arch ?? this.arch;
      if (!newest.has(arch)) newest.set(arch, build);
    }
    return targets.filter((target) => newest.get(target.arch)?.state.state !== 'success');
  }

  /**
   * The keys of the in-session builds each job waits for; cancels jobs that cannot be built. With
   * several architectures, each is resolved on its own: a build waits for the builds of its
   * dependencies for its architecture, or for their `any` build.
   */
  private async resolve(
    jobs: Job[],
    settings: RunSettings,
    prepared: Map<string, SessionPackage>,
  ): Promise<Map<string, Set<string>>> {
    const waiting = new Map(jobs.map((job) => [job.key, new Set<string>()]));
    if (!(settings.resolve && this.resolveBuildSequence && jobs.length > 1)) return waiting;
    const cancelled: { job: Job; message: string }[] = [];
    const pause = createPause();
    try {
      // only what the resolver needs of each .SRCINFO is kept while the session resolves: thousands
      // of parsed .SRCINFO files are tens of MB (a small session keeps them for its publishes);
      // most were read by the session already (`prepared`)
      const large = jobs.length > SESSION_UPDATES;
      const packages = new Map<Job, SessionPackage>();
      for (const job of jobs) {
        // thousands of .SRCINFO files take a while to parse: requests are answered in between
        await pause();
        let pkg = prepared.get(job.key);
        if (!pkg) {
          const text = await job.source.srcinfo(this.sourceDir(job.base));
          const srcinfo = large ? parseSrcinfo(text) : parseJobSrcinfo(job, text);
          pkg = sessionPackageOf(job.base, srcinfo, job.publishTo);
        }
        packages.set(job, pkg);
      }
      prepared.clear();
      const inSession = new Set(jobs.map((job) => job.base));
      const repository: Provider[] = [];
      const added = new Set<string>();
      for await (const page of packagePages(this.store)) {
        for (const pkg of page) {
          await pause();
          added.add(pkg.base);
          if (!inSession.has(pkg.base) && pkg.srcinfo)
            repository.push(...providersOf(parseSrcinfo(pkg.srcinfo)));
        }
      }
      const sync = await this.syncProviders();
      for (const arch of this.arches) {
        // what this architecture's repository receives in the session; only its own builds are resolved here
        const inArch = jobs.filter((job) => job.publishTo.includes(arch));
        if (!inArch.some((job) => job.arch === arch)) continue;
        const byBase = new Map(inArch.map((job) => [job.base, job]));
        const resolutions = await resolveSession(
          inArch.map((job) => packages.get(job)!),
          { arch, sync, repository, added },
        );
        for (const resolution of resolutions) {
          await pause();
          const job = byBase.get(resolution.base)!;
          if (job.arch !== arch) continue;
          if (resolution.cancelled) {
            cancelled.push({ job, message: resolution.message });
            continue;
          }
          const keys = new Set<string>();
          for (const base of resolution.dependsOn) keys.add(byBase.get(base)!.key);
          waiting.set(job.key, keys);
        }
      }
    } catch (error) {
      for (const job of jobs) {
        await this.finish(job, { state: 'fatal', info: [formatErrorChain(error), 'resolve'] });
        waiting.delete(job.key);
      }
      return waiting;
    }
    for (const { job, message } of cancelled) {
      await this.finish(job, { state: 'cancelled', info: message });
      waiting.delete(job.key);
    }
    return waiting;
  }

  /**
   * Starts every job whose dependencies are done, until none is left
   * (docs/compatibility.md#dependency-order-and-concurrency). Jobs are named by their keys here.
   */
  private async loop(jobs: Job[], waiting: Map<string, Set<string>>, settings: RunSettings): Promise<void> {
    const byKey = new Map(jobs.map((job) => [job.key, job]));
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
    /** builds ready, running or cancelled whose end is not handled yet */
    let running = 0;
    /** builds that ran or were cancelled before they ran: not handed out again */
    const begun = new Set<string>();
    // A build whose dependencies are done waits here for a slot, in the order it became ready; one
    // feeder per session takes a slot, then starts the next. A build is made (its log writer, run
    // state, abort controller) only once it has a slot: a session of thousands does not hold one
    // of each for every build waiting (docs/benchmarks.md, issue 16), and sessions take the free
    // slots in turn rather than a small session waiting behind every build of a large one.
    const ready: Job[] = [];
    let head = 0;
    const stopFeeding = new AbortController();
    let feeding = false;
    const next = (): Job | undefined => {
      while (head < ready.length && begun.has(ready[head]!.key)) head++;
      return ready[head];
    };
    const feed = async (): Promise<void> => {
      if (feeding) return;
      feeding = true;
      try {
        while (next()) {
          let release: () => void;
          try {
            release = await this.slots.acquire(stopFeeding.signal);
          } catch {
            return;
          }
          const job = next();
          if (!job) {
            release();
            break;
          }
          head++;
          begun.add(job.key);
          void this.build(job, settings, release)
            .catch((error: unknown) => {
              this.logger.error('build failed unexpectedly', {
                build: job.key,
                error: formatErrorChain(error),
              });
              return false;
            })
            .then((success) => {
              ended.push({ base: job.key, success });
              wake?.();
            });
          // the queue drops what was taken from it now and then, not at every build
          if (head > 1024 && head * 2 > ready.length) {
            ready.splice(0, head);
            head = 0;
          }
        }
      } finally {
        feeding = false;
      }
    };
    const start = (base: string): void => {
      const job = byKey.get(base)!;
      running++;
      job.phase = 'queued';
      ready.push(job);
      void feed();
    };
    // a build cancelled while it waits for its dependencies or a slot ends now (its
    // `Job.dequeue`); one cancelled before this loop was set up has only its `abortReason`
    const dequeue = (job: Job): void => {
      if (begun.has(job.key) || !waiting.has(job.key)) return;
      begun.add(job.key);
      if (job.phase !== 'queued') running++;
      ended.push({ base: job.key, success: false, cancelled: true });
      wake?.();
    };
    const pause = createPause();
    for (const [base, deps] of waiting) {
      const job = byKey.get(base)!;
      job.waitingFor = deps;
      job.dequeue = dequeue;
      if (deps.size === 0) start(base);
      if (job.abortReason === 'cancelled') dequeue(job);
      await pause();
    }
    while (running > 0) {
      if (ended.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      const { base, success, cancelled } = ended.shift()!;
      running--;
      waiting.delete(base);
      if (cancelled) {
        const job = byKey.get(base)!;
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
          await this.finish(byKey.get(other)!, {
            state: 'cancelled',
            info: `failed to build dependency ${this.label(byKey.get(base)!)} successfully`,
          });
          waiting.delete(other);
        }
      }
      for (const other of ready) start(other);
    }
    stopFeeding.abort();
    for (const [base, deps] of waiting) {
      await this.finish(byKey.get(base)!, {
        state: 'fatal',
        info: [
          `package was orphaned in the build process, waiting for ${[...deps].map((key) => this.label(byKey.get(key)!)).join(', ')}`,
          'resolve',
        ],
      });
    }
  }

  // --- One build --------------------------------------------------------------------------------

  /**
   * Runs and publishes one build in the slot `release` gives back; resolves whether it succeeded.
   * Never rejects.
   */
  private async build(job: Job, settings: RunSettings, release: () => void): Promise<boolean> {
    let progress: BuildProgress = 'build';
    const controller = new AbortController();
    job.controller = controller;
    let output: string | undefined;
    /** the files the runner reported, which are most often all that is in `output` */
    let outputFiles: readonly string[] = [];
    let timer: NodeJS.Timeout | undefined;
    const logs = this.logWriter(job);
    try {
      // the timeout counts from the start of the run, not from the wait for a slot
      if (this.buildTimeoutMs !== undefined) {
        timer = setTimeout(() => {
          job.abortReason ??= 'timeout';
          controller.abort(new Error('timeout'));
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
              ? `[${this.repositoryName}]\nSigLevel = Never\nServer = ${this.ownRepositoryOf(job.arch)}\n`
              : '',
            prepare: record.prepare ?? '',
            makepkgFlags: record.flags.map((flag) => `--${flag} `).join(''),
          },
          clean,
          outputDir: output,
          timeoutMs: this.buildTimeoutMs,
          arch: job.arch,
        },
        { onLog: logs.write, signal: controller.signal },
      );
      outputFiles = result.packages;
      await logs.flush();
      const run: BuildChanges = {
        runSuccess: result.success,
        runStarted: result.started,
        runEnded: result.ended,
        stats: result.stats,
        // the one engine of a runner without several is named after the runner, as in `engines()`
        engine: result.engine ?? (this.runner.engines ? undefined : this.runner.name),
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
          await this.runner.remove?.(job.base, { arch: job.arch }).catch((error) =>
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
        await this.runner.remove?.(job.base, { arch: job.arch });
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
      release();
      // the session keeps its ended jobs until its last build ends: not their parsed .SRCINFO
      // (thousands of ended builds held one each, 3-4 KB apiece; docs/benchmarks.md, issue 16)
      delete job.srcinfo;
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
      (member) => `${member.pkgname}-${version}-${memberArch(member, job.arch)}.pkg.tar.`,
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
    // an `any` build goes into every architecture's repository
    for (const arch of job.publishTo) {
      await this.publishers.get(arch)!.publish(files as string[], { base: job.base });
    }
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

  /** Tells the bus a build's state changed. */
  private emitState(job: Job, state: BuildState): void {
    this.bus.emit('state', {
      base: job.base,
      started: job.started,
      state,
      reason: job.reason,
      arch: job.arch,
    });
  }

  /** Records a state change (with `changes` to the build in the same write) and emits it. */
  private async setState(job: Job, state: BuildState, changes?: BuildChanges): Promise<void> {
    await this.store.updateBuild(job.base, job.started, { ...changes, state });
    job.state = state;
    this.emitState(job, state);
  }

  /** Records the source state a build failed at, so scheduled runs skip it until it changes. */
  private async rememberFailure(job: Job): Promise<void> {
    await this.store.updatePackage(job.base, { failedState: job.source.state() });
  }

  private async finish(job: Job, state: BuildState, changes?: BuildChanges): Promise<void> {
    await this.store.updateBuild(job.base, job.started, { ...changes, state, ended: this.now() });
    job.state = state;
    this.jobs.delete(job.key);
    this.emitState(job, state);
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

  /**
   * `OWN_REPOSITORY_URL` for a build of `arch`: a URL ending in `/<ARCH>` names the primary's
   * repository, so another architecture's build gets its own (`/<arch>`); any other URL is kept
   * (pacman's `$arch` in it picks the build machine's).
   */
  private ownRepositoryOf(arch: string): string | undefined {
    const url = this.ownRepositoryUrl;
    if (url === undefined || arch === this.arch) return url;
    const trimmed = url.replace(/\/+$/, '');
    const suffix = `/${this.arch}`;
    return trimmed.endsWith(suffix) ? `${trimmed.slice(0, -suffix.length)}/${arch}` : url;
  }

  /** A build as messages name it: its base, with its architecture when several are served. */
  private label(job: Job): string {
    return this.arches.length > 1 ? `${job.base} (${job.arch})` : job.base;
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

/** What a session keeps of a package's record while it makes its builds ({@link BuildOrchestrator.sessionRecord}). */
type SessionRecord = Pick<
  PackageRecord,
  'base' | 'builtState' | 'failedState' | 'clean' | 'prepare' | 'flags' | 'srcinfo'
>;

/** Where a build of a package goes: the architecture it is built for and the repositories it is published into. */
interface Target {
  arch: string;
  publishTo: readonly string[];
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
