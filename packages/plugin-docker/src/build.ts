/**
 * What the Docker runner does for one job: a package build (its container reused or made, inputs
 * uploaded, the run followed, the outputs copied out of `/app/target`) and a `.SRCINFO` generation
 * (a throw-away container).
 */
import * as fs from 'node:fs/promises';
import {
  formatErrorChain,
  InputError,
  type Logger,
  PluginError,
  type RunnerJob,
  type RunOptions,
  type RunResult,
} from '@serene/core';
import { inputFiles, packInputs, readSingleFile, unpackOutputs } from './archive.js';
import { type ContainerRun, follow } from './container-run.js';
import {
  buildContainer,
  buildContainerName,
  CONFIG_LABEL,
  createContainer,
  hostConfig,
  isBeingRemoved,
  removeContainer,
  SRCINFO_ENTRYPOINT,
  upload,
  waitGone,
} from './containers.js';
import type { EngineClient } from './engine-client.js';
import { DOCKER_RUNNER_NAME, type RunnerSettings } from './runner-options.js';
import { combineStats } from './stats.js';

/** What a job runs with. */
export interface JobContext {
  settings: RunnerSettings;
  client: EngineClient;
  logger: Logger;
  /** the engine's processor architecture as pacman names it (read once, when a job first names one) */
  nativeArch: () => Promise<string>;
}

function formatDuration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 100) / 10} s`;
  const minutes = ms / 60_000;
  return minutes < 120 ? `${Math.round(minutes * 10) / 10} min` : `${Math.round(minutes / 6) / 10} h`;
}

function abortMessage(
  aborted: 'timeout' | 'cancelled',
  timeoutMs: number | undefined,
  name: string,
  started: boolean,
): string {
  const what =
    aborted === 'timeout' ? `build timed out after ${formatDuration(timeoutMs ?? 0)}` : 'build was cancelled';
  if (!started) return `${what} before its container started`;
  return aborted === 'timeout'
    ? `${what}; its container ${name} was killed`
    : `${what}; its container ${name} was stopped`;
}

/** Builds `job` in its package's container. */
export async function runBuild(
  { settings, client, logger, nativeArch }: JobContext,
  job: RunnerJob,
  options: RunOptions,
  signal: AbortSignal,
): Promise<RunResult> {
  const since = Date.now();
  const name = buildContainerName(settings.prefix, job.base);
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

  // a job for another architecture than the engine's processor (an engine declared `aarch64` that
  // runs emulated images, say): makepkg is told (CARCH), so that the package is named for it
  const wanted = job.arch !== undefined && job.arch !== 'any' ? job.arch : undefined;
  const carch = wanted !== undefined && wanted !== (await nativeArch()) ? wanted : undefined;
  return await client.withEngine(async (engine) => {
    const prepare = async () => {
      const made = await buildContainer(engine, job, name, settings, logger, carch);
      await upload(made, await packInputs(job.sourceDir, inputFiles(job.inputs)));
      return made;
    };
    let container = await prepare();
    const early = abortedBeforeStart();
    if (early) return abortedResult(early);

    let run: ContainerRun;
    try {
      run = await follow(container, { timeoutMs: job.timeoutMs, signal, onLog, since });
    } catch (error) {
      // the container's removal began after it was inspected (leftovers of an engine taken back,
      // say): Docker refuses to start it; once it is gone, the build starts in a new one
      if (!isBeingRemoved(error)) throw error;
      logger.info('build container was being removed; creating it again', {
        base: job.base,
        container: name,
      });
      await waitGone(container);
      container = await prepare();
      run = await follow(container, { timeoutMs: job.timeoutMs, signal, onLog, since });
    }
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
      const outputs = await unpackOutputs(await container.getArchive({ path: '/app/target' }), job.outputDir);
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
}

/** Generates the `.SRCINFO` of `sourceDir` in the `.SRCINFO` container, made for this and removed. */
export async function generateSrcinfo(
  { settings, client, logger }: JobContext,
  sourceDir: string,
  signal: AbortSignal,
): Promise<string> {
  const { image, srcinfoName, srcinfoTimeoutMs } = settings;
  return await client.withEngine(async (engine) => {
    const stale = engine.getContainer(srcinfoName);
    await removeContainer(stale);
    const container = await createContainer(
      engine,
      {
        name: srcinfoName,
        Image: image,
        Entrypoint: SRCINFO_ENTRYPOINT,
        Labels: { [CONFIG_LABEL]: settings.settingsKey },
        HostConfig: hostConfig(settings),
      },
      image,
      logger,
    );
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
}
