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
          next(check, ms = 60_000) {
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

/**
 * A reader of the stream as the CLI of the original's v0.4.3 reads it (its framing as the original's
 * docs describe it): an SSE parser after the WHATWG rules (fields `event` and `data`, several `data`
 * lines joined by newlines, a message dispatched at a blank line, `message` when no event name is
 * given) that keeps the messages whose event name is the package base and reads their data as
 * `{"change": <state>}`, `{"log": "<chunk>"}` or `"ping"`; anything else it skips, as that CLI
 * does. It follows until the first done state, as `serene add --install` does.
 */
type LegacyEvent = { change: { state: string; info?: unknown } } | { log: string } | 'ping';

interface Followed {
  events: LegacyEvent[];
  log: string;
  end: { state: string };
  skipped: number;
}

/** Resolves once the stream is open (the subscription is in place) with the end of the following. */
function followAsV043(port: number, base: string): Promise<{ done: Promise<Followed> }> {
  return new Promise((connected, reject) => {
    let resolve!: (followed: Followed) => void;
    const done = new Promise<Followed>((resolveDone) => {
      resolve = resolveDone;
    });
    const req = http.get(
      {
        host: '127.0.0.1',
        port,
        path: `/package/${base}/build/logs/subscribe`,
        headers: { Authorization: SECRET },
        agent: false,
      },
      (res) => {
        const events: LegacyEvent[] = [];
        let skipped = 0;
        let log = '';
        let buffer = '';
        let name = '';
        let data: string[] = [];
        const dispatch = () => {
          const event = name === '' ? 'message' : name;
          const text = data.join('\n');
          name = '';
          data = [];
          if (event !== base) {
            skipped++;
            return;
          }
          const parsed = JSON.parse(text) as LegacyEvent;
          events.push(parsed);
          if (typeof parsed === 'object' && 'log' in parsed) log += parsed.log;
          if (
            typeof parsed === 'object' &&
            'change' in parsed &&
            ['success', 'failure', 'fatal', 'cancelled'].includes(parsed.change.state)
          ) {
            req.destroy();
            resolve({ events, log, end: parsed.change, skipped });
          }
        };
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let newline = buffer.search(/\r\n|\r|\n/);
          while (newline !== -1) {
            const line = buffer.slice(0, newline);
            buffer = buffer.slice(newline + (buffer.startsWith('\r\n', newline) ? 2 : 1));
            if (line === '') dispatch();
            else if (!line.startsWith(':')) {
              const colon = line.indexOf(':');
              const field = colon === -1 ? line : line.slice(0, colon);
              let value = colon === -1 ? '' : line.slice(colon + 1);
              if (value.startsWith(' ')) value = value.slice(1);
              if (field === 'event') name = value;
              else if (field === 'data') data.push(value);
            }
            newline = buffer.search(/\r\n|\r|\n/);
          }
        });
        res.on('error', () => {});
        connected({ done });
      },
    );
    req.on('error', reject);
  });
}

async function until(check: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
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

  /** Logs into the build of `base` once its runner runs (its state says running a moment before). */
  const logOnceRunning = (base: string, chunk: string) =>
    until(() => {
      try {
        h.log(base, chunk);
        return true;
      } catch {
        return false;
      }
    });

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
      await logOnceRunning('app', 'first line\n');
      h.log('app', 'second "quoted" line\n\ttabbed\n');

      // a late subscriber: the state now, then the whole log so far in one message
      const late = await open(h.port, 'app');
      const [change, log] = await Promise.all([
        late.next((m) => m.event === 'change'),
        late.next((m) => m.event === 'log'),
      ]);
      const mainFraming = late.messages.filter((m) => m.id !== undefined);
      expect(mainFraming[0]).toBe(change);
      expect(mainFraming[1]).toBe(log);
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
        // (pings may come in between when the machine is slow)
        if (message.event === 'ping' || message.data === '"ping"') continue;
        // main's framing names the package in the id, v0.4.3's in the event
        if (message.id !== undefined) expect(message.id).toBe('app');
        else expect(message.event).toBe('app');
        // every payload is one line of JSON
        expect(message.raw.split('\n')).toHaveLength(message.id === undefined ? 2 : 3);
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
    expect(after.messages.filter((m) => m.event !== 'ping' && m.data !== '"ping"')).toEqual([]);
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
      await logOnceRunning('flood', '');
      const chunk = `${'x'.repeat(64 * 1024 - 1)}\n`;
      // the build writes 25 MB of log as a runner does, a chunk at a time, while one subscriber reads
      // nothing: the writes go on (no back-pressure from it) and that subscriber is dropped. (How fast
      // a write returns is a benchmark's question, not a test's.)
      for (let i = 0; i < 400; i++) {
        h.log('flood', chunk);
        await new Promise((resolve) => setImmediate(resolve));
      }
      await until(() => h.logs.some((line) => /does not keep up/.test(line.message)));
    } finally {
      h.release('flood');
    }
    await h.orchestrator.idle();
    expect((await h.ask('/package/flood/build/latest')).json).toMatchObject({ state: { state: 'success' } });
    // the stalled one was cut off; the reading one saw the end of the build
    await reader.next((m) => m.event === 'change' && m.data === '{"state":"success"}', 60_000);
    const ended = new Promise<void>((resolve) => {
      stalled.res.on('close', resolve);
      stalled.res.on('aborted', resolve);
    });
    stalled.res.resume();
    await ended;
    expect(stalled.messages.some((m) => m.data === '{"state":"success"}')).toBe(false);
    reader.close();
  });

  it('serves the framing of v0.4.3 on the same stream: its reader follows a build, late or early', async () => {
    h.hold('app');
    const early = await followAsV043(h.port, 'app');
    const main = await open(h.port, 'app');
    try {
      await h.ask('/build', {
        method: 'POST',
        body: { packages: ['app'], clean: false, resolve: true, force: true },
      });
      await until(() => running('app'));
      await logOnceRunning('app', 'legacy line one\n');
      // a late joiner gets the replay in its framing too
      const late = await followAsV043(h.port, 'app');
      h.log('app', 'legacy "line" two\n');
      h.release('app');
      const [first, second] = await Promise.all([early.done, late.done]);
      for (const followed of [first, second]) {
        expect(followed.end).toEqual({ state: 'success' });
        expect(followed.log).toContain('legacy line one\nlegacy "line" two\n');
        expect(followed.events).toContainEqual({ change: { state: 'running', info: 'build' } });
        // main's messages were there and were skipped
        expect(followed.skipped).toBeGreaterThan(0);
      }
      const notPing = (event: LegacyEvent) => event !== 'ping';
      expect(first.events.filter(notPing)[0]).toEqual({ change: { state: 'pending' } });
      // the replay: state, then the log so far in one message
      expect(second.events.filter(notPing).slice(0, 2)).toEqual([
        { change: { state: 'running', info: 'build' } },
        { log: 'legacy line one\n' },
      ]);
      // main's reader saw the same build in its own framing
      await main.next((m) => m.event === 'change' && m.data === '{"state":"success"}');
      expect(main.messages.some((m) => m.event === 'log' && m.data === '"legacy line one\\n"')).toBe(true);
    } finally {
      h.release('app');
      main.close();
    }
    await h.orchestrator.idle();
  });

  it('pings a v0.4.3 reader under its package name', async () => {
    const stream = await open(h.port, 'app');
    await stream.next((m) => m.event === 'app' && m.data === '"ping"');
    stream.close();
  });
});
