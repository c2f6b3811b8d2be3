/**
 * The composition of serene: the contracts bound to their default plugins in a tsyringe container
 * (any of them replaced by registering another first), the start-up sequence of the original
 * (reference 9), the HTTP server, and a shutdown that loses nothing.
 */
import 'reflect-metadata';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import {
  type BuildEvents,
  BuildOrchestrator,
  type CronJob,
  createCronJob,
  createFilesystemRepository,
  createKnexStore,
  createPackageScheduler,
  createSourceFactory,
  createSyncDatabases,
  EventBus,
  formatErrorChain,
  type Logger,
  type PackageScheduler,
  type PackageScheduling,
  PackageService,
  type Publisher,
  parseCron,
  type Runner,
  type Signer,
  type SourceFactory,
  type Store,
  scheduledPackageOf,
  tokens,
} from '@serene/core';
import { createDockerRunner, type DockerRunner } from '@serene/plugin-docker';
import { createRepoHttp, type RepoHttp } from '@serene/plugin-repo-http';
import { loadSigner } from '@serene/plugin-signing';
import { type DependencyContainer, container as rootContainer } from 'tsyringe';
import { CLI_SOURCE_TYPE, cliSourceKind, ensureCliPackageLogged } from './cli-package.js';
import { type HostConfig, SERVER_VERSION } from './config.js';
import { createHostLogger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';

/** How often the sync databases (core, extra, multilib) are fetched again, at most. */
const SYNC_REFRESH_MS = 10 * 60_000;

/** Options of {@link startServer}. */
export interface StartServerOptions {
  config: HostConfig;
  /**
   * Where the contracts are resolved (`tokens` of `@serene/core`). Register your own runner, signer,
   * store, publisher, source factory or logger here before starting; what is not registered gets
   * its default plugin. @default a child of tsyringe's root container
   */
  container?: DependencyContainer;
  /** Listen (default) or only compose, for callers that mount `app` themselves. */
  listen?: boolean;
}

/** A running server and its parts. */
export interface SereneServer {
  readonly config: HostConfig;
  readonly container: DependencyContainer;
  readonly logger: Logger;
  readonly store: Store;
  readonly publisher: Publisher;
  readonly runner: Runner;
  readonly signer: Signer | undefined;
  readonly sources: SourceFactory;
  readonly orchestrator: BuildOrchestrator;
  readonly service: PackageService;
  readonly scheduler: PackageScheduler;
  readonly http: RepoHttp;
  readonly metrics: Metrics | undefined;
  /** the listening server (undefined with `listen: false`) */
  readonly server: http.Server | undefined;
  /** `http://127.0.0.1:PORT` (the port actually bound, for `PORT=0`) */
  readonly url: string;
  /**
   * Shuts down: stops taking requests, stops the schedules, cancels queued and running builds (each
   * recorded as cancelled with the reason), closes the store. Idempotent.
   */
  close(): Promise<void>;
}

/** Is `value` a {@link DockerRunner} (so that the host schedules its image pulls and clean-up)? */
function isDockerRunner(value: Runner): value is DockerRunner {
  return typeof (value as Partial<DockerRunner>).pullImage === 'function';
}

/** Resolves `token` when registered (here or in a parent), else registers and returns the default. */
async function bind<T>(
  container: DependencyContainer,
  token: symbol,
  make: () => T | Promise<T>,
): Promise<T> {
  if (container.isRegistered(token, true)) return container.resolve<T>(token);
  const value = await make();
  container.register<T>(token, { useValue: value });
  return value;
}

/** Writes the log of a finished build as the original's `logs/<base>/<started>.log` file. */
async function writeLogFile(store: Store, logsDir: string, base: string, started: Date): Promise<void> {
  const text = await store.readLog(base, started);
  if (text === undefined) return;
  const dir = path.join(logsDir, base);
  await fs.mkdir(dir, { recursive: true });
  const name = `${started.toISOString().slice(0, 19)}.log`;
  await fs.writeFile(path.join(dir, `.${name}.tmp`), text);
  await fs.rename(path.join(dir, `.${name}.tmp`), path.join(dir, name));
}

/**
 * `BUILD_RETENTION`: removes builds (with their logs) started before `before`, except each package's
 * newest one and unfinished ones, and the log files of the removed builds. Returns how many builds.
 */
export async function pruneBuilds(store: Store, logsDir: string, before: Date): Promise<number> {
  const removed = await store.pruneBuilds(before);
  const bases = await fs.readdir(logsDir).catch(() => [] as string[]);
  for (const base of bases) {
    const dir = path.join(logsDir, base);
    const files = (await fs.readdir(dir).catch(() => [] as string[]))
      .filter((file) => file.endsWith('.log'))
      .sort();
    // names are the start times (UTC, ISO order): the newest file stays, as the newest build does
    for (const file of files.slice(0, -1)) {
      const started = Date.parse(`${file.slice(0, -'.log'.length)}Z`);
      if (started < before.getTime()) await fs.rm(path.join(dir, file), { force: true });
    }
  }
  return removed;
}

/**
 * Composes and starts serene (reference 9): store and migrations, repository (an empty, signed
 * database when none exists), orphan files removed, runner image pulled and leftover containers
 * removed, unfinished builds marked, schedules started, `serene-cli` added when `BUILD_CLI`, then
 * the HTTP server.
 */
export async function startServer(options: StartServerOptions): Promise<SereneServer> {
  const config = options.config;
  const container = (options.container ?? rootContainer).createChildContainer();
  const logger = await bind<Logger>(container, tokens.logger, () =>
    createHostLogger({ level: config.logLevel, format: config.logFormat }),
  );
  const started = new Date();
  await fs.mkdir(config.dataDir, { recursive: true });

  // --- the parts ---------------------------------------------------------------------------------
  let signer: Signer | undefined;
  /** the signer made here, disposed of on close (the gpg-agent signer's private GnuPG home) */
  let ownSigner: Signer | undefined;
  if (container.isRegistered(tokens.signer, true)) signer = container.resolve<Signer>(tokens.signer);
  else {
    signer = await loadSigner({
      keyFile: config.signKeyFile,
      // the original's /app/S.gpg-agent: a gpg-agent's socket in the data folder (docs/signing.md)
      agentSocket: path.join(config.dataDir, 'S.gpg-agent'),
      password: config.signKeyPassword,
      logger: logger.child({ part: 'signing' }),
    });
    if (signer) container.register<Signer>(tokens.signer, { useValue: signer });
    ownSigner = signer;
  }
  const store = await bind<Store>(container, tokens.store, () =>
    createKnexStore({ url: config.databaseUrl, logger: logger.child({ part: 'store' }) }),
  );
  const runner = await bind<Runner>(container, tokens.runner, () =>
    createDockerRunner({
      url: config.dockerUrl,
      image: config.runnerImage,
      prefix: config.runnerPrefix,
      srcinfoName: config.runnerSrcinfoName,
      packager: config.packager,
      pruneImages: config.pruneImages,
      network: config.runnerNetwork,
      resources: { memoryBytes: config.runnerMemoryBytes, cpus: config.runnerCpus, pids: config.runnerPids },
      logger,
    }),
  );
  const publisher = await bind<Publisher>(container, tokens.publisher, () =>
    createFilesystemRepository({
      dir: config.repositoryDir,
      name: config.name,
      signer,
      logger: logger.child({ part: 'repository' }),
    }),
  );
  const sources = await bind<SourceFactory>(container, tokens.sources, () =>
    createSourceFactory({
      generateSrcinfo: (dir, opts) => runner.printSrcinfo(dir, opts),
      arch: config.arch,
      aur: {
        baseUrl: config.aurUrl,
        timeoutMs: config.aurRequestTimeoutMs,
        retries: config.aurRequestRetries,
      },
      githubMirror: config.aurGithubMirror,
      resolveAdding: config.aurResolveAdding,
      innerKinds: { [CLI_SOURCE_TYPE]: cliSourceKind() },
      logger: logger.child({ part: 'sources' }),
    }),
  );

  const sync = createSyncDatabases({
    mirror: config.syncMirror,
    arch: config.arch,
    logger: logger.child({ part: 'sync' }),
  });
  let syncedAt = Number.NEGATIVE_INFINITY;
  const syncProviders = async () => {
    if (Date.now() - syncedAt > SYNC_REFRESH_MS) {
      syncedAt = Date.now();
      await sync
        .refresh()
        .catch((error) =>
          logger.warn('could not refresh the sync databases', { error: formatErrorChain(error) }),
        );
    }
    return sync.providers();
  };

  const bus = new EventBus<BuildEvents>((error) =>
    logger.error('a build event handler failed', { error: formatErrorChain(error) }),
  );
  const orchestrator = new BuildOrchestrator({
    store,
    sources,
    runner,
    publisher,
    bus,
    logger: logger.child({ part: 'builds' }),
    arch: config.arch,
    repositoryName: config.name,
    sourcesDir: config.sourcesDir,
    workDir: config.workDir,
    ownRepositoryUrl: config.ownRepositoryUrl,
    concurrentBuilds: config.concurrentBuilds,
    buildTimeoutMs: config.buildTimeoutMs,
    resolveBuildSequence: config.resolveBuildSequence,
    resolveIgnoreFailed: config.resolveIgnoreFailed,
    forceClean: config.forceClean,
    syncProviders,
  });
  const scheduler = createPackageScheduler({
    listPackages: async () => (await store.listPackages()).map(scheduledPackageOf),
    run: (bases) =>
      orchestrator.start(bases, { reason: 'schedule', resolve: true, clean: false, force: false }),
    defaultSchedule: config.schedule,
    develSchedule: config.scheduleDevel,
    disabled: config.schedulingDisabled,
    logger: logger.child({ part: 'schedule' }),
  });
  const scheduling: PackageScheduling = {
    reschedule: (base, pkg) => scheduler.reschedule(base, pkg),
    effectiveSchedule: (pkg) => scheduler.effectiveSchedule(pkg),
    validate: (expression) => {
      parseCron(expression);
    },
  };
  const service = new PackageService({
    store,
    sources,
    orchestrator,
    publisher,
    runner,
    scheduling,
    sourcesDir: config.sourcesDir,
    arch: config.arch,
    schedulingDefault: config.schedulingDefault,
    syncProviders,
    logger: logger.child({ part: 'packages' }),
  });
  const metrics = config.metrics ? createMetrics({ bus, orchestrator, store, arch: config.arch }) : undefined;
  const repoHttp = createRepoHttp({
    service,
    bus,
    publisher,
    repositoryDir: config.repositoryDir,
    arch: config.arch,
    name: config.name,
    version: SERVER_VERSION,
    started,
    allowReads: config.allowReads,
    authorizedSecretsFile: config.authorizedSecretsFile,
    webhookSecret: config.webhookSecret,
    signer,
    logger: logger.child({ part: 'http' }),
    healthCheck: async () => {
      await store.getPackage('');
    },
  });
  if (metrics) repoHttp.app.middleware.unshift(metrics.middleware);

  // the original's log files, written once a build has ended
  const pendingLogs = new Set<Promise<void>>();
  const unsubscribeLogs = bus.on('state', (event) => {
    if (!['success', 'failure', 'fatal', 'cancelled'].includes(event.state.state)) return;
    const write = writeLogFile(store, config.logsDir, event.base, event.started)
      .catch((error) =>
        logger.warn('could not write a build log file', { base: event.base, error: formatErrorChain(error) }),
      )
      .finally(() => pendingLogs.delete(write));
    pendingLogs.add(write);
  });

  // --- the start-up sequence (reference 9) --------------------------------------------------------
  const cleanups: (() => Promise<void> | void)[] = [];
  let imageJob: CronJob | undefined;
  let retentionJob: CronJob | undefined;
  let server: http.Server | undefined;
  try {
    if (ownSigner?.dispose) cleanups.push(() => ownSigner!.dispose!());
    await store.open();
    cleanups.push(() => store.close());
    await publisher.init();
    const withJanitor = publisher as Publisher & { removeOrphans?: () => Promise<string[]> };
    await withJanitor.removeOrphans?.();
    if (isDockerRunner(runner)) {
      if (config.pullImage) await runner.pullImage();
      await runner.removeLeftovers();
      if (config.pullImage) {
        imageJob = createCronJob(config.scheduleImage, () => runner.pullImage(), {
          name: 'runner image pull',
          logger,
        });
      }
    }
    const marked = await orchestrator.recover();
    if (marked > 0) logger.warn('marked builds a previous run left unfinished', { builds: marked });
    if (config.buildRetentionMs !== undefined) {
      const retention = config.buildRetentionMs;
      const prune = async () => {
        const removed = await pruneBuilds(store, config.logsDir, new Date(Date.now() - retention));
        if (removed > 0) logger.info('removed old builds (BUILD_RETENTION)', { builds: removed });
      };
      await prune();
      retentionJob = createCronJob('0 30 3 * * *', prune, { name: 'build retention', logger });
      retentionJob.start();
    }
    // serene-cli is added before the scheduler starts, so that it is scheduled with the others
    if (config.buildCli) {
      await ensureCliPackageLogged({
        store,
        sources,
        orchestrator,
        sourcesDir: config.sourcesDir,
        schedulingDefault: config.schedulingDefault,
        edge: config.edgeCli,
        logger,
      });
    }
    await scheduler.start();
    imageJob?.start();

    if (options.listen !== false) {
      const callback = repoHttp.app.callback();
      server = http.createServer(callback);
      server.keepAliveTimeout = 65_000;
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(config.port, config.host, () => {
          server!.off('error', reject);
          resolve();
        });
      });
    }
  } catch (error) {
    imageJob?.stop();
    retentionJob?.stop();
    scheduler.stop();
    await orchestrator.stop().catch(() => undefined);
    await repoHttp.close().catch(() => undefined);
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
    throw error;
  }
  const port = server ? (server.address() as AddressInfo).port : config.port;
  const url = `http://127.0.0.1:${port}`;
  logger.info('serene is serving', {
    url: `http://${config.host}:${port}`,
    repository: `/${config.arch}/${config.name}.db`,
    signed: signer !== undefined,
    runner: runner.name,
    store: store.name,
  });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      logger.info('shutting down');
      // no new requests or connections; live log streams end
      const stopped = server ? new Promise<void>((resolve) => server!.close(() => resolve())) : undefined;
      server?.closeIdleConnections();
      await repoHttp.close();
      imageJob?.stop();
      retentionJob?.stop();
      scheduler.stop();
      // queued and running builds end as cancelled, with the reason, and their runners stop
      await orchestrator.stop();
      await Promise.all([...pendingLogs]);
      unsubscribeLogs();
      metrics?.close();
      // requests still running get a moment, then their connections are closed
      if (stopped) {
        const grace = setTimeout(() => server!.closeAllConnections(), 5000);
        await stopped;
        clearTimeout(grace);
      }
      await store.close();
      await ownSigner?.dispose?.().catch(() => undefined);
      logger.info('stopped');
      (logger as { flush?: () => void }).flush?.();
    })();
    return closing;
  };

  return {
    config,
    container,
    logger,
    store,
    publisher,
    runner,
    signer,
    sources,
    orchestrator,
    service,
    scheduler,
    http: repoHttp,
    metrics,
    server,
    url,
    close,
  };
}
