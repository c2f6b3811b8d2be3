/**
 * The server-wide live stream (`GET /events`, beyond the original): every build state change of
 * every package over server-sent events, framed as the per-package stream (`id: <pkgbase>`,
 * `event: change`, JSON data, pings), so that one connection follows the whole server.
 *
 *     event: queue            (first, once: the builds queued and running, QueueEntry[])
 *     id: <pkgbase>
 *     event: change
 *     data: {"base":…,"started":…,"reason":…,"state":{…}}
 *
 * Log chunks are not sent here (they would make every client pay for every build's output): the
 * per-package stream carries them. A slow subscriber never slows a build: events are written
 * without waiting, and a subscriber whose unsent output grows past a bound is dropped.
 */
import type { ServerResponse } from 'node:http';
import type { BuildEvents, EventBus, Logger } from '@serene/core';
import { frame, PING_FRAME } from './live-logs.js';
import { stateEvent } from './wire.js';

/** Options of {@link LiveEvents}. */
export interface LiveEventsOptions {
  bus: EventBus<BuildEvents>;
  logger: Logger;
  /** @default 10000 */
  pingIntervalMs?: number;
  /** a subscriber with more unsent bytes than this is dropped @default 1 MiB */
  maxBufferedBytes?: number;
}

/** The subscribers of the server-wide stream. */
export class LiveEvents {
  private readonly logger: Logger;
  private readonly pingIntervalMs: number;
  private readonly maxBufferedBytes: number;
  private readonly subscribers = new Set<ServerResponse>();
  private readonly unsubscribe: () => void;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: LiveEventsOptions) {
    this.logger = options.logger;
    this.pingIntervalMs = options.pingIntervalMs ?? 10_000;
    this.maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
    this.unsubscribe = options.bus.on('state', (event) =>
      this.send(frame(event.base, 'change', JSON.stringify(stateEvent(event)))),
    );
  }

  /** How many subscribers are connected. */
  get size(): number {
    return this.subscribers.size;
  }

  /**
   * Streams every state change to `res` (headers are written here), after `snapshot` (the JSON of
   * the queue now) as a `queue` event, until the client leaves or {@link LiveEvents.close}.
   */
  subscribe(res: ServerResponse, snapshot: string): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      'X-Accel-Buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    res.write(frame('', 'queue', snapshot));
    this.subscribers.add(res);
    res.once('close', () => this.remove(res));
    if (!this.timer) {
      this.timer = setInterval(() => this.send(PING_FRAME), this.pingIntervalMs);
      this.timer.unref();
    }
  }

  /** Ends every stream and stops listening to the bus. */
  close(): void {
    this.unsubscribe();
    for (const res of this.subscribers) res.end();
    this.subscribers.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private send(text: string): void {
    for (const res of this.subscribers) {
      if (res.writableLength > this.maxBufferedBytes) {
        this.logger.info('dropping a live event subscriber that does not keep up', {
          buffered: res.writableLength,
        });
        this.remove(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }

  private remove(res: ServerResponse): void {
    this.subscribers.delete(res);
    if (this.subscribers.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
