/**
 * The Docker runner: builds each package in its own container on a Docker Engine. This module is
 * its table of contents: the options and their resolution (runner-options.ts), the engine connection
 * (engine-client.ts), the containers (containers.ts), one container run (container-run.ts), a build
 * and a `.SRCINFO` generation (build.ts), the image chores (images.ts); here they are put together,
 * with what runs one at a time and what `dispose` stops.
 */
import { type CronJob, createCronJob, createKeyedLock, createNoopLogger, type Runner } from '@serene/core';
import { generateSrcinfo, type JobContext, runBuild } from './build.js';
import { buildContainerName, removeContainer, removeLeftovers } from './containers.js';
import { createEngineClient } from './engine-client.js';
import { pullRunnerImage } from './images.js';
import { DOCKER_RUNNER_NAME, type DockerRunnerOptions, resolveSettings } from './runner-options.js';

export { DockerUnreachableError } from './engine-client.js';
export {
  DEFAULT_RUNNER_IMAGE,
  DOCKER_RUNNER_DEFAULTS,
  DOCKER_RUNNER_NAME,
  type DockerRunnerOptions,
  type DockerRunnerResources,
} from './runner-options.js';

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
  const settings = resolveSettings(options);
  const logger = (options.logger ?? createNoopLogger()).child({ runner: DOCKER_RUNNER_NAME });
  const client = createEngineClient(settings, options.lib);
  let native: Promise<string> | undefined;
  const context: JobContext = {
    settings,
    client,
    logger,
    // asked once; a failed ask is asked again next time
    nativeArch: () => {
      native ??= runner.engineInfo().then(
        (info) => info.arch,
        (error) => {
          native = undefined;
          throw error;
        },
      );
      return native;
    },
  };
  const { prefix, srcinfoName } = settings;

  // the image schedule is checked now: a wrong expression fails the creation, not a later start
  const imageJob: CronJob | undefined = settings.pullImage
    ? createCronJob(settings.imageSchedule, () => runner.pullImage(), {
        name: 'runner image pull',
        logger,
      })
    : undefined;

  let disposed = false;
  /** runs in flight, so that dispose can stop them */
  const inflight = new Map<AbortController, Promise<unknown>>();
  /** one run at a time per container name */
  const serialize = createKeyedLock();
  /** names of the containers runs in flight use */
  const active = new Set<string>();

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

  /** Runs `task` in the container `name`: one at a time per name, tracked, marked active. */
  const inContainer = <T>(
    name: string,
    signal: AbortSignal | undefined,
    task: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> =>
    serialize(name, () =>
      track(signal, async (tracked) => {
        active.add(name);
        try {
          return await task(tracked);
        } finally {
          active.delete(name);
        }
      }),
    );

  const runner: DockerRunner = {
    name: DOCKER_RUNNER_NAME,
    endpoint: settings.endpointUrl,
    image: settings.image,

    async init() {
      if (settings.pullImage) await runner.pullImage();
      await runner.removeLeftovers();
      imageJob?.start();
    },

    run(job, runOptions = {}) {
      return inContainer(buildContainerName(prefix, job.base), runOptions.signal, (signal) =>
        runBuild(context, job, runOptions, signal),
      );
    },

    printSrcinfo(sourceDir, printOptions = {}) {
      // one container name for all: generations run one at a time, as the original's
      return inContainer(srcinfoName, printOptions.signal, (signal) =>
        generateSrcinfo(context, sourceDir, signal),
      );
    },

    async remove(base) {
      const name = buildContainerName(prefix, base);
      await serialize(name, () =>
        client.withEngine(async (engine) => {
          await removeContainer(engine.getContainer(name));
          logger.info('removed build container', { base, container: name });
        }, `while removing the container of ${base}`),
      );
    },

    pullImage: () => pullRunnerImage(client, settings, logger),

    removeLeftovers: () => removeLeftovers(client, settings, active, logger),

    async ping() {
      try {
        await client.withEngine(async () => undefined);
        return true;
      } catch {
        return false;
      }
    },

    async engineInfo() {
      return await client.withEngine(async (engine) => {
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
      client.close();
      const running = [...inflight.entries()];
      for (const [controller] of running) controller.abort(new Error('the runner is shutting down'));
      await Promise.allSettled(running.map(([, promise]) => promise));
      client.release();
    },
  };
  return runner;
}
