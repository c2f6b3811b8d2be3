import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
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
import {
  createDockerRunner,
  DOCKER_RUNNER_NAME,
  type DockerRunner,
  type DockerRunnerOptions,
  DockerUnreachableError,
} from './docker-runner.js';
import type { DockerTls } from './docker-url.js';

/** One Docker Engine of a pool, as configured (`ENGINES`). */
export interface DockerEngineSpec {
  /** unique name, for logs, the API and metrics */
  name: string;
  /** where it listens: a unix socket, `tcp://`, `https://` or `ssh://user@host` */
  url: string;
  /**
   * the architecture it builds for, as pacman names it
   * @default what the engine reports in `GET /info`
   */
  arch?: string | undefined;
  /**
   * builds at once on this engine
   * @default 1
   */
  capacity?: number | undefined;
  /** labels packages can be pinned to (`big`) */
  labels?: readonly string[] | undefined;
  /** TLS material (PEM contents) of a `tcp://` engine */
  tls?: DockerTls | undefined;
  /** private key (PEM contents) of an `ssh://` engine */
  sshPrivateKey?: string | Buffer | undefined;
}

/** Defaults of {@link DockerEnginePoolOptions}. */
export const ENGINE_POOL_DEFAULTS = {
  capacity: 1,
  pingIntervalMs: 10_000,
  /** how long after a failed build the engine is watched for having gone away */
  lostCheckMs: 3_000,
} as const;

/** Options of {@link createDockerEnginePool}. */
export interface DockerEnginePoolOptions {
  engines: readonly DockerEngineSpec[];
  /** options every engine's runner shares (image, prefix, resources, ...); `url` and `tls` are each engine's */
  runner?: Omit<DockerRunnerOptions, 'url' | 'tls' | 'sshPrivateKey' | 'logger'>;
  /** pkgbase → label: the package is built only on engines with that label */
  pins?: Readonly<Record<string, string>>;
  /**
   * how often every engine is pinged; a down engine is taken back when it answers
   * @default 10_000
   */
  pingIntervalMs?: number;
  /** @default 3_000 */
  lostCheckMs?: number;
  /** @default a logger that drops everything */
  logger?: Logger;
  /** makes an engine's runner (tests) @default createDockerRunner */
  createRunner?: (options: DockerRunnerOptions) => DockerRunner;
}

/** One engine as the pool sees it now. */
export interface DockerEngineStatus {
  name: string;
  url: string;
  /** undefined until the engine answered once (when not configured) */
  arch: string | undefined;
  /** `unknown` before the first ping */
  state: 'up' | 'down' | 'unknown';
  capacity: number;
  labels: readonly string[];
  /** builds running on it now (`.SRCINFO` generations too) */
  running: number;
  /** pkgbases of the builds running on it now */
  builds: string[];
  /** builds started on it since the start */
  started: number;
  /** builds taken away from it because it went away */
  lost: number;
  /** why it is down */
  reason?: string;
  /** when the state last changed */
  since: Date;
}

/** A {@link Runner} over several Docker Engines; see {@link createDockerEnginePool}. */
export interface DockerEnginePool extends Runner {
  /** the engines, their state and load */
  engines(): DockerEngineStatus[];
  /** pings every engine now (the periodic check); resolves when done */
  check(): Promise<void>;
  /** sum of the engines' capacities: the default of the server's concurrency limit */
  readonly capacity: number;
}

interface Engine {
  spec: DockerEngineSpec;
  runner: DockerRunner;
  status: DockerEngineStatus;
  /** builds that may not start here until it is marked up again */
  initialized: boolean;
}

/** The key of the engine a package was built on last for an architecture: `base/arch`. */
function affinityKey(base: string, arch: string | undefined): string {
  return `${base}/${arch ?? ''}`;
}

/** The build ended because its engine went away; it is run again elsewhere. */
class EngineLost extends Error {}

/**
 * A {@link Runner} that places each build on one of several Docker Engines, each driven by its own
 * {@link createDockerRunner}: an engine of the job's architecture (`job.arch`), with the package's
 * pinned label if it has one, with a free slot, preferring the engine that built the package last (its
 * container holds the incremental state) and then the least loaded. A build waits for a slot (its
 * timeout and cancellation count while it waits). An engine that stops answering is marked down; a
 * build it was running is run again on another engine (the output folder emptied first, a note in the
 * log), so the caller sees one result, never a failure caused by the lost engine. A down engine is
 * pinged every `pingIntervalMs` and taken back (its leftovers removed) when it answers again.
 */
