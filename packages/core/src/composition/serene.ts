/**
 * The composition of serene: the parts that implement the contracts in, the orchestrator, the
 * package service, the scheduler, the build log files and the retention built from them, and one
 * ordered list that starts and stops it all. The host, the HTTP tests, the examples and the
 * benchmarks compose through {@link createSerene}; there is no second composition.
 */

import type { ReviewMode } from '../contracts/gate.js';
import type { Publisher } from '../contracts/publisher.js';
import type { Runner } from '../contracts/runner.js';
import type { Signer } from '../contracts/signer.js';
import type { SourceFactory } from '../contracts/source.js';
import { packagePages, type Store } from '../contracts/store.js';
import { formatErrorChain, InputError } from '../errors.js';
import { UpdateGate } from '../gate/gate.js';
import { OPEN_GATE_POLICY } from '../gate/policy.js';
import { createNoopLogger, type Logger } from '../logger.js';
import { type BuildEvents, EventBus } from '../orchestration/events.js';
import { BuildOrchestrator } from '../orchestration/orchestrator.js';
import { type SyncDatabases, syncProvidersOf } from '../orchestration/sync-databases.js';
import { type PackageScheduling, PackageService } from '../packages/service.js';
import { parseCron } from '../schedule/cron.js';
import {
  type CronJob,
  createCronJob,
  createPackageScheduler,
  type PackageScheduler,
  type ScheduledPackage,
  scheduledPackageOf,
} from '../schedule/scheduler.js';
import { createGit, type Git } from '../sources/git.js';
import { createBuildLogFiles, pruneBuilds } from './build-logs.js';
import { createLifecycle, type Lifecycle, type Part } from './lifecycle.js';

/** How often the sync databases (core, extra, multilib) are fetched again, at most. */
export const SYNC_REFRESH_MS = 10 * 60_000;

/** What a package's invalid custom schedule is refused with, the original's words. */
export const INVALID_SCHEDULE_MESSAGE = 'cannot parse cron expression (you probably forgot the seconds)';

/** When `BUILD_RETENTION` removes old builds: daily at 03:30 UTC. */
export const RETENTION_SCHEDULE = '0 30 3 * * *';

/** The implementations of the contracts serene is composed of. */
export interface SereneParts {
  store: Store;
  runner: Runner;
  /** the repository of the primary architecture (`ARCH`) */
  publisher: Publisher;
  /** the repository of each other architecture of `settings.arches` (docs/engines.md#architectures) */
  publishers?: Readonly<Record<string, Publisher>> | undefined;
  sources: SourceFactory;
  /** packages are published unsigned without one */
  signer?: Signer | undefined;
  /** the official sync databases, to resolve dependencies @default none: every dependency is ours or the AUR's */
  syncDatabases?: SyncDatabases | undefined;
  /** @default a logger that drops everything */
  logger?: Logger | undefined;
  /** the git the update gate reads checkouts with @default the source factory's, else a new one */
  git?: Git | undefined;
}

/**
 * What the composition itself reads of the configuration. The host's configuration has these
 * fields under the same names, so it is passed as is; what is left out takes the default of the
 * part that uses it.
 */
export interface SereneSettings {
  /** `ARCH`: the primary architecture */
  arch: string;
  /**
   * every architecture built and published for, `arch` among them (docs/engines.md#architectures)
   * @default [arch]
   */
  arches?: readonly string[] | undefined;
  /** `NAME`: the repository name */
  name: string;
  /** the folder of `sources/<pkgbase>` */
  sourcesDir: string;
  /** the folder of the outputs of running builds */
  workDir: string;
  /** the folder of the build log files; none are written without it */
  logsDir?: string | undefined;
  /** `OWN_REPOSITORY_URL` */
  ownRepositoryUrl?: string | undefined;
  /** `CONCURRENT_BUILDS` */
  concurrentBuilds?: number | undefined;
  /** `BUILD_TIMEOUT` in ms */
  buildTimeoutMs?: number | undefined;
  /** `SCHEDULE_SKIP_FAILED`: scheduled runs skip a package that failed until its source changes */
  skipFailedOnSchedule?: boolean | undefined;
  /** `RESOLVE_BUILD_SEQUENCE` */
  resolveBuildSequence?: boolean | undefined;
  /** `RESOLVE_IGNORE_FAILED` */
  resolveIgnoreFailed?: boolean | undefined;
  /** `FORCE_CLEAN` */
  forceClean?: boolean | undefined;
  /** `SCHEDULE` */
  schedule?: string | undefined;
  /** `SCHEDULE_DEVEL` */
  scheduleDevel?: string | undefined;
  /** `SCHEDULING_DISABLED` */
  schedulingDisabled?: boolean | undefined;
  /** `SCHEDULING_DEFAULT` */
  schedulingDefault?: boolean | undefined;
  /** `BUILD_RETENTION` in ms (needs `logsDir` for the files) @default undefined: builds are kept forever */
  buildRetentionMs?: number | undefined;
  /** `GATE_COOL_OFF` in ms: updates wait until the package was unchanged this long @default 0 (off) */
  gateCoolOffMs?: number | undefined;
  /** `GATE_TRUST`: maintainer, co-maintainer and packager changes hold updates @default false */
  gateTrust?: boolean | undefined;
  /** `GATE_REVIEW`: `diff` holds anything beyond a version bump, `all` every update @default 'off' */
  gateReview?: ReviewMode | undefined;
  /** `GATE_BLOCKED_ACCOUNTS`: AUR accounts and packagers whose updates are held @default none */
  gateBlockedAccounts?: readonly string[] | undefined;
  /** `GATE_BLOCKED_PACKAGES`: packages refused at add and whose updates are held @default none */
  gateBlockedPackages?: readonly string[] | undefined;
}

