import * as fs from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type CronJob,
  createCronJob,
  createKeyedLock,
  createNoopLogger,
  formatErrorChain,
  InputError,
  type Logger,
  PluginError,
  type Runner,
  type RunnerJob,
  type RunOptions,
  type RunResult,
} from '@serene/core';
import type Dockerode from 'dockerode';
import { inputFiles, packInputs, readSingleFile, unpackOutputs } from './archive.js';
import { createDemuxer } from './demux.js';
import {
  type DockerEndpoint,
  type DockerTls,
  dockerodeOptions,
  formatDockerEndpoint,
  parseDockerUrl,
} from './docker-url.js';
import { combineStats } from './stats.js';

// --- OPTIONS ---

/** Name of this runner, for logs and errors. */
export const DOCKER_RUNNER_NAME = 'docker';

/** The runner image used when none is configured: the original's, whose protocol we speak. */
export const DEFAULT_RUNNER_IMAGE = 'ghcr.io/virtcode/serene-aur-runner:main';

/** The defaults of {@link DockerRunnerOptions}, the original's; the host's settings take them from here. */
export const DOCKER_RUNNER_DEFAULTS = {
  prefix: 'serene-aur-runner-',
  srcinfoName: 'serene-aur-srcinfo-generation',
  pruneImages: true,
  pullImage: true,
  imageSchedule: '0 0 0 * * *',
  pids: 8192,
} as const;

/** Resource limits applied to every build container. 0 means no limit. */
export interface DockerRunnerResources {
  /**
   * memory limit in bytes (the engine kills the build when it needs more)
   * @default 0 (no limit: package builds range from megabytes to tens of gigabytes)
   */
  memoryBytes?: number;
  /**
   * CPUs a build may use, fractions allowed (`1.5`)
   * @default 0 (all of the engine's CPUs)
   */
  cpus?: number;
  /**
   * processes and threads a build may run at once (a fork bomb in a PKGBUILD stays contained)
   * @default 8192
   */
  pids?: number;
}

/** Options of {@link createDockerRunner}; the host maps the original's environment variables to them. */
export interface DockerRunnerOptions {
  /**
   * where the engine listens (`DOCKER_URL`): a unix socket path with or without `unix://`, or
   * `tcp://host:port` / `http://host:port` / `https://host:port`
   * @default '/var/run/docker.sock'
   */
  url?: string;
  /**
   * TLS material (PEM contents) of a `tcp://` or `https://` engine; given, a `tcp://` engine is
   * spoken to over HTTPS with the engine's certificate checked against `ca` (`docker --tlsverify`)
   * @default undefined
   */
  tls?: DockerTls;
  /**
   * private key (PEM contents) for an `ssh://` engine
   * @default undefined (the SSH client's defaults)
   */
  sshPrivateKey?: string | Buffer;
  /**
   * the runner image (`RUNNER_IMAGE`); `serene-runner:local` is what `npm run runner-image` builds
   * @default DEFAULT_RUNNER_IMAGE
   */
  image?: string;
  /**
   * build containers are named prefix + pkgbase (`RUNNER_PREFIX`)
   * @default 'serene-aur-runner-'
   */
  prefix?: string;
  /**
   * name of the `.SRCINFO` generation container (`RUNNER_SRCINFO_NAME`)
   * @default 'serene-aur-srcinfo-generation'
   */
  srcinfoName?: string;
  /**
   * `PACKAGER` set in build containers (`PACKAGER`); unset leaves makepkg's default
   * @default undefined
   */
  packager?: string;
  /**
   * prune dangling images after each successful pull (`PRUNE_IMAGES`)
   * @default true
   */
  pruneImages?: boolean;
  /**
   * the network runner containers join (`RUNNER_NETWORK`), e.g. `host` so that they reach
   * 127.0.0.1; unset means the engine's default (the `bridge` network)
   * @default undefined
   */
  network?: string;
  /** resource limits of each build container */
  resources?: DockerRunnerResources;
  /**
   * pull the image in {@link Runner.init} and then on `imageSchedule` (`PULL_IMAGE`); off, the
   * engine must have it
   * @default true
   */
  pullImage?: boolean;
  /**
   * when the image is pulled again, a cron expression with seconds first, UTC (`SCHEDULE_IMAGE`)
   * @default '0 0 0 * * *'
   */
  imageSchedule?: string;
  /**
   * how long a `.SRCINFO` generation may take
   * @default 60_000
   */
  srcinfoTimeoutMs?: number;
  /**
   * how long the engine may take to answer a ping before it counts as unreachable
   * @default 10_000
   */
  pingTimeoutMs?: number;
  /** @default a logger that drops everything */
  logger?: Logger;
  /**
   * the dockerode constructor, for fakes in tests
   * @default (await import('dockerode')).default
   */
  lib?: typeof Dockerode;
}

