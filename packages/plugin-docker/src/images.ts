/**
 * The Docker runner's image chores: pulling the runner image (at start-up, on `SCHEDULE_IMAGE`, and
 * when a container is to be made without it) and pruning dangling images.
 */
import { formatErrorChain, type Logger } from '@serene/core';
import type Dockerode from 'dockerode';
import type { EngineClient } from './engine-client.js';
import type { RunnerSettings } from './runner-options.js';

/** Pulls `image`; rejects when the engine reports a failure in its progress events. */
export async function pull(engine: Dockerode, image: string): Promise<void> {
  const stream = await engine.pull(image);
  const events = await new Promise<{ error?: string; errorDetail?: { message?: string } }[]>(
    (resolve, reject) =>
      engine.modem.followProgress(stream, (error: Error | null, output: unknown[]) =>
        error ? reject(error) : resolve(output as { error?: string }[]),
      ),
  );
  const failed = events.find((event) => event.error || event.errorDetail);
  if (failed) throw new Error(failed.errorDetail?.message ?? failed.error);
}

/**
 * Pulls the runner image, then prunes dangling images when `pruneImages` is on. Never rejects: a
 * failed pull is logged (a warning while the engine has an image of that name, else an error), and
 * `false` returned.
 */
export async function pullRunnerImage(
  client: EngineClient,
  settings: RunnerSettings,
  logger: Logger,
): Promise<boolean> {
  const { image } = settings;
  try {
    await client.withEngine(async (engine) => {
      await pull(engine, image);
      logger.info('pulled runner image', { image });
      if (settings.pruneImages) {
        const pruned = await engine.pruneImages();
        logger.info('pruned images', {
          count: pruned.ImagesDeleted?.length ?? 0,
          reclaimedBytes: pruned.SpaceReclaimed ?? 0,
        });
      }
    }, 'while pulling the runner image');
    return true;
  } catch (error) {
    const local = await client
      .engine()
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
}