/** serene composed: its parts, what was built from them, and the lifecycle of it all. */
export interface Serene {
  readonly settings: Readonly<SereneSettings>;
  readonly logger: Logger;
  readonly store: Store;
  readonly runner: Runner;
  /** the repository of the primary architecture */
  readonly publisher: Publisher;
  /** the repository of every served architecture, the primary's first */
  readonly publishers: ReadonlyMap<string, Publisher>;
  readonly sources: SourceFactory;
  readonly signer: Signer | undefined;
  /** build state changes and log chunks */
  readonly bus: EventBus<BuildEvents>;
  readonly orchestrator: BuildOrchestrator;
  readonly service: PackageService;
  /** the update gate (docs/update-gate.md): holds nothing unless configured */
  readonly gate: UpdateGate;
  readonly scheduler: PackageScheduler;
  /**
   * Appends a part (an HTTP listener, a plugin of the host) to the lifecycle: it starts after
   * everything composed here and stops before it. Call before {@link Serene.start}.
   */
  add<T extends Part>(part: T): T;
  /** The ordered list itself, for the curious and the tests. */
  readonly lifecycle: Lifecycle;
  /**
   * Starts every part in order: store, signer, publisher, runner, build log files, orchestrator
   * (builds a previous run left unfinished are marked), retention, scheduler, then what was added.
   * On a failure the parts started so far stop again and the error is thrown.
   */
  start(): Promise<void>;
  /**
   * Stops in reverse order: what was added (the HTTP listener first), the schedules, the
   * orchestrator (queued and running builds end as cancelled), the log files still being written,
   * the runner, the publisher, the signer, the store. Idempotent.
   */
  stop(): Promise<void>;
}

/**
 * Composes serene from its parts and settings. Nothing starts until {@link Serene.start}.
 *
 * @throws InputError when a schedule in `settings` is not a valid cron expression.
 */
