/**
 * The host, as a table of contents: the parts made from the configuration (any of them given by
 * the caller instead), composed by `createSerene`, the HTTP application with its plugins, and the
 * listener; `createSerene`'s lifecycle starts and stops it all in one order.
 *
 * To mount an HTTP plugin: add it to {@link httpPlugins} (behind its setting).
 */
import * as fs from 'node:fs/promises';
import type * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import {
  createFilesystemRepository,
  createKnexStore,
  createSerene,
  createSourceFactory,
  createSyncDatabases,
  InputError,
  type Logger,
  type Serene,
  type SereneParts,
  UnavailableError,
} from '@serene/core';
import { createDashboard } from '@serene/plugin-dashboard';
import { createDockerEnginePool, createDockerRunner, type DockerEngineSpec } from '@serene/plugin-docker';
import {
  checkAuthorizedSecretsFile,
  createHttpListener,
  createRepoHttp,
  type HttpPlugin,
  type RepoHttp,
} from '@serene/plugin-repo-http';
import { loadSigner } from '@serene/plugin-signing';
import { CLI_SOURCE_TYPE, cliPackagePart, cliSourceKind } from './cli-package.js';
import { type EngineSetting, type HostConfig, SERVER_VERSION } from './config.js';
import { createHostLogger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';

/** Parts a caller gives instead of the defaults the configuration makes (tests, a swapped runner). */
export type PartOverrides = Partial<SereneParts>;

/** Options of {@link startServer}. */
export interface StartServerOptions {
  config: HostConfig;
  /**
   * Parts to use instead of the defaults (`runner: createLocalRunner()`, a memory `logger`);
   * what is not given is made from the configuration.
   */
  parts?: PartOverrides;
  /** Listen (default) or only compose and start, for callers that mount `http.app` themselves. */
  listen?: boolean;
}

/** A running server and its parts. */
export interface SereneServer extends Omit<Serene, 'start' | 'stop' | 'add'> {
  readonly config: HostConfig;
  readonly http: RepoHttp;
  readonly metrics: Metrics | undefined;
  /** the listening server (undefined with `listen: false`) */
  readonly server: http.Server | undefined;
  /** `http://127.0.0.1:PORT` (the port actually bound, for `PORT=0`) */
  readonly url: string;
  /**
   * Shuts down in the reverse order of the start: stops taking requests, stops the schedules,
   * cancels queued and running builds (each recorded as cancelled with the reason), closes the
   * store. Idempotent.
   */
  close(): Promise<void>;
}

/** The engines of `ENGINES` with their TLS and SSH key files read (relative paths from `DATA_DIR`). */
async function readEngineFiles(
  engines: readonly EngineSetting[],
  dataDir: string,
): Promise<DockerEngineSpec[]> {
  const read = async (file: string, what: string): Promise<string> => {
    try {
      return await fs.readFile(path.resolve(dataDir, file), 'utf8');
    } catch (error) {
      throw new InputError(`ENGINES: cannot read ${what} ${file}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
  return await Promise.all(
    engines.map(async (engine) => {
      const tls = engine.tls
        ? {
            ...(engine.tls.ca ? { ca: await read(engine.tls.ca, `the CA of ${engine.name}`) } : {}),
            ...(engine.tls.cert
              ? { cert: await read(engine.tls.cert, `the certificate of ${engine.name}`) }
              : {}),
            ...(engine.tls.key ? { key: await read(engine.tls.key, `the key of ${engine.name}`) } : {}),
          }
        : undefined;
      return {
        name: engine.name,
        url: engine.url,
        arch: engine.arch,
        capacity: engine.capacity,
        labels: engine.labels,
        tls,
        sshPrivateKey: engine.sshKey ? await read(engine.sshKey, `the SSH key of ${engine.name}`) : undefined,
      };
    }),
  );
}

/** The default parts, made from the configuration; `given` ones are used as they are. */
export async function createParts(
  config: HostConfig,
  logger: Logger,
  given: PartOverrides = {},
): Promise<SereneParts> {
  const signer =
    'signer' in given
      ? given.signer
      : await loadSigner({
          keyFile: config.signKeyFile,
          // the original's /app/S.gpg-agent: a gpg-agent's socket in the data folder (docs/signing.md)
          agentSocket: path.join(config.dataDir, 'S.gpg-agent'),
          password: config.signKeyPassword,
          logger: logger.child({ part: 'signing' }),
        });
  const store =
    given.store ??
    createKnexStore({
      url: config.databaseUrl,
      logger: logger.child({ part: 'store' }),
      // a serene.db of serene-aur is imported with its log files and legacy sources
      sereneAur: { logsDir: config.logsDir, sourcesDir: config.sourcesDir },
    });
  const runnerOptions = {
    image: config.runnerImage,
    prefix: config.runnerPrefix,
    srcinfoName: config.runnerSrcinfoName,
    packager: config.packager,
    pruneImages: config.pruneImages,
    pullImage: config.pullImage,
    imageSchedule: config.scheduleImage,
    network: config.runnerNetwork,
    resources: { memoryBytes: config.runnerMemoryBytes, cpus: config.runnerCpus, pids: config.runnerPids },
  };
  const runner =
    given.runner ??
    (config.engines
      ? createDockerEnginePool({
          engines: await readEngineFiles(config.engines, config.dataDir),
          runner: runnerOptions,
          pins: config.enginePins ?? {},
          logger,
        })
      : createDockerRunner({ ...runnerOptions, url: config.dockerUrl, logger }));
  const publisher =
    given.publisher ??
    createFilesystemRepository({
      dir: config.repositoryDir,
      name: config.name,
      signer,
      logger: logger.child({ part: 'repository' }),
    });
  // the repository of each other architecture an engine declares (docs/engines.md#architectures)
  const publishers =
    given.publishers ??
    Object.fromEntries(
      config.arches
        .filter((arch) => arch !== config.arch)
        .map((arch) => [
          arch,
          createFilesystemRepository({
            dir: config.repositoryDirs[arch]!,
            name: config.name,
            signer,
            logger: logger.child({ part: 'repository', arch }),
          }),
        ]),
    );
  const sources =
    given.sources ??
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
      // the serene-cli package's source (BUILD_CLI)
      innerKinds: { [CLI_SOURCE_TYPE]: cliSourceKind() },
      logger: logger.child({ part: 'sources' }),
    });
  const syncDatabases =
    given.syncDatabases ??
    createSyncDatabases({
      mirror: config.syncMirror,
      arch: config.arch,
      logger: logger.child({ part: 'sync' }),
    });
  return { logger, signer, store, runner, publisher, publishers, sources, syncDatabases };
}

/**
 * The plugins of the HTTP application, in order; each is switched by its setting. Mount a new one
 * here: it gets the composed serene and the configuration, and starts and stops with the server.
 */
export function httpPlugins(serene: Serene, config: HostConfig): HttpPlugin[] {
  return [
    config.metrics
      ? createMetrics({
          bus: serene.bus,
          orchestrator: serene.orchestrator,
          store: serene.store,
          arch: config.arch,
          arches: config.arches,
          engines: () => serene.service.engines(),
        })
      : undefined,
    config.dashboard ? createDashboard() : undefined,
  ].filter((plugin) => plugin !== undefined);
}

/**
 * Composes and starts serene: store and migrations, signer, repository (an empty, signed database
 * when none exists; files a crash left removed), runner (image pulled, leftover containers
 * removed), unfinished builds marked, retention, schedules, `serene-cli` when `BUILD_CLI`, then
 * the HTTP server.
 */
/**
 * Throws an `UnavailableError` naming `PORT` when `port` on `host` cannot be listened on now
 * (another process has it, or the address is not this machine's).
 */
async function checkPortFree(host: string, port: number): Promise<void> {
  const probe = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ port, host, exclusive: true }, resolve);
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? 'another process listens there (stop it, or set PORT to another port)'
        : code === 'EACCES'
          ? 'this user may not listen on it (ports below 1024 need root; set PORT)'
          : code === 'EADDRNOTAVAIL'
            ? 'the address is not one of this machine (set HOST)'
            : String(code ?? error);
    throw new UnavailableError(`cannot listen on ${host}:${port}: ${why}`, { cause: error });
  }
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

export async function startServer(options: StartServerOptions): Promise<SereneServer> {
  const { config } = options;
  // read by V8 at each full collection, so it applies from now on (docs/configuration.md)
  if (config.heapGrowthPercent > 0) setFlagsFromString(`--heap-growing-percent=${config.heapGrowthPercent}`);
  const logger =
    options.parts?.logger ?? createHostLogger({ level: config.logLevel, format: config.logFormat });
  const started = new Date();
  await fs.mkdir(config.dataDir, { recursive: true });
  // a directory or an unreadable file stops the start here, rather than every request answering 500
  await checkAuthorizedSecretsFile(config.authorizedSecretsFile);
  // a port another process holds stops the start here, before the store is opened and the runner's
  // image is pulled (the listener starts last, once everything it serves is up)
  if (options.listen !== false && config.port !== 0) await checkPortFree(config.host, config.port);

  const serene = createSerene(await createParts(config, logger, options.parts), config);
  const plugins = httpPlugins(serene, config);
  const repoHttp = createRepoHttp({
    service: serene.service,
    bus: serene.bus,
    publisher: serene.publisher,
    repositoryDir: config.repositoryDir,
    arch: config.arch,
    repositories: [...serene.publishers]
      .filter(([arch]) => arch !== config.arch)
      .map(([arch, publisher]) => ({ arch, dir: config.repositoryDirs[arch]!, publisher })),
    name: config.name,
    version: SERVER_VERSION,
    started,
    allowReads: config.allowReads,
    authorizedSecretsFile: config.authorizedSecretsFile,
    webhookSecret: config.webhookSecret,
    signer: serene.signer,
    logger: logger.child({ part: 'http' }),
    plugins,
    healthCheck: async () => {
      await serene.store.getPackage('');
    },
  });
  if (config.buildCli) serene.add(cliPackagePart({ serene, edge: config.edgeCli }));
  const listener =
    options.listen === false
      ? undefined
      : createHttpListener({ http: repoHttp, port: config.port, host: config.host });
  serene.add(listener ?? repoHttp);

  await serene.start();
  const url = listener ? listener.url() : `http://127.0.0.1:${config.port}`;
  logger.info('serene is serving', {
    url: `http://${config.host}:${listener ? listener.port() : config.port}`,
    repository: `/${config.arch}/${config.name}.db`,
    ...(config.arches.length > 1 ? { architectures: config.arches } : {}),
    signed: serene.signer !== undefined,
    runner: serene.runner.name,
    store: serene.store.name,
  });

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      logger.info('shutting down');
      await serene.stop();
      logger.info('stopped');
      (logger as { flush?: () => void }).flush?.();
    })();
    return closing;
  };

  const { start: _start, stop: _stop, add: _add, ...composed } = serene;
  return {
    ...composed,
    config,
    http: repoHttp,
    metrics: plugins.find((plugin): plugin is Metrics => plugin.name === 'metrics'),
    server: listener?.server,
    url,
    close,
  };
}