/**
 * What {@link createDockerRunner} returns: a {@link Runner} whose `init` does the engine chores at
 * start (image pull, leftover containers, the image schedule) and whose `dispose` stops them.
 */
export interface DockerRunner extends Runner {
  /** The engine endpoint, as a URL. */
  readonly endpoint: string;
  /** The runner image. */
  readonly image: string;
  /**
   * Pulls the runner image (at start-up and on `SCHEDULE_IMAGE`), then prunes dangling images when
   * `pruneImages` is on. Never rejects: a failed pull is logged, and `false` returned.
   */
  pullImage(): Promise<boolean>;
  /**
   * Removes containers a crash left behind (call it at start-up): build containers that are not
   * stopped (running, paused, created, dead) and the `.SRCINFO` container. Stopped build containers
   * are kept, they hold the incremental state of their package. Never rejects; returns the names
   * removed.
   */
  removeLeftovers(): Promise<string[]>;
  /** Whether the engine answers a ping now. Never rejects. */
  ping(): Promise<boolean>;
  /**
   * What the engine says of itself (`GET /info`): its processor architecture as pacman names it
   * (`x86_64`, `aarch64`, `armv7h`), CPUs and memory.
   * @throws DockerUnreachableError when it cannot be reached
   */
  engineInfo(): Promise<DockerEngineInfo>;
}

/** What a Docker Engine says of itself. */
export interface DockerEngineInfo {
  /** processor architecture, as pacman names it */
  arch: string;
  cpus: number;
  memoryBytes: number;
  /** the engine's version */
  version: string;
}

/** The engine's architecture (`uname -m`, or Go's names on some engines) as pacman names it. */
export function pacmanArch(engineArch: string): string {
  const arch = engineArch.trim().toLowerCase();
  const names: Record<string, string> = {
    amd64: 'x86_64',
    x86_64: 'x86_64',
    arm64: 'aarch64',
    aarch64: 'aarch64',
    armv7l: 'armv7h',
    arm: 'armv7h',
    i386: 'i686',
    i686: 'i686',
    riscv64: 'riscv64',
  };
  return names[arch] ?? arch;
}

/** The Docker Engine cannot be reached (not running, wrong `DOCKER_URL`, connection lost). */
export class DockerUnreachableError extends PluginError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(DOCKER_RUNNER_NAME, message, { ...options, code: 'SERENE_ERR_DOCKER_UNREACHABLE' });
  }
}

// --- INTERNAL HELPERS ---

const BUILD_ENTRYPOINT = ['./build.sh'];
const SRCINFO_ENTRYPOINT = ['./srcinfo.sh'];
const CONFIG_LABEL = 'serene.runner.config';
const BASE_LABEL = 'serene.base';

/** Connection failures: the engine is not there, not ours to fix from here. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EACCES',
  'ECONNABORTED',
]);

/** Codes that also come from the file system; they mean "no engine" only on `connect`. */
const CONNECT_ONLY_CODES = new Set(['ENOENT', 'EACCES']);

function isConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const record = error as { code?: unknown; statusCode?: unknown; message?: unknown; syscall?: unknown };
  if (typeof record.statusCode === 'number') return false;
  if (typeof record.code === 'string' && CONNECTION_CODES.has(record.code)) {
    return !CONNECT_ONLY_CODES.has(record.code) || record.syscall === 'connect';
  }
  return typeof record.message === 'string' && /socket hang up/i.test(record.message);
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Docker container names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; pkgbases may also hold `+` and `@`. */
function containerSuffix(base: string): string {
  return base.replace(/\+/g, '_x2b_').replace(/@/g, '_x40_');
}

function formatDuration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  const minutes = ms / 60_000;
  return minutes < 120 ? `${Math.round(minutes * 10) / 10} min` : `${Math.round(minutes / 6) / 10} h`;
}

/**
 * Uploads a tar stream into `/app/build`. A stream that fails half-way (a source file vanished)
 * aborts the request, which would otherwise wait for the rest forever.
 */
async function upload(container: Dockerode.Container, archive: Readable): Promise<void> {
  const controller = new AbortController();
  const failed = new Promise<never>((_, reject) =>
    archive.once('error', (error) => {
      controller.abort(error);
      reject(error);
    }),
  );
  const request = container.putArchive(archive, { path: '/app/build', abortSignal: controller.signal });
  request.catch(() => undefined);
  failed.catch(() => undefined);
  await Promise.race([request, failed]);
}

/** How one container run ended. */
interface ContainerRun {
  exitCode: number | null;
  aborted?: 'timeout' | 'cancelled';
  started: Date;
  ended: Date;
  logs: string;
}

// --- RUNNER ---

/**
 * A {@link Runner} that builds each package in its own container on a Docker Engine, speaking the
 * original's runner protocol (docs/compatibility.md#runner-protocol): a container per package named prefix + pkgbase, reused
 * across builds, inputs uploaded to `/app/build`, outputs read from `/app/target`.
 *
 * @remarks Does no I/O until first use. Beyond the original: build timeouts and cancellation kill the
 * container (which is then removed, so the next build starts clean), resource limits, a container is
 * also re-created when its image was updated under the same tag or the runner's settings changed, and
 * an unreachable engine fails each build with a clear message until it is back.
 */