export function createSerene(parts: SereneParts, settings: SereneSettings): Serene {
  const logger = parts.logger ?? createNoopLogger();
  const { store, runner, publisher, sources, signer } = parts;
  const lifecycle = createLifecycle({ logger });
  const arches = [...new Set([settings.arch, ...(settings.arches ?? [])])];
  const publishers = new Map(
    arches.map((arch) => [arch, arch === settings.arch ? publisher : parts.publishers?.[arch]]),
  );
  const unpublished = arches.filter((arch) => !publishers.get(arch));
  if (unpublished.length > 0)
    throw new InputError(`no repository (publisher) for architecture ${unpublished.join(', ')}`);

  // the sync databases are fetched again at most every SYNC_REFRESH_MS, in the background; a
  // resolution waits only for the first fetch (started with the server), never for a mirror that is down
  const sync = parts.syncDatabases;
  const syncProviders = sync ? syncProvidersOf(sync, { refreshMs: SYNC_REFRESH_MS, logger }) : undefined;

  const bus = new EventBus<BuildEvents>((error) =>
    logger.error('a build event handler failed', { error: formatErrorChain(error) }),
  );
  const git =
    parts.git ??
    (sources as { environment?: { git?: Git } }).environment?.git ??
    createGit({ logger: logger.child({ part: 'git' }) });
  const gate = new UpdateGate({
    store,
    git,
    defaults: {
      coolOffMs: settings.gateCoolOffMs ?? OPEN_GATE_POLICY.coolOffMs,
      trust: settings.gateTrust ?? OPEN_GATE_POLICY.trust,
      review: settings.gateReview ?? OPEN_GATE_POLICY.review,
    },
    blockedAccounts: settings.gateBlockedAccounts ?? [],
    blockedPackages: settings.gateBlockedPackages ?? [],
    bus,
    logger: logger.child({ part: 'gate' }),
  });
  const orchestrator = new BuildOrchestrator({
    store,
    sources,
    runner,
    publisher,
    publishers: parts.publishers,
    bus,
    logger: logger.child({ part: 'builds' }),
    arch: settings.arch,
    arches,
    repositoryName: settings.name,
    sourcesDir: settings.sourcesDir,
    workDir: settings.workDir,
    ownRepositoryUrl: settings.ownRepositoryUrl,
    concurrentBuilds: settings.concurrentBuilds,
    buildTimeoutMs: settings.buildTimeoutMs,
    skipFailedOnSchedule: settings.skipFailedOnSchedule,
    resolveBuildSequence: settings.resolveBuildSequence,
    resolveIgnoreFailed: settings.resolveIgnoreFailed,
    forceClean: settings.forceClean,
    syncProviders,
    gate,
  });
  const scheduler = createPackageScheduler({
    // a page at a time, keeping only the schedule settings of each package (not its PKGBUILD,
    // .SRCINFO and source, which for thousands of packages are most of the table)
    listPackages: async () => {
      const scheduled: ScheduledPackage[] = [];
      for await (const page of packagePages(store)) scheduled.push(...page.map(scheduledPackageOf));
      return scheduled;
    },
    run: (bases) =>
      orchestrator.start(bases, { reason: 'schedule', resolve: true, clean: false, force: false }),
    defaultSchedule: settings.schedule,
    develSchedule: settings.scheduleDevel,
    disabled: settings.schedulingDisabled,
    logger: logger.child({ part: 'schedule' }),
  });
  const scheduling: PackageScheduling = {
    reschedule: (base, pkg) => scheduler.reschedule(base, pkg),
    effectiveSchedule: (pkg) => scheduler.effectiveSchedule(pkg),
    // the original's answer to any schedule its parser refuses; ours says why in the cause
    validate: (expression) => {
      try {
        parseCron(expression);
      } catch (error) {
        throw new InputError(INVALID_SCHEDULE_MESSAGE, { cause: error });
      }
    },
  };
  const service = new PackageService({
    store,
    sources,
    orchestrator,
    publisher,
    publishers: parts.publishers,
    runner,
    scheduling,
    sourcesDir: settings.sourcesDir,
    logsDir: settings.logsDir,
    arch: settings.arch,
    schedulingDefault: settings.schedulingDefault,
    syncProviders,
    gate,
    concurrentBuilds: settings.concurrentBuilds,
    logger: logger.child({ part: 'packages' }),
  });

  // --- the ordered list: started top to bottom, stopped bottom to top ---------------------------
  lifecycle.add({ name: 'store', start: () => store.open(), stop: () => store.close() });
  if (signer) lifecycle.add({ name: 'signer', start: () => signer.init?.(), stop: () => signer.dispose?.() });
  for (const [arch, each] of publishers) {
    lifecycle.add({
      name: arch === settings.arch ? 'publisher' : `publisher ${arch}`,
      start: () => each!.init(),
      stop: () => each!.dispose?.(),
    });
  }
  lifecycle.add({ name: 'runner', start: () => runner.init?.(), stop: () => runner.dispose?.() });
  // before the orchestrator: it stops after it, so the logs of the builds the stop cancels are written
  if (settings.logsDir !== undefined) {
    lifecycle.add(
      createBuildLogFiles({ store, bus, logsDir: settings.logsDir, logger: logger.child({ part: 'logs' }) }),
    );
  }
  lifecycle.add({
    name: 'orchestrator',
    async start() {
      const marked = await orchestrator.recover();
      if (marked > 0) logger.warn('marked builds a previous run left unfinished', { builds: marked });
    },
    // queued and running builds end as cancelled, with the reason, and their runs stop
    stop: () => orchestrator.stop(),
  });
  if (settings.buildRetentionMs !== undefined) {
    lifecycle.add(createRetention(store, settings.logsDir, settings.buildRetentionMs, logger));
  }
  lifecycle.add({ name: 'scheduler', start: () => scheduler.start(), stop: () => scheduler.stop() });
  if (syncProviders) {
    // the first fetch begins with the server, not with the first add
    lifecycle.add({
      name: 'sync databases',
      start: () => {
        void syncProviders();
      },
    });
  }

  return {
    settings,
    logger,
    store,
    runner,
    publisher,
    publishers: publishers as Map<string, Publisher>,
    sources,
    signer,
    bus,
    orchestrator,
    service,
    gate,
    scheduler,
    lifecycle,
    add: (part) => lifecycle.add(part),
    start: () => lifecycle.start(),
    stop: () => lifecycle.stop(),
  };
}

/** `BUILD_RETENTION`: old builds removed at start and then daily. */
function createRetention(
  store: Store,
  logsDir: string | undefined,
  retentionMs: number,
  logger: Logger,
): Part {
  let job: CronJob | undefined;
  const prune = async () => {
    const before = new Date(Date.now() - retentionMs);
    const removed =
      logsDir === undefined ? await store.pruneBuilds(before) : await pruneBuilds(store, logsDir, before);
    if (removed > 0) logger.info('removed old builds (BUILD_RETENTION)', { builds: removed });
  };
  return {
    name: 'build retention',
    async start() {
      await prune();
      job = createCronJob(RETENTION_SCHEDULE, prune, { name: 'build retention', logger });
      job.start();
    },
    stop: () => job?.stop(),
  };
}
