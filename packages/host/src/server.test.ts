import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { type BuildRecord, createKnexStore, RESTART_MESSAGE, SHUTDOWN_MESSAGE } from '@serene/core';
import { createInstantRunner, type InstantBehaviour } from '@serene/core/testing';
import * as openpgp from 'openpgp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AurEmulator, startAurEmulator } from '../../../test/fixtures/aur/index.js';
import { readConfig } from './config.js';
import { type SereneServer, startServer } from './server.js';
import { api, createDataDir, freePort, TEST_SECRET, testEnv, until } from './testing/host-harness.js';

/**
 * The build log files of a package (`logs/<base>/<started>.log`). The host writes each durably: in
 * full under a temporary name beside it (`.tmp.<name>.<random>`, core's durable.ts), then renamed; a
 * reader that lists the folder during the write sees the temporary file, never a half `.log`, so the
 * tests wait for the final name.
 */
async function logFiles(dataDir: string, base: string): Promise<string[]> {
  const names = await fs.readdir(path.join(dataDir, 'logs', base)).catch(() => [] as string[]);
  return names.filter((name) => name.endsWith('.log') && !name.startsWith('.'));
}

let aur: AurEmulator;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  aur = await startAurEmulator({
    packages: [
      { base: 'alpha', pkgver: '1.0', depends: ['beta'] },
      { base: 'beta', pkgver: '2.0' },
      { base: 'stuck', pkgver: '1' },
    ],
  });
});
afterAll(() => aur.close());
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Starts the host with the instant runner given as its runner (as a user swaps a plugin). */
async function start(
  dataDir: string,
  env: Record<string, string> = {},
  behaviour: (base: string) => InstantBehaviour = () => 'success',
): Promise<SereneServer> {
  const runner = createInstantRunner({ behaviour: (job) => behaviour(job.base) });
  const config = readConfig(testEnv(dataDir, { AUR_URL: aur.url, ...env }));
  const server = await startServer({ config, parts: { runner } });
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await server.close();
  });
  const close = server.close;
  return Object.assign(server, {
    close: async () => {
      closed = true;
      await close();
    },
  });
}

async function latest(server: SereneServer, base: string): Promise<BuildRecord | undefined> {
  return server.store.getLatestBuild(base);
}

