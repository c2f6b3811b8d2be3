/**
 * The operator's endpoints beyond the original: the queue, recent builds of every package, the
 * server-wide live stream, cancelling a build, and the server's details; against a real server
 * (knex SQLite store, orchestrator, the gated instant runner).
 */
import * as http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeSigner, type Harness, SECRET, startHarness } from './testing/harness.js';

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
});

async function start(options: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  const h = await startHarness({
    packages: [
      { base: 'alpha', pkgver: '1.0' },
      { base: 'beta', pkgver: '2.0' },
      { base: 'gamma', pkgver: '3.0' },
    ],
    ...options,
  });
  harnesses.push(h);
  return h;
}

async function until(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(20);
  }
}

const add = (h: Harness, name: string) =>
  h.ask('/package/add', {
    method: 'POST',
    body: { replace: false, build: false, source: { type: 'aur', name } },
  });
const build = (h: Harness, packages: string[]) =>
  h.ask('/build', { method: 'POST', body: { packages, clean: false, resolve: false, force: true } });

/** Opens a server-sent event stream and collects its messages. */
function stream(h: Harness, pathname: string, secret: string | null = SECRET) {
  const messages: { id: string | undefined; event: string; data: string }[] = [];
  let status = 0;
  let buffer = '';
  const req = http.get(
    { host: '127.0.0.1', port: h.port, path: pathname, headers: secret ? { Authorization: secret } : {} },
    (res) => {
      status = res.statusCode ?? 0;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(
            block
              .split('\n')
              .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
          );
          messages.push({ id: fields.id, event: fields.event ?? 'message', data: fields.data ?? '' });
          end = buffer.indexOf('\n\n');
        }
      });
    },
  );
  req.on('error', () => {});
  return {
    messages,
    get status() {
      return status;
    },
    close: () => req.destroy(),
  };
}

