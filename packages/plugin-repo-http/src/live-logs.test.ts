import * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PING_FRAME } from './live-logs.js';
import { type Harness, SECRET, startHarness } from './testing/harness.js';

/** One SSE message, as its lines say. */
interface Message {
  id: string | undefined;
  event: string | undefined;
  data: string | undefined;
  raw: string;
}

/** An open event stream, parsed as it arrives. */
interface Stream {
  status: number;
  headers: http.IncomingHttpHeaders;
  messages: Message[];
  res: http.IncomingMessage;
  /** resolves once a message satisfies `check` */
  next(check: (message: Message) => boolean, ms?: number): Promise<Message>;
  close(): void;
}

function parse(raw: string): Message {
  const message: Message = { id: undefined, event: undefined, data: undefined, raw };
  for (const line of raw.split('\n')) {
    const colon = line.indexOf(': ');
    const [field, value] =
      colon === -1 ? [line.replace(/:$/, ''), ''] : [line.slice(0, colon), line.slice(colon + 2)];
    if (field === 'id' || field === 'event' || field === 'data') message[field] = value;
  }
  return message;
}

function open(port: number, base: string, secret: string | null = SECRET): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port,
        path: `/package/${base}/build/logs/subscribe`,
        headers: secret === null ? {} : { Authorization: secret },
        agent: false,
      },
      (res) => {
        const messages: Message[] = [];
        const waiters: { check: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end = buffer.indexOf('\n\n');
          while (end !== -1) {
            const message = parse(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
            messages.push(message);
            for (const waiter of [...waiters]) {
              if (waiter.check(message)) {
                waiters.splice(waiters.indexOf(waiter), 1);
                waiter.resolve(message);
              }
            }
            end = buffer.indexOf('\n\n');
          }
        });
        res.on('error', () => {});
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          messages,
          res,
          next(check, ms = 10_000) {
            const found = messages.find(check);
            if (found) return Promise.resolve(found);
            return new Promise((resolveMessage, rejectMessage) => {
              const timer = setTimeout(() => rejectMessage(new Error('no such message in time')), ms);
              waiters.push({
                check,
                resolve: (message) => {
                  clearTimeout(timer);
                  resolveMessage(message);
                },
              });
            });
          },
          close: () => req.destroy(),
        });
      },
    );
    req.on('error', reject);
  });
}

async function until(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(20);
  }
}