describe('the host', () => {
  it('refuses to start when authorized_secrets is a directory, naming it and the fix', async () => {
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    // what `docker run -v ./authorized_secrets:/app/authorized_secrets` makes when the file is missing
    const file = path.join(data.dataDir, 'authorized_secrets');
    await fs.rm(file, { force: true });
    await fs.mkdir(file);
    await expect(start(data.dataDir)).rejects.toThrow(
      `the authorized secrets file ${file} is a directory: remove it`,
    );
  });

  it('refuses to start on a port another process listens on, before it opens anything', async () => {
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const port = (taken.address() as net.AddressInfo).port;
    const runner = createInstantRunner({ behaviour: () => 'success' });
    let initialized = false;
    runner.init = async () => {
      initialized = true;
    };
    const config = readConfig(
      testEnv(data.dataDir, { AUR_URL: aur.url, PORT: String(port), HOST: '127.0.0.1' }),
    );
    await expect(startServer({ config, parts: { runner } })).rejects.toThrow(
      `cannot listen on 127.0.0.1:${port}: another process listens there (stop it, or set PORT to another port)`,
    );
    // the runner was not started (no image pull), and no store was made
    expect(initialized).toBe(false);
    expect(await fs.readdir(data.dataDir)).not.toContain('serene.db');
  });

  it('starts on an empty data folder: signed empty database, API, repository files, metrics', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'ecc',
      curve: 'ed25519Legacy',
      userIDs: [{ name: 'host test', email: 'host@serene.invalid' }],
      format: 'armored',
    });
    const data = await createDataDir({ signKey: privateKey });
    cleanups.push(data.cleanup);
    const server = await start(data.dataDir);
    const info = await api(server.url, '/', { secret: null });
    expect(info.status).toBe(200);
    expect(info.json).toMatchObject({ name: 'serene', signed: true, readable: false });
    const files = await fs.readdir(path.join(data.dataDir, 'repository'));
    expect(files).toEqual(
      expect.arrayContaining(['serene.db', 'serene.db.tar.gz', 'serene.db.tar.gz.sig', 'serene.db.sig']),
    );
    const db = await fetch(`${server.url}/${server.config.arch}/serene.db`);
    expect(db.status).toBe(200);
    expect((await api(server.url, '/package/list', { secret: null })).status).toBe(401);
    expect((await api(server.url, '/package/list')).json).toEqual([]);
    const key = await api(server.url, '/key');
    expect(key.text).toMatch(/BEGIN PGP PUBLIC KEY BLOCK/);
    const metrics = await fetch(`${server.url}/metrics`);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(/^serene_build_queue\{state="running"\} 0$/m);
    expect(text).toMatch(
      /^serene_http_requests_total\{method="GET",route="\/package\/list",status="401"\} 1$/m,
    );
    expect(text).toMatch(/^serene_process_resident_memory_bytes /m);
  });

  it('serves the dashboard at /dashboard/ unless DASHBOARD=false; the API is the same either way', async () => {
    // the bundle as `npm run build` leaves it (built here when this checkout has not been built)
    const { DEFAULT_ASSETS_DIR } = await import('@serene/plugin-dashboard');
    if (!existsSync(path.join(DEFAULT_ASSETS_DIR, 'index.html'))) {
      // @ts-expect-error: a plain ES module script without types
      const { bundleDashboard } = await import('../../plugin-dashboard/scripts/bundle.mjs');
      await bundleDashboard();
    }
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    const server = await start(data.dataDir);
    const page = await fetch(`${server.url}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    expect(await page.text()).toContain('<script type="module" src="app.js">');
    expect((await fetch(`${server.url}/dashboard/app.js`)).status).toBe(200);
    expect((await fetch(`${server.url}/dashboard`, { redirect: 'manual' })).status).toBe(301);
    await server.close();

    const off = await start(data.dataDir, { DASHBOARD: 'false' });
    expect((await fetch(`${off.url}/dashboard/`)).status).toBe(404);
    expect((await api(off.url, '/queue')).json).toEqual([]);
  });

  it('builds an AUR package with its AUR dependency, counts it, writes the logs, and keeps it all over a restart', async () => {
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    // a signature without its package (a crash between the two) is removed at start-up
    await fs.mkdir(path.join(data.dataDir, 'repository'), { recursive: true });
    await fs.writeFile(path.join(data.dataDir, 'repository', 'gone-1-1-any.pkg.tar.zst.sig'), 'orphan');
    const server = await start(data.dataDir);
    expect(await fs.readdir(path.join(data.dataDir, 'repository'))).not.toContain(
      'gone-1-1-any.pkg.tar.zst.sig',
    );

    const added = await api(server.url, '/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'aur', name: 'alpha' } },
    });
    expect(added.status, added.text).toBe(200);
    await server.orchestrator.idle();
    for (const base of ['alpha', 'beta']) {
      expect((await latest(server, base))?.state).toEqual({ state: 'success' });
    }
    expect((await server.store.getPackage('beta'))?.dependency).toBe(true);
    expect((await server.publisher.list()).map((entry) => entry.name).sort()).toEqual(['alpha', 'beta']);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^serene_builds_total\{state="success",reason="initial",arch="x86_64"\} 2$/m);
    expect(metrics).toMatch(/^serene_build_duration_seconds_count\{state="success",arch="x86_64"\} 2$/m);
    expect(metrics).toMatch(/^serene_packages\{state="success"\} 2$/m);
    expect(metrics).toMatch(
      /^serene_http_requests_total\{method="POST",route="\/package\/add",status="200"\} 1$/m,
    );

    // the original's log file per build, once renamed into place (see logFiles)
    await until(async () => (await logFiles(data.dataDir, 'alpha')).length === 1);
    const [logName] = await logFiles(data.dataDir, 'alpha');
    expect(logName).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.log$/);
    const stored = await server.store.readLog('alpha', (await latest(server, 'alpha'))!.started);
    expect(await fs.readFile(path.join(data.dataDir, 'logs', 'alpha', logName!), 'utf8')).toBe(stored);

    await server.close();
    const again = await start(data.dataDir);
    const list = (await api(again.url, '/package/list')).json as { base: string }[];
    expect(list.map((pkg) => pkg.base).sort()).toEqual(['alpha', 'beta']);
    expect((await latest(again, 'alpha'))?.state).toEqual({ state: 'success' });
  });

  it('on shutdown (SIGTERM) records running and queued builds as cancelled and closes cleanly', async () => {
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    const server = await start(data.dataDir, { CONCURRENT_BUILDS: '1' }, (base) =>
      base === 'stuck' ? 'hang' : 'success',
    );
    const added = await api(server.url, '/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'aur', name: 'stuck' } },
    });
    expect(added.status, added.text).toBe(200);
    await until(
      async () => (await latest(server, 'stuck'))?.state.state === 'running',
      10_000,
      'a running build',
    );
    await server.close();
    // the store was closed: read it again as the next start would
    const store = createKnexStore({ filename: path.join(data.dataDir, 'serene.db') });
    await store.open();
    try {
      expect((await store.getLatestBuild('stuck'))?.state).toEqual({
        state: 'cancelled',
        info: SHUTDOWN_MESSAGE,
      });
      expect(await store.listUnfinishedBuilds()).toEqual([]);
    } finally {
      await store.close();
    }
    await expect(fetch(server.url)).rejects.toThrow();
  });

  it('marks builds a killed process left unfinished, as the original', async () => {
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    const first = await start(data.dataDir);
    await api(first.url, '/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'aur', name: 'beta' }, build: false },
    });
    await first.orchestrator.idle();
    // what a SIGKILL in the middle of a build leaves: a running build in the store
    const started = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
    await first.store.insertBuild({
      package: 'beta',
      started,
      ended: null,
      state: { state: 'running', info: 'build' },
      reason: 'manual',
      version: null,
      runSuccess: null,
      runStarted: null,
      runEnded: null,
      stats: null,
    });
    await first.close();
    const second = await start(data.dataDir);
    expect((await second.store.getBuild('beta', started))?.state).toEqual({
      state: 'fatal',
      info: [RESTART_MESSAGE, 'build'],
    });
  });

  it("BUILD_RETENTION removes old builds with their logs and log files, keeping each package's newest", async () => {
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    const first = await start(data.dataDir);
    await api(first.url, '/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'aur', name: 'beta' } },
    });
    await api(first.url, '/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'aur', name: 'stuck' }, build: false },
    });
    await first.orchestrator.idle();
    await until(async () => (await logFiles(data.dataDir, 'beta')).length === 1);
    const old = (base: string, iso: string) => ({
      package: base,
      started: new Date(iso),
      ended: new Date(iso),
      state: { state: 'success' as const },
      reason: 'schedule' as const,
      version: '0.1',
      runSuccess: true,
      runStarted: null,
      runEnded: null,
      stats: null,
    });
    for (const [base, iso] of [
      ['beta', '2020-01-01T00:00:00.000Z'],
      ['beta', '2020-02-01T00:00:00.000Z'],
      ['stuck', '2020-03-01T00:00:00.000Z'],
    ] as const) {
      await first.store.insertBuild(old(base, iso));
      await first.store.appendLog(base, new Date(iso), `log of ${iso}\n`);
      await fs.mkdir(path.join(data.dataDir, 'logs', base), { recursive: true });
      await fs.writeFile(path.join(data.dataDir, 'logs', base, `${iso.slice(0, 19)}.log`), `log of ${iso}\n`);
    }
    await first.close();

    const second = await start(data.dataDir, { BUILD_RETENTION: '30d' });
    const beta = await second.store.listBuilds('beta');
    expect(beta.length).toBe(1);
    expect(beta[0]!.reason).toBe('initial');
    expect(await fs.readdir(path.join(data.dataDir, 'logs', 'beta'))).toEqual([
      `${beta[0]!.started.toISOString().slice(0, 19)}.log`,
    ]);
    // the newest build of a package stays, however old
    expect((await second.store.listBuilds('stuck')).map((build) => build.started.toISOString())).toEqual([
      '2020-03-01T00:00:00.000Z',
    ]);
    expect(await fs.readdir(path.join(data.dataDir, 'logs', 'stuck'))).toEqual(['2020-03-01T00:00:00.log']);
  });

  it('serves without a Docker Engine; builds then fail saying so', async () => {
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    const config = readConfig(
      testEnv(data.dataDir, { AUR_URL: aur.url, DOCKER_URL: path.join(data.root, 'no-docker.sock') }),
    );
    const server = await startServer({ config });
    cleanups.push(() => server.close());
    expect(server.runner.name).toBe('docker');
    expect((await api(server.url, '/', { secret: null })).status).toBe(200);
    expect((await fetch(`${server.url}/${config.arch}/serene.db`)).status).toBe(200);
    // an AUR package brings its .SRCINFO: adding needs no runner
    const added = await api(server.url, '/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'aur', name: 'beta' } },
    });
    expect(added.status, added.text).toBe(200);
    await server.orchestrator.idle();
    const build = await latest(server, 'beta');
    expect(build?.state.state).toBe('fatal');
    const [message] = (build!.state as { info: [string, string] }).info;
    expect(message).toMatch(/Docker Engine/);
    expect(message).toContain('no-docker.sock');
    // a raw PKGBUILD needs the runner for its .SRCINFO: refused with the reason, nothing kept
    const raw = await api(server.url, '/package/add', {
      method: 'POST',
      body: {
        replace: false,
        source: { type: 'raw', pkgbuild: 'pkgname=x\npkgver=1\npkgrel=1\narch=(any)\n', devel: false },
      },
    });
    // no engine is the server's temporary unavailability (docs/errors.md), not a failure of the request
    expect(raw.status).toBe(503);
    expect(raw.text).toMatch(/Docker Engine/);
    expect(((await api(server.url, '/package/list')).json as { base: string }[]).map((p) => p.base)).toEqual([
      'beta',
    ]);
  });
});

describe('the server process (npm start)', () => {
  const main = path.join(import.meta.dirname, 'main.ts');
  const node = (env: Record<string, string>) =>
    spawn(process.execPath, ['--conditions=@serene/source', '--import', 'tsx', main], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const output = (child: ReturnType<typeof node>) => {
    let text = '';
    child.stdout!.on('data', (chunk) => (text += chunk));
    child.stderr!.on('data', (chunk) => (text += chunk));
    return () => text;
  };
  const exit = (child: ReturnType<typeof node>) =>
    new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  it('refuses an invalid configuration with exit code 2 and names the variable', async () => {
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    const child = node({ DATA_DIR: data.dataDir, PORT: 'http', CONCURRENT_BUILDS: 'many' });
    const text = output(child);
    expect(await exit(child)).toBe(2);
    expect(text()).toMatch(/PORT="http" is not valid: expected a whole number/);
    expect(text()).toMatch(/CONCURRENT_BUILDS="many" is not valid/);
    // nothing was created
    expect(await fs.readdir(data.dataDir)).toEqual(['authorized_secrets']);
  });

  it('serves until SIGTERM, then exits 0 having closed the store', async () => {
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    const port = await freePort();
    const child = node({
      ...testEnv(data.dataDir, {
        PORT: String(port),
        LOG_LEVEL: 'info',
        DOCKER_URL: path.join(data.root, 'none.sock'),
      }),
    });
    const text = output(child);
    const exited = exit(child);
    await until(() => text().includes('serene is serving'), 120_000, 'the server to start');
    const list = await api(`http://127.0.0.1:${port}`, '/package/list', { secret: TEST_SECRET });
    expect(list.json).toEqual([]);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(text()).toMatch(/"msg":"stopped"/);
    // WAL checkpointed on close: only the database file is left
    expect((await fs.readdir(data.dataDir)).filter((name) => name.startsWith('serene.db'))).toEqual([
      'serene.db',
    ]);
  }, 180_000);
});