export function createDockerRunner(options: DockerRunnerOptions = {}): DockerRunner {
  const parsedEndpoint: DockerEndpoint = parseDockerUrl(options.url);
  // TLS material given: a tcp:// engine is spoken to over HTTPS, as `docker --tlsverify -H tcp://`
  const endpoint: DockerEndpoint =
    options.tls && parsedEndpoint.kind === 'http' ? { ...parsedEndpoint, protocol: 'https' } : parsedEndpoint;
  const endpointUrl = formatDockerEndpoint(endpoint);
  const image = options.image ?? DEFAULT_RUNNER_IMAGE;
  const prefix = options.prefix ?? DOCKER_RUNNER_DEFAULTS.prefix;
  const srcinfoName = options.srcinfoName ?? DOCKER_RUNNER_DEFAULTS.srcinfoName;
  const packager = options.packager;
  const pruneImages = options.pruneImages ?? DOCKER_RUNNER_DEFAULTS.pruneImages;
  const pullImage = options.pullImage ?? DOCKER_RUNNER_DEFAULTS.pullImage;
  const network = options.network;
  const resources = {
    memoryBytes: options.resources?.memoryBytes ?? 0,
    cpus: options.resources?.cpus ?? 0,
    pids: options.resources?.pids ?? DOCKER_RUNNER_DEFAULTS.pids,
  };
  const srcinfoTimeoutMs = options.srcinfoTimeoutMs ?? 60_000;
  const pingTimeoutMs = options.pingTimeoutMs ?? 10_000;
  const logger = (options.logger ?? createNoopLogger()).child({ runner: DOCKER_RUNNER_NAME });

  // the image schedule is checked now: a wrong expression fails the creation, not a later start
  const imageJob: CronJob | undefined = pullImage
    ? createCronJob(options.imageSchedule ?? DOCKER_RUNNER_DEFAULTS.imageSchedule, () => runner.pullImage(), {
        name: 'runner image pull',
        logger,
      })
    : undefined;

  let client: Dockerode | undefined;
  let disposed = false;
  /** runs in flight, so that dispose can stop them */
  const inflight = new Map<AbortController, Promise<unknown>>();
  const serialize = createKeyedLock();
  /** names of the containers runs in flight use */
  const active = new Set<string>();

  /** what a build container is made with beyond its image and entrypoint; a change re-creates it */
  const settingsKey = JSON.stringify({ network: network ?? null, resources, packager: packager ?? null });

  const docker = async (): Promise<Dockerode> => {
    if (disposed) throw new PluginError(DOCKER_RUNNER_NAME, 'the runner was disposed');
    if (!client) {
      const Docker = options.lib ?? (await import('dockerode')).default;
      client = new Docker(
        dockerodeOptions(endpoint, {
          tls: options.tls,
          sshPrivateKey: options.sshPrivateKey,
        }) as Dockerode.DockerOptions,
      );
    }
    return client;
  };

  const unreachable = (error: unknown, during?: string): DockerUnreachableError => {
    const detail = formatErrorChain(error);
    return new DockerUnreachableError(
      during
        ? `lost the connection to the Docker Engine at ${endpointUrl} ${during} (${detail})`
        : `cannot reach the Docker Engine at ${endpointUrl} (${detail}); is it running? Builds work again as soon as it is back`,
      { cause: error },
    );
  };

  /** Runs `task` with the engine; connection failures become {@link DockerUnreachableError}. */
  const withEngine = async <T>(task: (engine: Dockerode) => Promise<T>, during?: string): Promise<T> => {
    const engine = await docker();
    try {
      await (engine.ping as (opts: { abortSignal: AbortSignal }) => Promise<unknown>)({
        abortSignal: AbortSignal.timeout(pingTimeoutMs),
      });
    } catch (error) {
      if (
        isConnectionError(error) ||
        (error as Error)?.name === 'AbortError' ||
        (error as Error)?.name === 'TimeoutError'
      ) {
        throw unreachable(error);
      }
      throw new PluginError(DOCKER_RUNNER_NAME, `the Docker Engine at ${endpointUrl} did not answer a ping`, {
        cause: error,
      });
    }
    try {
      return await task(engine);
    } catch (error) {
      if (error instanceof PluginError || error instanceof InputError) throw error;
      if (isConnectionError(error)) throw unreachable(error, during);
      const where = during ? ` ${during}` : '';
      throw new PluginError(
        DOCKER_RUNNER_NAME,
        `a Docker Engine request failed${where}: ${formatErrorChain(error)}`,
        {
          cause: error,
        },
      );
    }
  };

  /** Tracks a run so that `dispose()` can stop it; the controller aborts it. */
  const track = <T>(
    signal: AbortSignal | undefined,
    task: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> => {
    const controller = new AbortController();
    const forward = () => controller.abort(signal?.reason);
    if (signal?.aborted) controller.abort(signal.reason);
    else signal?.addEventListener('abort', forward, { once: true });
    const promise = task(controller.signal).finally(() => {
      signal?.removeEventListener('abort', forward);
      inflight.delete(controller);
    });
    inflight.set(controller, promise);
    return promise;
  };

  const pull = async (engine: Dockerode): Promise<void> => {
    const stream = await engine.pull(image);
    const events = await new Promise<{ error?: string; errorDetail?: { message?: string } }[]>(
      (resolve, reject) =>
        engine.modem.followProgress(stream, (error: Error | null, output: unknown[]) =>
          error ? reject(error) : resolve(output as { error?: string }[]),
        ),
    );
    const failed = events.find((event) => event.error || event.errorDetail);
    if (failed) throw new Error(failed.errorDetail?.message ?? failed.error);
  };

  const removeContainer = async (container: Dockerode.Container): Promise<void> => {
    try {
      await container.remove({ force: true, v: true });
    } catch (error) {
      // already gone, or being removed by someone else
      if (statusOf(error) !== 404 && statusOf(error) !== 409) throw error;
    }
  };

  const inspectOrNull = async (
    container: Dockerode.Container,
  ): Promise<Dockerode.ContainerInspectInfo | null> => {
    try {
      return await container.inspect();
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  };

  /** Creates a container; pulls the image first when the engine does not have it. */
  const create = async (
    engine: Dockerode,
    spec: Dockerode.ContainerCreateOptions,
  ): Promise<Dockerode.Container> => {
    try {
      return await engine.createContainer(spec);
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    logger.info('runner image missing, pulling it', { image });
    try {
      await pull(engine);
    } catch (error) {
      throw new PluginError(
        DOCKER_RUNNER_NAME,
        `the runner image ${image} is not on the engine and could not be pulled`,
        {
          cause: error,
        },
      );
    }
    return await engine.createContainer(spec);
  };

  const hostConfig = (): Dockerode.HostConfig => ({
    ...(network ? { NetworkMode: network } : {}),
    ...(resources.memoryBytes > 0 ? { Memory: Math.floor(resources.memoryBytes) } : {}),
    ...(resources.cpus > 0 ? { NanoCpus: Math.floor(resources.cpus * 1e9) } : {}),
    ...(resources.pids > 0 ? { PidsLimit: Math.floor(resources.pids) } : {}),
  });

  /** Why an existing build container may not be reused (the original's rules and ours), if it may not. */
  const reuseBlocker = (
    info: Dockerode.ContainerInspectInfo,
    job: RunnerJob,
    imageId: string | undefined,
  ): string | undefined => {
    if (job.clean) return 'clean build';
    if (info.Config.Image !== image) return 'image changed';
    // a pull may have moved the tag to a new image: new runner scripts need a new container
    if (imageId !== undefined && info.Image !== imageId) return 'image updated';
    if (JSON.stringify(info.Config.Entrypoint) !== JSON.stringify(BUILD_ENTRYPOINT))
      return 'entrypoint changed';
    if (packager !== undefined && !(info.Config.Env ?? []).includes(`PACKAGER=${packager}`)) {
      return 'PACKAGER changed';
    }
    const labels = info.Config.Labels ?? {};
    if (labels[CONFIG_LABEL] !== settingsKey || labels[BASE_LABEL] !== job.base)
      return 'runner settings changed';
    if (info.State.Running || info.State.Paused || info.State.Restarting) return 'left running';
    return undefined;
  };

  /** The package's container, reused by the original's rules, or a new one. */
  const buildContainer = async (
    engine: Dockerode,
    job: RunnerJob,
    name: string,
  ): Promise<Dockerode.Container> => {
    const existing = engine.getContainer(name);
    const info = await inspectOrNull(existing);
    if (info) {
      const imageId = await engine
        .getImage(image)
        .inspect()
        .then((found) => found.Id)
        .catch(() => undefined);
      const reason = reuseBlocker(info, job, imageId);
      if (reason === undefined) {
        logger.debug('reusing build container', { base: job.base, container: name });
        return existing;
      }
      logger.info('re-creating build container', { base: job.base, container: name, reason });
      await removeContainer(existing);
    }
    return await create(engine, {
      name,
      Image: image,
      Entrypoint: BUILD_ENTRYPOINT,
      Env: packager !== undefined ? [`PACKAGER=${packager}`] : [],
      Labels: { [CONFIG_LABEL]: settingsKey, [BASE_LABEL]: job.base },
      HostConfig: hostConfig(),
    });
  };

  /**
   * Starts a prepared container and follows it to its exit: output demultiplexed and passed on as it
   * arrives, killed on timeout or abort.
   */
  const follow = async (
    container: Dockerode.Container,
    opts: {
      timeoutMs?: number | undefined;
      signal: AbortSignal;
      onLog: (text: string) => void;
      since: number;
    },
  ): Promise<ContainerRun> => {
    const parts: string[] = [];
    const emit = (text: string) => {
      parts.push(text);
      opts.onLog(text);
    };
    let aborted: 'timeout' | 'cancelled' | undefined;
    let running = false;
    let killing: Promise<void> | undefined;
    const kill = () => {
      killing ??= container.kill().then(
        () => undefined,
        () => undefined, // it exited meanwhile
      );
    };
    const stop = (reason: 'timeout' | 'cancelled') => {
      if (aborted) return;
      aborted = reason;
      if (running) kill();
    };
    const remaining = opts.timeoutMs === undefined ? undefined : opts.timeoutMs - (Date.now() - opts.since);
    const timer =
      remaining === undefined ? undefined : setTimeout(() => stop('timeout'), Math.max(0, remaining));
    const onAbort = () => stop('cancelled');
    if (opts.signal.aborted) onAbort();
    else opts.signal.addEventListener('abort', onAbort, { once: true });

    try {
      if (aborted) {
        const now = new Date();
        return { exitCode: null, aborted, started: now, ended: now, logs: '' };
      }
      // attached before the start, so that not a byte of output is missed
      const stream = (await container.attach({
        stream: true,
        stdout: true,
        stderr: true,
      })) as unknown as Readable;
      const demux = createDemuxer((_, text) => emit(text));
      const drained = new Promise<void>((resolve) => {
        stream.on('data', (bytes: Buffer) => demux.push(bytes));
        stream.once('end', resolve);
        stream.once('close', resolve);
        stream.once('error', () => resolve());
      });
      const started = new Date();
      try {
        await container.start();
      } catch (error) {
        stream.destroy();
        throw error;
      }
      running = true;
      if (aborted) kill();
      const waited = (await container.wait()) as { StatusCode?: number };
      const ended = new Date();
      // the last output may trail the exit a little
      await Promise.race([drained, delay(5_000, undefined, { ref: false })]);
      demux.end();
      stream.destroy();
      await killing;
      return {
        exitCode: typeof waited.StatusCode === 'number' ? waited.StatusCode : null,
        ...(aborted ? { aborted } : {}),
        started,
        ended,
        logs: parts.join(''),
      };
    } finally {
      if (timer) clearTimeout(timer);
      opts.signal.removeEventListener('abort', onAbort);
    }
  };

  const abortMessage = (
    aborted: 'timeout' | 'cancelled',
    timeoutMs: number | undefined,
    name: string,
    started: boolean,
  ): string => {
    const what =
      aborted === 'timeout'
        ? `build timed out after ${formatDuration(timeoutMs ?? 0)}`
        : 'build was cancelled';
    if (!started) return `${what} before its container started`;
    return aborted === 'timeout'
      ? `${what}; its container ${name} was killed`
      : `${what}; its container ${name} was stopped`;
  };

  const build = async (job: RunnerJob, options: RunOptions, signal: AbortSignal): Promise<RunResult> => {
    const since = Date.now();
    const name = prefix + containerSuffix(job.base);
    const onLog = (text: string) => {
      try {
        options.onLog?.(text);
      } catch (error) {
        logger.warn('a log listener threw', { base: job.base, error: formatErrorChain(error) });
      }
    };
    const abortedResult = (aborted: 'timeout' | 'cancelled', run?: ContainerRun): RunResult => {
      const message = abortMessage(aborted, job.timeoutMs, name, run !== undefined);
      const note = `\n:: SERENE :: ${message}\n`;
      onLog(note);
      const now = new Date();
      return {
        success: false,
        exitCode: run?.exitCode ?? null,
        aborted,
        message,
        started: run?.started ?? now,
        ended: run?.ended ?? now,
        logs: (run?.logs ?? '') + note,
        srcinfo: null,
        packages: [],
        stats: null,
      };
    };
    const abortedBeforeStart = (): 'timeout' | 'cancelled' | undefined =>
      signal.aborted
        ? 'cancelled'
        : job.timeoutMs !== undefined && Date.now() - since >= job.timeoutMs
          ? 'timeout'
          : undefined;

    const source = await fs.stat(job.sourceDir).catch(() => undefined);
    if (!source?.isDirectory()) throw new InputError(`the source folder ${job.sourceDir} does not exist`);
    if (signal.aborted) return abortedResult('cancelled');

    return await withEngine(async (engine) => {
      const container = await buildContainer(engine, job, name);
      await upload(container, await packInputs(job.sourceDir, inputFiles(job.inputs)));
      const early = abortedBeforeStart();
      if (early) return abortedResult(early);

      const run = await follow(container, { timeoutMs: job.timeoutMs, signal, onLog, since });
      if (run.aborted) {
        // a killed build may leave pacman's lock or half a work tree behind: start the next one clean
        await removeContainer(container).catch((error) =>
          logger.warn('could not remove an aborted build container', {
            container: name,
            error: formatErrorChain(error),
          }),
        );
        logger.info('build aborted', { base: job.base, reason: run.aborted });
        return abortedResult(run.aborted, run);
      }
      const result: RunResult = {
        success: run.exitCode === 0,
        exitCode: run.exitCode,
        started: run.started,
        ended: run.ended,
        logs: run.logs,
        srcinfo: null,
        packages: [],
        stats: null,
      };
      if (run.exitCode === 0) {
        const outputs = await unpackOutputs(
          await container.getArchive({ path: '/app/target' }),
          job.outputDir,
        );
        result.srcinfo = outputs.srcinfo;
        result.packages = outputs.packages;
        result.stats = combineStats(outputs.statsBefore, outputs.statsAfter);
      }
      logger.info('build finished', {
        base: job.base,
        exitCode: run.exitCode,
        packages: result.packages.length,
      });
      return result;
    }, `during the build of ${job.base}`);
  };

  const generateSrcinfo = async (sourceDir: string, signal: AbortSignal): Promise<string> =>
    await withEngine(async (engine) => {
      const stale = engine.getContainer(srcinfoName);
      await removeContainer(stale);
      const container = await create(engine, {
        name: srcinfoName,
        Image: image,
        Entrypoint: SRCINFO_ENTRYPOINT,
        Labels: { [CONFIG_LABEL]: settingsKey },
        HostConfig: hostConfig(),
      });
      try {
        await upload(container, await packInputs(sourceDir));
        const run = await follow(container, {
          timeoutMs: srcinfoTimeoutMs,
          signal,
          onLog: () => {},
          since: Date.now(),
        });
        if (run.aborted === 'cancelled')
          throw new PluginError(DOCKER_RUNNER_NAME, '.SRCINFO generation was cancelled');
        if (run.aborted === 'timeout') {
          throw new PluginError(
            DOCKER_RUNNER_NAME,
            `.SRCINFO generation timed out after ${formatDuration(srcinfoTimeoutMs)}`,
          );
        }
        if (run.exitCode !== 0) {
          throw new InputError(
            `could not generate .SRCINFO (exit code ${run.exitCode}): ${run.logs.trim().slice(-2000)}`,
          );
        }
        const srcinfo = await readSingleFile(await container.getArchive({ path: '/app/target/.SRCINFO' }));
        if (srcinfo === null)
          throw new PluginError(DOCKER_RUNNER_NAME, 'the .SRCINFO container wrote no .SRCINFO');
        return srcinfo;
      } finally {
        await removeContainer(container).catch(() => undefined);
      }
    }, 'during .SRCINFO generation');

  const runner: DockerRunner = {
    name: DOCKER_RUNNER_NAME,
    endpoint: endpointUrl,
    image,

    async init() {
      if (pullImage) await runner.pullImage();
      await runner.removeLeftovers();
      imageJob?.start();
    },

    run(job, runOptions = {}) {
      const name = prefix + containerSuffix(job.base);
      return serialize(name, () =>
        track(runOptions.signal, async (signal) => {
          active.add(name);
          try {
            return await build(job, runOptions, signal);
          } finally {
            active.delete(name);
          }
        }),
      );
    },

    printSrcinfo(sourceDir, printOptions = {}) {
      // one container name for all: generations run one at a time, as the original's
      return serialize(srcinfoName, () =>
        track(printOptions.signal, async (signal) => {
          active.add(srcinfoName);
          try {
            return await generateSrcinfo(sourceDir, signal);
          } finally {
            active.delete(srcinfoName);
          }
        }),
      );
    },

    async remove(base) {
      const name = prefix + containerSuffix(base);
      await serialize(name, () =>
        withEngine(async (engine) => {
          await removeContainer(engine.getContainer(name));
          logger.info('removed build container', { base, container: name });
        }, `while removing the container of ${base}`),
      );
    },

    async pullImage() {
      try {
        await withEngine(async (engine) => {
          await pull(engine);
          logger.info('pulled runner image', { image });
          if (pruneImages) {
            const pruned = await engine.pruneImages();
            logger.info('pruned images', {
              count: pruned.ImagesDeleted?.length ?? 0,
              reclaimedBytes: pruned.SpaceReclaimed ?? 0,
            });
          }
        }, 'while pulling the runner image');
        return true;
      } catch (error) {
        const local = await docker()
          .then((engine) => engine.getImage(image).inspect())
          .then(
            () => true,
            () => false,
          );
        const meta = { image, error: formatErrorChain(error) };
        if (local) logger.warn('could not pull the runner image; using the one the engine has', meta);
        else logger.error('could not pull the runner image; builds fail until it is available', meta);
        return false;
      }
    },

    async removeLeftovers() {
      try {
        return await withEngine(async (engine) => {
          const containers = await engine.listContainers({ all: true });
          const removed: string[] = [];
          for (const info of containers) {
            const name = info.Names?.map((n) => n.replace(/^\//, '')).find(
              (n) => n === srcinfoName || n.startsWith(prefix),
            );
            // containers of runs in flight are not leftovers (only matters when called after start-up)
            if (!name || active.has(name)) continue;
            const stopped = info.State === 'exited';
            if (name !== srcinfoName && stopped) continue;
            await removeContainer(engine.getContainer(info.Id));
            removed.push(name);
          }
          if (removed.length > 0) logger.info('removed leftover runner containers', { containers: removed });
          return removed;
        }, 'while removing leftover containers');
      } catch (error) {
        logger.warn('could not look for leftover runner containers', { error: formatErrorChain(error) });
        return [];
      }
    },

    async ping() {
      try {
        await withEngine(async () => undefined);
        return true;
      } catch {
        return false;
      }
    },

    async engineInfo() {
      return await withEngine(async (engine) => {
        const info = (await engine.info()) as {
          Architecture?: string;
          NCPU?: number;
          MemTotal?: number;
          ServerVersion?: string;
        };
        return {
          arch: pacmanArch(info.Architecture ?? ''),
          cpus: info.NCPU ?? 0,
          memoryBytes: info.MemTotal ?? 0,
          version: info.ServerVersion ?? '',
        };
      }, 'while reading its /info');
    },

    async dispose() {
      imageJob?.stop();
      if (disposed) return;
      disposed = true;
      const running = [...inflight.entries()];
      for (const [controller] of running) controller.abort(new Error('the runner is shutting down'));
      await Promise.allSettled(running.map(([, promise]) => promise));
      client = undefined;
    },
  };
  return runner;
}
