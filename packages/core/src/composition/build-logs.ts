/**
 * The original's build log files (`logs/<pkgbase>/<started>.log`, one per finished build) and
 * `BUILD_RETENTION`, which removes old builds with their logs and log files.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Store } from '../contracts/store.js';
import { writeFileDurable } from '../durable.js';
import { formatErrorChain } from '../errors.js';
import type { Logger } from '../logger.js';
import type { BuildEvents, EventBus } from '../orchestration/events.js';
import type { Part } from './lifecycle.js';

/** Build states after which a build's log file is written. */
const ENDED = new Set(['success', 'failure', 'fatal', 'cancelled']);

/** Writes the log of a finished build as the original's `logs/<base>/<started>.log` file. */
export async function writeLogFile(
  store: Store,
  logsDir: string,
  base: string,
  started: Date,
): Promise<void> {
  const text = await store.readLog(base, started);
  if (text === undefined) return;
  const dir = path.join(logsDir, base);
  await fs.mkdir(dir, { recursive: true });
  const name = `${started.toISOString().slice(0, 19)}.log`;
  // in full or not at all: a full disk leaves no half log file (and no temporary file)
  await writeFileDurable(path.join(dir, name), text);
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

/** Options of {@link createBuildLogFiles}. */
export interface BuildLogFilesOptions {
  store: Store;
  bus: EventBus<BuildEvents>;
  /** the `logs` folder */
  logsDir: string;
  logger: Logger;
}

/**
 * The part that writes a build's log file once the build has ended. Its stop waits for the files
 * being written (the builds the shutdown cancelled included), so it stops after the orchestrator.
 */
export function createBuildLogFiles(options: BuildLogFilesOptions): Part {
  const { store, bus, logsDir, logger } = options;
  const pending = new Set<Promise<void>>();
  let unsubscribe: (() => void) | undefined;
  return {
    name: 'build log files',
    start() {
      unsubscribe = bus.on('state', (event) => {
        if (!ENDED.has(event.state.state)) return;
        const write = writeLogFile(store, logsDir, event.base, event.started)
          .catch((error) =>
            logger.warn('could not write a build log file', {
              base: event.base,
              error: formatErrorChain(error),
            }),
          )
          .finally(() => pending.delete(write));
        pending.add(write);
      });
    },
    async stop() {
      await Promise.all([...pending]);
      unsubscribe?.();
    },
  };
}