describe('live logs over SSE', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      packages: [
        { base: 'app', pkgver: '1.0' },
        { base: 'flood', pkgver: '1.0' },
      ],
      http: { liveLogs: { pingIntervalMs: 200, maxBufferedBytes: 256 * 1024 } },
    });
    for (const name of ['app', 'flood']) {
      await h.ask('/package/add', {
        method: 'POST',
        body: { replace: false, build: false, source: { type: 'aur', name } },
      });
    }
  });
  afterAll(() => h.close());

  const running = async (base: string) =>
    ((await h.ask(`/package/${base}/build/latest`)).json as { state?: { state: string } } | undefined)?.state
      ?.state === 'running';

  it('refuses unknown packages (404) and missing secrets (401)', async () => {
    expect((await h.ask('/package/ghost/build/logs/subscribe')).status).toBe(404);
    expect((await h.ask('/package/app/build/logs/subscribe', { secret: null })).status).toBe(401);
  });

  it('streams state changes and log chunks in the original framing, and replays them to a late subscriber', async () => {
    const early = await open(h.port, 'app');
    expect(early.status).toBe(200);
    expect(early.headers['content-type']).toBe('text/event-stream');
    expect(early.headers['cache-control']).toBe('no-cache');

    h.hold('app');
    try {
      await h.ask('/build', {
        method: 'POST',
        body: { packages: ['app'], clean: false, resolve: true, force: true },
      });
      await until(() => running('app'));
      h.log('app', 'first line\n');
      h.log('app', 'second "quoted" line\n\ttabbed\n');

      // a late subscriber: the state now, then the whole log so far in one message
      const late = await open(h.port, 'app');
      const [change, log] = await Promise.all([
        late.next((m) => m.event === 'change'),
        late.next((m) => m.event === 'log'),
      ]);
      expect(late.messages[0]).toBe(change);
      expect(late.messages[1]).toBe(log);
      expect(change.raw).toBe('id: app\nevent: change\ndata: {"state":"running","info":"build"}');
      expect(log.raw).toBe(
        'id: app\nevent: log\ndata: "first line\\nsecond \\"quoted\\" line\\n\\ttabbed\\n"',
      );
      expect(JSON.parse(log.data!)).toBe('first line\nsecond "quoted" line\n\ttabbed\n');

      // the early subscriber saw each event as it came
      await early.next(
        (m) => m.event === 'log' && JSON.parse(m.data!) === 'second "quoted" line\n\ttabbed\n',
      );
      const states = early.messages.filter((m) => m.event === 'change').map((m) => JSON.parse(m.data!));
      expect(states[0]).toEqual({ state: 'pending' });
      expect(states).toContainEqual({ state: 'running', info: 'build' });
      for (const message of early.messages) {
        expect(message.id).toBe('app');
        // every payload is one line of JSON
        expect(message.raw.split('\n')).toHaveLength(3);
      }
      h.release('app');
      await Promise.all([
        early.next((m) => m.event === 'change' && m.data === '{"state":"success"}'),
        late.next((m) => m.event === 'change' && m.data === '{"state":"success"}'),
      ]);
      expect(
        late.messages.some(
          (m) => m.event === 'log' && JSON.parse(m.data!).includes('==> Making package: app'),
        ),
      ).toBe(true);
      late.close();
    } finally {
      h.release('app');
      early.close();
    }
    await h.orchestrator.idle();

    // after the build, nothing is replayed: the stream just stays open
    const after = await open(h.port, 'app');
    await after.next((m) => m.event === 'ping');
    expect(after.messages.filter((m) => m.event !== 'ping')).toEqual([]);
    after.close();
  });

  it('pings every subscriber with an empty id and null data', async () => {
    const stream = await open(h.port, 'app');
    const ping = await stream.next((m) => m.event === 'ping');
    expect(`${ping.raw}\n\n`).toBe(PING_FRAME);
    expect(ping.raw).toBe('id: \nevent: ping\ndata: null');
    stream.close();
  });

  it('drops a subscriber that stops reading, without slowing the build', async () => {
    const stalled = await open(h.port, 'flood');
    const reader = await open(h.port, 'flood');
    stalled.res.pause();
    h.hold('flood');
    try {
      await h.ask('/build', {
        method: 'POST',
        body: { packages: ['flood'], clean: false, resolve: true, force: true },
      });
      await until(() => running('flood'));
      const chunk = `${'x'.repeat(64 * 1024 - 1)}\n`;
      // the build writes 25 MB of log as a runner does, a chunk at a time; each write returns at once
      let slowest = 0;
      for (let i = 0; i < 400; i++) {
        const begin = performance.now();
        h.log('flood', chunk);
        slowest = Math.max(slowest, performance.now() - begin);
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(slowest).toBeLessThan(50);
      await until(() => h.logs.some((line) => /does not keep up/.test(line.message)));
    } finally {
      h.release('flood');
    }
    await h.orchestrator.idle();
    expect((await h.ask('/package/flood/build/latest')).json).toMatchObject({ state: { state: 'success' } });
    // the stalled one was cut off; the reading one saw the end of the build
    await reader.next((m) => m.event === 'change' && m.data === '{"state":"success"}', 20_000);
    const ended = new Promise<void>((resolve) => {
      stalled.res.on('close', resolve);
      stalled.res.on('aborted', resolve);
    });
    stalled.res.resume();
    await ended;
    expect(stalled.messages.some((m) => m.data === '{"state":"success"}')).toBe(false);
    reader.close();
  });
});