export function createDockerEnginePool(options: DockerEnginePoolOptions): DockerEnginePool {
  if (options.engines.length === 0)
    throw new InputError('a pool of Docker Engines needs at least one engine');
  const names = new Set<string>();
  for (const spec of options.engines) {
    if (names.has(spec.name)) throw new InputError(`two Docker Engines are named '${spec.name}'`);
    names.add(spec.name);
  }
  const logger = (options.logger ?? createNoopLogger()).child({ runner: DOCKER_RUNNER_NAME });
  const make = options.createRunner ?? createDockerRunner;
  const pins = options.pins ?? {};
  const pingIntervalMs = options.pingIntervalMs ?? ENGINE_POOL_DEFAULTS.pingIntervalMs;
  const lostCheckMs = options.lostCheckMs ?? ENGINE_POOL_DEFAULTS.lostCheckMs;

  const engines: Engine[] = options.engines.map((spec) => {
    const runner = make({
      ...options.runner,
      url: spec.url,
      ...(spec.tls ? { tls: spec.tls } : {}),
      ...(spec.sshPrivateKey !== undefined ? { sshPrivateKey: spec.sshPrivateKey } : {}),
      logger: (options.logger ?? createNoopLogger()).child({ engine: spec.name }),
    });
    return {
      spec,
      runner,
      initialized: false,
      status: {
        name: spec.name,
        url: runner.endpoint,
        arch: spec.arch,
        state: 'unknown',
        capacity: spec.capacity ?? ENGINE_POOL_DEFAULTS.capacity,
        labels: [...(spec.labels ?? [])],
        running: 0,
        builds: [],
        started: 0,
        lost: 0,
        since: new Date(),
      },
    };
  });
  const capacity = engines.reduce((sum, engine) => sum + engine.status.capacity, 0);
  /** the engine that built a package last, for each architecture (see affinityKey) */
  const lastEngine = new Map<string, Engine>();
  /** woken whenever a slot frees or an engine changes state */
  let waiters: (() => void)[] = [];
  const wake = () => {
    const woken = waiters;
    waiters = [];
    for (const resolve of woken) resolve();
  };
  let timer: NodeJS.Timeout | undefined;
  let checking: Promise<void> | undefined;
  let disposed = false;

  const setState = (engine: Engine, state: 'up' | 'down', reason?: string) => {
    const status = engine.status;
    if (status.state !== state) {
      status.state = state;
      status.since = new Date();
      if (state === 'down') logger.warn('Docker Engine is down', { engine: status.name, reason });
      else logger.info('Docker Engine is up', { engine: status.name, arch: status.arch });
    }
    if (state === 'down') status.reason = reason ?? 'it does not answer';
    else delete status.reason;
    wake();
  };

  /** Reads the engine's architecture if not configured, and does its start chores once it answers. */
  const bringUp = async (engine: Engine): Promise<void> => {
    try {
      const info = await engine.runner.engineInfo();
      if (engine.spec.arch === undefined) engine.status.arch = info.arch;
      else if (info.arch !== engine.spec.arch) {
        logger.info('Docker Engine architecture set by configuration', {
          engine: engine.status.name,
          configured: engine.spec.arch,
          reported: info.arch,
        });
      }
    } catch (error) {
      setState(engine, 'down', formatErrorChain(error));
      return;
    }
    if (!engine.initialized) {
      // image pull, leftovers, the image schedule: never rejects for an engine that is away
      await engine.runner.init?.();
      engine.initialized = true;
    } else {
      // taken back: what the outage left running is a leftover
      await engine.runner.removeLeftovers();
    }
    setState(engine, 'up');
  };

  const check = async (): Promise<void> => {
    checking ??= (async () => {
      await Promise.all(
        engines.map(async (engine) => {
          if (engine.status.state !== 'up') {
            await bringUp(engine);
            return;
          }
          if (!(await engine.runner.ping())) setState(engine, 'down', 'it stopped answering pings');
        }),
      );
    })().finally(() => {
      checking = undefined;
    });
    return await checking;
  };

  const matches = (engine: Engine, arch: string | undefined, label: string | undefined): boolean =>
    (arch === undefined || arch === 'any' || engine.status.arch === arch) &&
    (label === undefined || engine.status.labels.includes(label));

  /** The engine a build goes to now, or undefined when none has a free slot. */
  const pick = (base: string | undefined, arch: string | undefined, label: string | undefined) => {
    const free = engines.filter(
      (engine) =>
        engine.status.state === 'up' &&
        engine.status.running < engine.status.capacity &&
        matches(engine, arch, label),
    );
    const last = base === undefined ? undefined : lastEngine.get(affinityKey(base, arch));
    if (last && free.includes(last)) return last;
    free.sort((a, b) => a.status.running / a.status.capacity - b.status.running / b.status.capacity);
    return free[0];
  };

  /** Why no engine can ever take the build, if none can (an engine of unknown architecture may). */
  const impossible = (arch: string | undefined, label: string | undefined): string | undefined => {
    const candidates = engines.filter(
      (engine) =>
        (engine.status.arch === undefined ||
          arch === undefined ||
          arch === 'any' ||
          engine.status.arch === arch) &&
        (label === undefined || engine.status.labels.includes(label)),
    );
    if (candidates.length > 0) return undefined;
    const what = [arch && arch !== 'any' ? `architecture ${arch}` : '', label ? `label '${label}'` : '']
      .filter(Boolean)
      .join(' and ');
    return `no Docker Engine builds for ${what} (engines: ${engines
      .map(
        (e) =>
          `${e.status.name} ${e.status.arch ?? '?'}${e.status.labels.length ? ` [${e.status.labels.join(', ')}]` : ''}`,
      )
      .join('; ')})`;
  };

  /** Waits for a free engine; undefined when the signal aborted or the deadline passed first. */
  const acquire = async (
    base: string | undefined,
    arch: string | undefined,
    label: string | undefined,
    signal: AbortSignal | undefined,
    deadline: number | undefined,
  ): Promise<Engine | 'timeout' | 'cancelled'> => {
    for (;;) {
      if (disposed) throw new PluginError(DOCKER_RUNNER_NAME, 'the runner was disposed');
      if (signal?.aborted) return 'cancelled';
      if (deadline !== undefined && Date.now() >= deadline) return 'timeout';
      const reason = impossible(arch, label);
      if (reason) throw new PluginError(DOCKER_RUNNER_NAME, reason);
      const engine = pick(base, arch, label);
      if (engine) {
        engine.status.running += 1;
        return engine;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(limit);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        waiters.push(done);
        signal?.addEventListener('abort', done, { once: true });
        const limit =
          deadline === undefined ? undefined : setTimeout(done, Math.max(0, deadline - Date.now()));
      });
    }
  };

  const release = (engine: Engine) => {
    engine.status.running -= 1;
    wake();
  };

  /** After a failed build: did its engine go away (a stopping engine kills its containers first)? */
  const wentAway = async (engine: Engine): Promise<boolean> => {
    const until = Date.now() + lostCheckMs;
    for (;;) {
      if (!(await engine.runner.ping())) return true;
      if (Date.now() >= until) return false;
      await sleep(Math.min(500, lostCheckMs), undefined, { ref: false });
    }
  };

  const emptyFolder = async (dir: string) => {
    for (const entry of await fs.readdir(dir).catch(() => [] as string[])) {
      await fs.rm(path.join(dir, entry), { recursive: true, force: true });
    }
  };

  const abortedResult = (aborted: 'timeout' | 'cancelled', onLog: (text: string) => void): RunResult => {
    const message =
      aborted === 'timeout'
        ? 'build timed out while it waited for a free Docker Engine'
        : 'build was cancelled while it waited for a free Docker Engine';
    const note = `\n:: SERENE :: ${message}\n`;
    onLog(note);
    const now = new Date();
    return {
      success: false,
      exitCode: null,
      aborted,
      message,
      started: now,
      ended: now,
      logs: note,
      srcinfo: null,
      packages: [],
      stats: null,
    };
  };

  const pool: DockerEnginePool = {
    name: DOCKER_RUNNER_NAME,
    capacity,

    engines: () =>
      engines.map((engine) => ({
        ...engine.status,
        labels: [...engine.status.labels],
        builds: [...engine.status.builds],
      })),

    check,

    async init() {
      await check();
      for (const engine of engines) {
        if (engine.status.state !== 'up') {
          logger.warn('Docker Engine not reachable at start; builds go to the others until it answers', {
            engine: engine.status.name,
            reason: engine.status.reason,
          });
        }
      }
      timer = setInterval(() => {
        check().catch((error) => logger.error('engine check failed', { error: formatErrorChain(error) }));
      }, pingIntervalMs);
      timer.unref();
    },

    async run(job: RunnerJob, runOptions: RunOptions = {}): Promise<RunResult> {
      const since = Date.now();
      const deadline = job.timeoutMs === undefined ? undefined : since + job.timeoutMs;
      const label = pins[job.base];
      const onLog = (text: string) => {
        try {
          runOptions.onLog?.(text);
        } catch (error) {
          logger.warn('a log listener threw', { base: job.base, error: formatErrorChain(error) });
        }
      };
      let earlier = '';
      for (;;) {
        const engine = await acquire(job.base, job.arch, label, runOptions.signal, deadline);
        if (typeof engine === 'string') {
          const result = abortedResult(engine, onLog);
          return { ...result, logs: earlier + result.logs };
        }
        engine.status.started += 1;
        engine.status.builds.push(job.base);
        lastEngine.set(affinityKey(job.base, job.arch), engine);
        const note = `:: SERENE :: building on Docker Engine ${engine.status.name} (${engine.status.arch})\n`;
        onLog(note);
        try {
          const remaining = deadline === undefined ? undefined : Math.max(1, deadline - Date.now());
          const result = await engine.runner
            .run(
              { ...job, ...(remaining === undefined ? {} : { timeoutMs: remaining }) },
              { onLog, ...(runOptions.signal ? { signal: runOptions.signal } : {}) },
            )
            .catch((error: unknown) => {
              if (error instanceof DockerUnreachableError) throw new EngineLost(formatErrorChain(error));
              throw error;
            });
          if (!result.success && result.aborted === undefined && (await wentAway(engine))) {
            throw new EngineLost('it stopped answering during the build');
          }
          return { ...result, logs: earlier + note + result.logs, engine: engine.status.name };
        } catch (error) {
          if (!(error instanceof EngineLost)) throw error;
          engine.status.lost += 1;
          setState(engine, 'down', error.message);
          lastEngine.delete(affinityKey(job.base, job.arch));
          await emptyFolder(job.outputDir);
          const again = `\n:: SERENE :: Docker Engine ${engine.status.name} went away during the build (${error.message}); the build starts again on another engine\n`;
          onLog(again);
          earlier += note + again;
          logger.warn('build taken from a lost Docker Engine', {
            base: job.base,
            engine: engine.status.name,
          });
        } finally {
          engine.status.builds.splice(engine.status.builds.indexOf(job.base), 1);
          release(engine);
        }
      }
    },

    async printSrcinfo(sourceDir, printOptions = {}) {
      for (;;) {
        const engine = await acquire(undefined, undefined, undefined, printOptions.signal, undefined);
        if (typeof engine === 'string') {
          throw new PluginError(DOCKER_RUNNER_NAME, '.SRCINFO generation was cancelled');
        }
        try {
          return await engine.runner.printSrcinfo(sourceDir, printOptions);
        } catch (error) {
          if (!(error instanceof DockerUnreachableError)) throw error;
          setState(engine, 'down', formatErrorChain(error));
        } finally {
          release(engine);
        }
      }
    },

    async remove(base, removeOptions = {}) {
      const arch = removeOptions.arch;
      for (const key of [...lastEngine.keys()]) {
        if (arch === undefined ? key.startsWith(`${base}/`) : key === affinityKey(base, arch))
          lastEngine.delete(key);
      }
      // the container may be on any engine (of the architecture); one that is down keeps its copy until
      // it is removed there
      await Promise.all(
        engines
          .filter((engine) => engine.status.state === 'up' && matches(engine, arch, undefined))
          .map((engine) =>
            (engine.runner.remove?.(base) ?? Promise.resolve()).catch((error) => {
              if (!(error instanceof DockerUnreachableError)) throw error;
              setState(engine, 'down', formatErrorChain(error));
            }),
          ),
      );
    },

    async dispose() {
      if (disposed) return;
      disposed = true;
      if (timer) clearInterval(timer);
      wake();
      await checking?.catch(() => undefined);
      await Promise.all(engines.map((engine) => engine.runner.dispose?.()));
    },
  };
  return pool;
}
