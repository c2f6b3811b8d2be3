/**
 * One run of a prepared container: started with its output attached (demultiplexed and passed on
 * as it arrives), followed to its exit, and killed on timeout or abort.
 */
import type { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type Dockerode from 'dockerode';
import { createDemuxer } from './demux.js';

/** How one container run ended. */
export interface ContainerRun {
  exitCode: number | null;
  aborted?: 'timeout' | 'cancelled';
  started: Date;
  ended: Date;
  logs: string;
}

/** What {@link follow} is told. */
export interface FollowOptions {
  /** how long the whole job may take, counted from `since` */
  timeoutMs?: number | undefined;
  signal: AbortSignal;
  onLog: (text: string) => void;
  /** when the job began (ms since the epoch) */
  since: number;
}

/**
 * Starts a prepared container and follows it to its exit: output demultiplexed and passed on as it
 * arrives, killed on timeout or abort.
 */
export async function follow(container: Dockerode.Container, opts: FollowOptions): Promise<ContainerRun> {
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
}
