/**
 * Live build logs over server-sent events. Every event goes out in two framings (docs/compatibility.md#live-logs-sse), one after the
 * other, so that the CLIs of the original's `main` branch and of its release v0.4.3 both follow a
 * build on the same stream (each finds the events it understands and skips the others):
 *
 *     id: <pkgbase>                      event: <pkgbase>
 *     event: change|log|ping             data: {"change": <state>} | {"log": "<chunk>"} | "ping"
 *     data: <JSON of the payload>
 *
 * (left: `main`, see docs/api.md; right: v0.4.3, whose client picks its events by the pkgbase.)
 * A late subscriber gets the current state and the log so far first. Beyond the original, a slow
 * subscriber never slows a build: events are written without waiting, and a subscriber whose
 * unsent output grows past a bound is dropped.
 */
import type { ServerResponse } from 'node:http';
import type { BuildEvents, BuildState, EventBus, HeldUpdate, Logger } from '@serene/core';

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

/** A message of the update gate as a log line. */
export function gateLine(message: string): string {
  return `==> serene update gate: ${message}\n`;
}

/** What a new subscriber of a package with a held update reads first. */
export function heldNotice(held: HeldUpdate): string {
  const reasons = held.reasons.map((reason) => `    ${reason.kind}: ${reason.message}`).join('\n');
  return `update to ${held.version} (${held.revision.slice(0, 12)}) is held for review:\n${reasons}`;
}

/** The ping message: empty id, `data: null`. */
export const PING_FRAME = frame('', 'ping', 'null');

/** One message in the framing of the original's v0.4.3 (its CLI dispatches on the event name). */
export function legacyFrame(base: string, data: string): string {
  return `event: ${base}\ndata: ${data}\n\n`;
}

/** A state change in both framings. */
export function changeFrames(base: string, state: BuildState): string {
  const json = JSON.stringify(state);
  return frame(base, 'change', json) + legacyFrame(base, `{"change":${json}}`);
}

/** A log chunk in both framings. */
export function logFrames(base: string, chunk: string): string {
  const json = JSON.stringify(chunk);
  return frame(base, 'log', json) + legacyFrame(base, `{"log":${json}}`);
}

/** The ping to the subscribers of `base` in both framings. */
export function pingFrames(base: string): string {
  return PING_FRAME + legacyFrame(base, '"ping"');
}

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
      // the update gate's decisions reach subscribers as log lines: every client prints those
      options.bus.on('gate', (event) =>
        this.send(event.base, frame(event.base, 'log', JSON.stringify(gateLine(event.message)))),
      ),
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
  subscribe(base: string, res: ServerResponse, notice?: string): void {
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
      const text = changeFrames(base, replay.state) + logFrames(base, replay.chunks.join(''));
      subscriber.allowance += Buffer.byteLength(text);
      res.write(text);
    } else if (notice === undefined) {
      // sends the headers now, so that the client sees the stream open
      res.flushHeaders();
    }
    if (notice !== undefined) {
      const text = frame(base, 'log', JSON.stringify(gateLine(notice)));
      subscriber.allowance += Buffer.byteLength(text);
      res.write(text);
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
    this.send(base, changeFrames(base, state));
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
    this.send(base, logFrames(base, chunk));
  }

  /**
   * Writes a message to the subscribers of `base` (all, for undefined, with the text for each base)
   * without waiting for any.
   */
  private send(base: string | undefined, message: string | ((base: string) => string)): void {
    const sets =
      base === undefined ? [...this.subscribers.entries()] : [[base, this.subscribers.get(base)] as const];
    for (const [key, set] of sets) {
      if (!set) continue;
      const text = typeof message === 'string' ? message : message(key);
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
    this.timer = setInterval(() => this.send(undefined, pingFrames), this.pingIntervalMs);
    this.timer.unref();
  }

  private stopPings(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