describe('GET /queue and POST /package/{name}/cancel', () => {
  it('shows queued and running builds, cancels each, records who asked, and refuses what it should', async () => {
    const h = await start({ http: { allowReads: false } });
    for (const name of ['alpha', 'beta', 'gamma']) expect((await add(h, name)).status).toBe(200);
    h.hold('alpha');
    h.hold('beta');
    expect((await h.ask('/queue')).json).toEqual([]);
    // nothing to cancel: 409; unknown package: 404; bad name: 400; no secret: 401; wrong one: 403
    const idle = await h.ask('/package/alpha/cancel', { method: 'POST' });
    expect([idle.status, idle.text]).toEqual([409, 'package alpha has no build queued or running']);
    expect((await h.ask('/package/nope/cancel', { method: 'POST' })).status).toBe(404);
    expect((await h.ask('/package/.bad/cancel', { method: 'POST' })).status).toBe(400);
    expect((await h.ask('/package/alpha/cancel', { method: 'POST', secret: null })).status).toBe(401);
    expect((await h.ask('/package/alpha/cancel', { method: 'POST', secret: 'wrong' })).status).toBe(403);
    expect((await h.ask('/queue', { secret: null })).status).toBe(401);

    expect((await build(h, ['alpha', 'beta'])).status).toBe(200);
    await until(async () => ((await h.ask('/queue')).json as unknown[]).length === 2);
    await until(async () =>
      ((await h.ask('/queue')).json as { phase: string }[]).every((entry) => entry.phase === 'running'),
    );
    const queue = (await h.ask('/queue')).json as Record<string, unknown>[];
    expect(queue.map((entry) => entry.base).sort()).toEqual(['alpha', 'beta']);
    // the one engine of the runner carries both: its load and its builds
    expect((await h.ask('/engines')).json).toMatchObject([
      { name: 'gated', running: 2, builds: ['alpha', 'beta'] },
    ]);
    expect(queue[0]).toMatchObject({
      reason: 'manual',
      state: { state: 'running', info: 'build' },
      phase: 'running',
      waiting_for: [],
      engine: 'gated',
      architecture: 'x86_64',
    });
    expect(Object.keys(queue[0]!).sort()).toEqual(
      ['architecture', 'base', 'engine', 'phase', 'reason', 'started', 'state', 'waiting_for'].sort(),
    );

    const cancelled = await h.ask('/package/alpha/cancel', { method: 'POST' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.json).toMatchObject({ base: 'alpha', phase: 'running' });
    // the gated runner ends when its build is aborted only once released (as a real one stops)
    h.release('alpha');
    await until(
      async () =>
        ((await h.ask('/package/alpha/build/latest')).json as { state: { state: string } }).state.state ===
        'cancelled',
    );
    const latest = (await h.ask('/package/alpha/build/latest')).json as { state: unknown; ended: unknown };
    // the name is the rest of the secret's line in authorized_secrets
    expect(latest.state).toEqual({ state: 'cancelled', info: 'build was cancelled by tester@laptop' });
    expect(latest.ended).not.toBeNull();
    expect(((await h.ask('/queue')).json as { base: string }[]).map((entry) => entry.base)).toEqual(['beta']);
    // cancelled twice: the second time there is nothing left
    expect((await h.ask('/package/alpha/cancel', { method: 'POST' })).status).toBe(409);
    h.release('beta');
    await until(async () => ((await h.ask('/queue')).json as unknown[]).length === 0);
  });

  it('names a secret without a comment by the start of its token', async () => {
    const h = await start();
    const fs = await import('node:fs/promises');
    const { secretToken } = await import('./auth.js');
    await fs.writeFile(h.secretsFile, `${secretToken(SECRET)}\n`);
    await until(async () => (await h.ask('/queue')).status === 200);
    await add(h, 'alpha');
    h.hold('alpha');
    await build(h, ['alpha']);
    await until(async () => ((await h.ask('/queue')).json as unknown[]).length === 1);
    expect((await h.ask('/package/alpha/cancel', { method: 'POST' })).status).toBe(200);
    h.release('alpha');
    await until(async () => ((await h.ask('/queue')).json as unknown[]).length === 0);
    const latest = (await h.ask('/package/alpha/build/latest')).json as { state: { info: string } };
    expect(latest.state.info).toBe(`build was cancelled by secret ${secretToken(SECRET).slice(0, 8)}`);
  });
});

describe('GET /builds', () => {
  it('lists the newest builds of every package together, newest first, a page at a time', async () => {
    const h = await start();
    for (const name of ['alpha', 'beta', 'gamma']) await add(h, name);
    let done = 0;
    for (const name of ['alpha', 'beta', 'gamma', 'alpha']) {
      expect((await build(h, [name])).status).toBe(200);
      done++;
      await until(async () => {
        const builds = (await h.ask('/builds')).json as { state: { state: string } }[];
        return builds.length === done && builds[0]?.state.state === 'success';
      });
    }
    const all = (await h.ask('/builds')).json as { base: string; started: string; state: unknown }[];
    expect(all.map((entry) => entry.base)).toEqual(['alpha', 'gamma', 'beta', 'alpha']);
    expect(all[0]?.state).toEqual({ state: 'success' });
    const page = (await h.ask('/builds?count=2')).json as { base: string; started: string }[];
    expect(page.map((entry) => entry.base)).toEqual(['alpha', 'gamma']);
    const next = (await h.ask(`/builds?count=2&before=${encodeURIComponent(page[1]!.started)}`)).json as {
      base: string;
    }[];
    expect(next.map((entry) => entry.base)).toEqual(['beta', 'alpha']);
    // each ran on the runner's one engine, named after it, for the primary architecture
    expect(
      all.map((entry) => [
        (entry as { engine?: unknown }).engine,
        (entry as { architecture?: unknown }).architecture,
      ]),
    ).toEqual(Array(4).fill(['gated', 'x86_64']));
    // one package's builds, paged too; the original's list of them is unchanged (no engine, no arch)
    const alpha = (await h.ask('/builds?package=alpha')).json as { base: string; started: string }[];
    expect(alpha.map((entry) => entry.base)).toEqual(['alpha', 'alpha']);
    expect(
      (
        (await h.ask(`/builds?package=alpha&before=${encodeURIComponent(alpha[0]!.started)}`))
          .json as unknown[]
      ).length,
    ).toBe(1);
    expect((await h.ask('/builds?package=nothing')).json).toEqual([]);
    expect((await h.ask('/builds?package=a%2Fb')).status).toBe(400);
    const original = (await h.ask('/package/alpha/build')).json as Record<string, unknown>[];
    expect(original.map((entry) => entry.started)).toEqual(alpha.map((entry) => entry.started));
    expect(Object.keys(original[0]!).sort()).toEqual([
      'cpu_system',
      'cpu_user',
      'ended',
      'io_tbr',
      'io_tbw',
      'mem_peak',
      'reason',
      'started',
      'state',
      'version',
    ]);
    expect((await h.ask('/builds?count=1001')).status).toBe(400);
    expect((await h.ask('/builds?count=x')).status).toBe(400);
    expect((await h.ask('/builds?before=yesterday')).status).toBe(400);
    expect((await h.ask('/builds', { secret: null })).status).toBe(401);
  });

  it('needs no secret when reads are allowed, but cancelling still does', async () => {
    const h = await start({ http: { allowReads: true } });
    expect((await h.ask('/builds', { secret: null })).status).toBe(200);
    expect((await h.ask('/queue', { secret: null })).status).toBe(200);
    expect((await h.ask('/server', { secret: null })).status).toBe(200);
    expect((await h.ask('/engines', { secret: null })).status).toBe(200);
    expect((await h.ask('/package/alpha/cancel', { method: 'POST', secret: null })).status).toBe(401);
  });
});

describe('GET /events', () => {
  it('streams the queue first, then every state change of every package', async () => {
    const h = await start({ http: { liveLogs: { pingIntervalMs: 100 } } });
    for (const name of ['alpha', 'beta']) await add(h, name);
    h.hold('alpha');
    await build(h, ['alpha']);
    await until(async () => ((await h.ask('/queue')).json as unknown[]).length === 1);
    const events = stream(h, '/events');
    await until(() => events.messages.length >= 1);
    expect(events.status).toBe(200);
    const first = events.messages[0]!;
    expect(first.event).toBe('queue');
    expect((JSON.parse(first.data) as { base: string }[]).map((entry) => entry.base)).toEqual(['alpha']);
    await build(h, ['beta']);
    h.release('alpha');
    await until(() =>
      ['alpha', 'beta'].every((base) =>
        events.messages.some((m) => m.id === base && JSON.parse(m.data).state.state === 'success'),
      ),
    );
    const beta = events.messages
      .filter((m) => m.event === 'change' && m.id === 'beta')
      .map((m) => JSON.parse(m.data));
    const states = beta.map((event) => event.state.state);
    expect([states[0], states.at(-1)]).toEqual(['pending', 'success']);
    expect(states.slice(1, -1).every((state) => state === 'running')).toBe(true);
    expect(beta.slice(1, -1).map((event) => event.state.info)).toContain('build');
    expect(beta[0]).toMatchObject({ base: 'beta', reason: 'manual' });
    expect(Object.keys(beta[0]).sort()).toEqual(['base', 'reason', 'started', 'state']);
    // log chunks stay on the per-package stream
    expect(events.messages.some((m) => m.event === 'log')).toBe(false);
    await until(() => events.messages.some((m) => m.event === 'ping'));
    events.close();

    const refused = stream(h, '/events', null);
    await until(() => refused.status !== 0);
    expect(refused.status).toBe(401);
    refused.close();
  });
});

describe('GET /server', () => {
  it("shows the server's key fingerprint, engines, packages and queue", async () => {
    const h = await start({ http: { signer: fakeSigner() } });
    await add(h, 'alpha');
    const reply = await h.ask('/server');
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({
      name: 'serene',
      architecture: 'x86_64',
      signed: true,
      fingerprint: 'ABCDEF',
      // a runner that drives one machine and cannot be pinged: its one engine, state unknown
      engines: [
        {
          name: 'gated',
          architecture: 'x86_64',
          state: 'unknown',
          reason: null,
          capacity: 5,
          running: 0,
          builds: [],
          labels: [],
        },
      ],
      packages: 1,
      queue: { running: 0, queued: 0 },
    });
    const engines = await h.ask('/engines');
    expect(engines.status).toBe(200);
    expect(engines.json).toEqual((reply.json as { engines: unknown }).engines);
    // reads follow ALLOW_READS, as the other reads
    expect((await h.ask('/engines', { secret: null })).status).toBe(401);
    const doc = (await h.ask('/openapi.json')).json as { paths: Record<string, unknown> };
    expect((await h.ask('/whoami')).json).toEqual({ name: 'tester@laptop' });
    expect((await h.ask('/whoami', { secret: 'wrong' })).status).toBe(403);
    expect((await h.ask('/whoami', { secret: null })).status).toBe(401);
    for (const path of [
      '/queue',
      '/builds',
      '/package/{name}/cancel',
      '/server',
      '/engines',
      '/events',
      '/whoami',
    ]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
  });
});
