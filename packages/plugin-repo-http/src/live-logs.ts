/**
 * Live build logs over server-sent events, framed as the original's `main` branch (docs/compatibility.md#live-logs-sse):
 *
 *     id: <pkgbase>
 *     event: change|log|ping
 *     data: <JSON of the payload>
 *
 * A late subscriber gets the current state and the log so far first. Beyond the original, a slow
 * subscriber never slows a build: events are written without waiting, and a subscriber whose
 * unsent output grows past a bound is dropped.
 */
import type { ServerResponse } from 'node:http';
import type { BuildEvents, BuildState, EventBus, Logger } from '@serene/core';

/** Options of {@link LiveLogs}. */
export interface LiveLogsOptions {
  bus: EventBus<BuildEvents>;
  logger: Logger;
  /** @default 10000 (the original's) */
  pingIntervalMs?: number;
  /**
   * A subscriber with more than this many bytes written but not yet sent (beyond its replay) is
   * dropped.
   * @default 1 MiB
   */
  maxBufferedBytes?: number;
  /**
   * The log kept per running build for late subscribers; past it, the oldest chunks are dropped.
   * @default 8 MiB
   */
  replayLimitBytes?: number;
}

interface Subscriber {
  res: ServerResponse;
  /** unsent bytes allowed before the subscriber counts as stalled */
  allowance: number;
}

interface Replay {
  state: BuildState;
  chunks: string[];
  length: number;
}

const DONE_STATES = new Set(['cancelled', 'success', 'failure', 'fatal']);

/** One SSE message. */
export function frame(id: string, event: string, data: string): string {
  return `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`;
}

/** The ping message: empty id, `data: null`. */
export const PING_FRAME = frame('', 'ping', 'null');

/**
 * The live log streams of all packages: subscribers by pkgbase, the replay of running builds, and
 * the pings.
 */
export class LiveLogs {
  private readonly logger: Logger;
  private readonly pingIntervalMs: number;
  private readonly maxBufferedBytes: number;
  private readonly replayLimitBytes: number;
  private readonly subscribers = new Map<string, Set<Subscriber>>();
  private readonly replays = new Map<string, Replay>();
  private readonly unsubscribe: (() => void)[];
  private timer: NodeJS.Timeout | undefined;
  private count = 0;

  constructor(options: LiveLogsOptions) {
    this.logger = options.logger;
    this.pingIntervalMs = options.pingIntervalMs ?? 10_000;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
    this.replayLimitBytes = options.replayLimitBytes ?? 8 * 1024 * 1024;
    this.unsubscribe = [
      options.bus.on('state', (event) => this.onState(event.base, event.state)),
      options.bus.on('log', (event) => this.onLog(event.base, event.chunk)),
    ];
  }

  /** How many subscribers are connected. */
  get size(): number {
    return this.count;
  }

  /**
   * Streams the events of `base` to `res` (headers are written here) until the client leaves or
   * {@link LiveLogs.close} is called.
   */
  subscribe(base: string, res: ServerResponse): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      // reverse proxies (nginx) must not hold the stream back
      'X-Accel-Buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    const subscriber: Subscriber = { res, allowance: this.maxBufferedBytes };
    const replay = this.replays.get(base);
    if (replay) {
      const text =
        frame(base, 'change', JSON.stringify(replay.state)) +
        frame(base, 'log', JSON.stringify(replay.chunks.join('')));
      subscriber.allowance += Buffer.byteLength(text);
      res.write(text);
    } else {
      // sends the headers now, so that the client sees the stream open
      res.flushHeaders();
    }
    let set = this.subscribers.get(base);
    if (!set) {
      set = new Set();
      this.subscribers.set(base, set);
    }
    set.add(subscriber);
    this.count++;
    res.once('close', () => this.remove(base, subscriber));
    this.startPings();
  }

  /** Ends every stream and stops listening to the bus. */
  close(): void {
    for (const off of this.unsubscribe) off();
    this.unsubscribe.length = 0;
    for (const set of this.subscribers.values()) for (const subscriber of set) subscriber.res.end();
    this.subscribers.clear();
    this.replays.clear();
    this.count = 0;
    this.stopPings();
  }

  // --- internal helpers ---

  private onState(base: string, state: BuildState): void {
    if (DONE_STATES.has(state.state)) {
      this.replays.delete(base);
    } else {
      const replay = this.replays.get(base);
      if (replay) replay.state = state;
      else this.replays.set(base, { state, chunks: [], length: 0 });
    }
    this.send(base, frame(base, 'change', JSON.stringify(state)));
  }

  private onLog(base: string, chunk: string): void {
    const replay = this.replays.get(base);
    if (replay) {
      replay.chunks.push(chunk);
      replay.length += chunk.length;
      while (replay.length > this.replayLimitBytes && replay.chunks.length > 1) {
        replay.length -= replay.chunks.shift()!.length;
      }
    }
    this.send(base, frame(base, 'log', JSON.stringify(chunk)));
  }

  /** Writes a message to the subscribers of `base` (all, for undefined) without waiting for any. */
  private send(base: string | undefined, text: string): void {
    const sets =
      base === undefined ? [...this.subscribers.entries()] : [[base, this.subscribers.get(base)] as const];
    for (const [key, set] of sets) {
      if (!set) continue;
      for (const subscriber of set) {
        const { res } = subscriber;
        if (res.writableLength > subscriber.allowance) {
          this.logger.info('dropping a live log subscriber that does not keep up', {
            base: key,
            buffered: res.writableLength,
          });
          this.remove(key, subscriber);
          res.destroy();
          continue;
        }
        // the replay was sent or is on its way: from now on only the bound counts
        if (res.writableLength === 0) subscriber.allowance = this.maxBufferedBytes;
        res.write(text);
      }
    }
  }

  private remove(base: string, subscriber: Subscriber): void {
    const set = this.subscribers.get(base);
    if (!set?.delete(subscriber)) return;
    this.count--;
    if (set.size === 0) this.subscribers.delete(base);
    if (this.count === 0) this.stopPings();
  }

  private startPings(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.send(undefined, PING_FRAME), this.pingIntervalMs);
    this.timer.unref();
  }

  private stopPings(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
