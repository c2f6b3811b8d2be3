/**
 * The Docker runner's containers: their names, how they are made (image, entrypoint, labels, the
 * host settings), when a package's container is reused (the original's rules and ours), uploads
 * into them, their removal, and the removal of those a crash left behind.
 */
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { formatErrorChain, type Logger, PluginError, type RunnerJob } from '@serene/core';
import type Dockerode from 'dockerode';
import { type EngineClient, statusOf } from './engine-client.js';
import { pull } from './images.js';
import { DOCKER_RUNNER_NAME, type RunnerSettings } from './runner-options.js';

export const BUILD_ENTRYPOINT = ['./build.sh'];
export const SRCINFO_ENTRYPOINT = ['./srcinfo.sh'];
export const CONFIG_LABEL = 'serene.runner.config';
const BASE_LABEL = 'serene.base';

/**
 * The build container of `base`: prefix + pkgbase. Docker container names allow
 * `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; pkgbases may also hold `+` and `@`.
 */
export function buildContainerName(prefix: string, base: string): string {
  return prefix + base.replace(/\+/g, '_x2b_').replace(/@/g, '_x40_');
}

/**
 * Uploads a tar stream into `/app/build`. A stream that fails half-way (a source file vanished)
 * aborts the request, which would otherwise wait for the rest forever.
 */
export async function upload(container: Dockerode.Container, archive: Readable): Promise<void> {
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

/** Removes a container with its volumes; one already gone or being removed counts as removed. */
export async function removeContainer(container: Dockerode.Container): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (error) {
    // already gone, or being removed by someone else
    if (statusOf(error) !== 404 && statusOf(error) !== 409) throw error;
  }
}

/** Whether Docker refused to start a container because its removal is under way (409). */
export function isBeingRemoved(error: unknown): boolean {
  return statusOf(error) === 409 && /marked for removal|removal .*in progress/i.test(String(error));
}

/** Waits until the container is gone (a removal under way ends), at most `ms`. */
export async function waitGone(container: Dockerode.Container, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await inspectOrNull(container)) !== null && Date.now() < deadline) await delay(200);
}

async function inspectOrNull(container: Dockerode.Container): Promise<Dockerode.ContainerInspectInfo | null> {
  try {
    return await container.inspect();
  } catch (error) {
    if (statusOf(error) === 404) return null;
    throw error;
  }
}

/** What every runner container is made with on the host: network and resource limits. */
export function hostConfig(settings: RunnerSettings): Dockerode.HostConfig {
  const { network, resources } = settings;
  return {
    ...(network ? { NetworkMode: network } : {}),
    ...(resources.memoryBytes > 0 ? { Memory: Math.floor(resources.memoryBytes) } : {}),
    ...(resources.cpus > 0 ? { NanoCpus: Math.floor(resources.cpus * 1e9) } : {}),
    ...(resources.pids > 0 ? { PidsLimit: Math.floor(resources.pids) } : {}),
  };
}

/** Creates a container; pulls the image first when the engine does not have it. */
export async function createContainer(
  engine: Dockerode,
  spec: Dockerode.ContainerCreateOptions,
  image: string,
  logger: Logger,
): Promise<Dockerode.Container> {
  try {
    return await engine.createContainer(spec);
  } catch (error) {
    if (statusOf(error) !== 404) throw error;
  }
  logger.info('runner image missing, pulling it', { image });
  try {
    await pull(engine, image);
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
}

/** The `CARCH=` entry of a build container's environment, if it has one. */
function carchEnv(carch: string | undefined): string | undefined {
  return carch === undefined ? undefined : `CARCH=${carch}`;
}

/** Why an existing build container may not be reused (the original's rules and ours), if it may not. */
function reuseBlocker(
  info: Dockerode.ContainerInspectInfo,
  job: RunnerJob,
  imageId: string | undefined,
  settings: RunnerSettings,
  carch: string | undefined,
): string | undefined {
  const { image, packager, settingsKey } = settings;
  if (job.clean) return 'clean build';
  if (info.Config.Image !== image) return 'image changed';
  // a pull may have moved the tag to a new image: new runner scripts need a new container
  if (imageId !== undefined && info.Image !== imageId) return 'image updated';
  if (JSON.stringify(info.Config.Entrypoint) !== JSON.stringify(BUILD_ENTRYPOINT))
    return 'entrypoint changed';
  if (packager !== undefined && !(info.Config.Env ?? []).includes(`PACKAGER=${packager}`)) {
    return 'PACKAGER changed';
  }
  if ((info.Config.Env ?? []).find((entry) => entry.startsWith('CARCH=')) !== carchEnv(carch))
    return 'architecture changed';
  const labels = info.Config.Labels ?? {};
  if (labels[CONFIG_LABEL] !== settingsKey || labels[BASE_LABEL] !== job.base)
    return 'runner settings changed';
  if (info.State.Status === 'removing') return 'being removed';
  if (info.State.Running || info.State.Paused || info.State.Restarting) return 'left running';
  return undefined;
}

/**
 * The package's container `name`, reused by the original's rules, or a new one; `carch` is the
 * architecture makepkg is told (`CARCH`) when the job's is not the engine's processor's.
 */
export async function buildContainer(
  engine: Dockerode,
  job: RunnerJob,
  name: string,
  settings: RunnerSettings,
  logger: Logger,
  carch?: string,
): Promise<Dockerode.Container> {
  const { image, packager } = settings;
  const existing = engine.getContainer(name);
  const info = await inspectOrNull(existing);
  if (info) {
    const imageId = await engine
      .getImage(image)
      .inspect()
      .then((found) => found.Id)
      .catch(() => undefined);
    const reason = reuseBlocker(info, job, imageId, settings, carch);
    if (reason === undefined) {
      logger.debug('reusing build container', { base: job.base, container: name });
      return existing;
    }
    logger.info('re-creating build container', { base: job.base, container: name, reason });
    await removeContainer(existing);
    // a removal someone else started (409 above) must end before the name is free again
    await waitGone(existing);
  }
  return await createContainer(
    engine,
    {
      name,
      Image: image,
      Entrypoint: BUILD_ENTRYPOINT,
      Env: [
        ...(packager !== undefined ? [`PACKAGER=${packager}`] : []),
        ...(carch !== undefined ? [carchEnv(carch)!] : []),
      ],
      Labels: { [CONFIG_LABEL]: settings.settingsKey, [BASE_LABEL]: job.base },
      HostConfig: hostConfig(settings),
    },
    image,
    logger,
  );
}

/**
 * Removes the containers a crash left behind: build containers that are not stopped and the
 * `.SRCINFO` container, except those named in `active` (runs in flight). Never rejects; returns the
 * names removed.
 */
export async function removeLeftovers(
  client: EngineClient,
  settings: RunnerSettings,
  active: ReadonlySet<string>,
  logger: Logger,
): Promise<string[]> {
  const { prefix, srcinfoName } = settings;
  try {
    return await client.withEngine(async (engine) => {
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
}
