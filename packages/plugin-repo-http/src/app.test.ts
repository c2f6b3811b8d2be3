import * as fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { secretToken, webhookSecret } from './auth.js';
import { fakeSigner, type Harness, SECRET, startHarness, WEBHOOK_SECRET } from './testing/harness.js';

const PEEK_KEYS = ['added', 'base', 'build', 'devel', 'enabled', 'members', 'version'];
const INFO_KEYS = [
  'added',
  'base',
  'builds',
  'clean',
  'dependency',
  'description',
  'devel',
  'enabled',
  'makepkg_flags',
  'members',
  'prepare_commands',
  'private',
  'schedule',
  'schedule_changed',
  'source',
  'source_url',
  'srcinfo_override',
  'upstream_url',
  'version',
];
const BUILD_KEYS = [
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
];
/** RFC 3339 in UTC with a `Z`, fraction only when there is one (chrono's serde form). */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$/;

/** Waits until `check` holds (polling), or fails after `ms`. */
async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(20);
  }
}

const add = (h: Harness, name: string, extra: Record<string, unknown> = {}) =>
  h.ask('/package/add', {
    method: 'POST',
    body: { replace: false, source: { type: 'aur', name }, ...extra },
  });
const build = (h: Harness, packages: string[], force = true) =>
  h.ask('/build', { method: 'POST', body: { packages, clean: false, resolve: true, force } });

describe('public routes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ http: { signer: fakeSigner() } });
  });
  afterAll(() => h.close());

  it('GET / answers SereneInfo without a secret', async () => {
    const reply = await h.ask('/', { secret: null });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    expect(reply.json).toEqual({
      version: 'v0.4.3',
      started: '2025-03-08T12:00:01.123Z',
      name: 'serene',
      architecture: 'x86_64',
      readable: false,
      signed: true,
    });
  });

  it('GET /health answers for orchestrators', async () => {
    const reply = await h.ask('/health', { secret: null });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ status: 'ok' });
  });

  it('GET /openapi.json documents every route with the request schemas', async () => {
    const reply = await h.ask('/openapi.json', { secret: null });
    expect(reply.status).toBe(200);
    const doc = reply.json as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, { required?: string[]; properties?: Record<string, unknown> }> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/',
        '/package/add',
        '/package/list',
        '/package/{name}',
        '/package/{name}/set',
        '/build',
        '/build/all',
        '/package/{name}/build',
        '/package/{name}/build/{time}',
        '/package/{name}/build/{time}/logs',
        '/package/{name}/build/logs/subscribe',
        '/package/{name}/pkgbuild',
        '/webhook/package/{name}/secret',
        '/webhook/package/{name}/build',
        '/key',
        '/{arch}/package/{name}',
        '/x86_64/{path}',
        '/health',
      ]),
    );
    const schemas = doc.components.schemas;
    expect(schemas.PackageAddRequest?.required?.sort()).toEqual(['replace', 'source']);
    expect(schemas.PackageBuildRequest?.required?.sort()).toEqual(['clean', 'force', 'packages', 'resolve']);
    expect(Object.keys(schemas.BuildInfo?.properties ?? {}).sort()).toEqual(BUILD_KEYS);
    expect(Object.keys(schemas.PackageInfo?.properties ?? {}).sort()).toEqual(INFO_KEYS);
    expect(JSON.stringify(schemas.PackageSettingsRequest)).toContain('srcinfooverride');
    // every reference points at a component
    const refs = [...reply.text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map(
      (match) => match[1]!,
    );
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) expect(Object.keys(schemas)).toContain(ref);
    expect(reply.text).not.toContain('"$schema"');
  });

  it('GET /key needs read access and answers the armoured key as bytes', async () => {
    expect((await h.ask('/key', { secret: null })).status).toBe(401);
    const reply = await h.ask('/key');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/octet-stream');
    expect(reply.text).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
  });

  it('answers 405 for a method a route does not have, and 404 for no route', async () => {
    const wrong = await h.ask('/package/list', { method: 'PUT' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toContain('GET');
    const none = await h.ask('/nothing/here');
    expect(none.status).toBe(404);
  });
});

describe('the REST API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      packages: [
        { base: 'app', pkgver: '1.0', depends: ['libthing'] },
        { base: 'libthing-base', pkgver: '2.1', members: [{ name: 'libthing' }, { name: 'libthing-docs' }] },
        { base: 'solo', pkgver: '3.0' },
        { base: 'broken', pkgver: '1', depends: ['does-not-exist-anywhere'] },
      ],
    });
  });
  afterAll(() => h.close());
  afterEach(() => h.orchestrator.idle());

  it('adds a package with its AUR dependency: PackageInfo array, target first', async () => {
    const reply = await add(h, 'app');
    expect(reply.status).toBe(200);
    const added = reply.json as Record<string, unknown>[];
    expect(added.map((info) => [info.base, info.dependency])).toEqual([
      ['app', false],
      ['libthing-base', true],
    ]);
    for (const info of added) expect(Object.keys(info).sort()).toEqual(INFO_KEYS);
    expect(added[0]).toMatchObject({
      members: [],
      version: null,
      builds: 0,
      source: 'aur package',
      source_url: `${h.aur.url}/pkgbase/app`,
      devel: false,
      srcinfo_override: false,
      enabled: true,
      clean: true,
      private: false,
      schedule: '0 0 0 * * *',
      schedule_changed: false,
      prepare_commands: null,
      makepkg_flags: [],
    });
    expect(added[0]?.added).toMatch(TIMESTAMP);
    await h.orchestrator.idle();
  });

  it('refuses a second add (400), an unknown AUR package (404) and missing dependencies (500)', async () => {
    const twice = await add(h, 'app');
    expect(twice.status).toBe(400);
    expect(twice.text).toBe('package with the same base is already added');
    expect(twice.headers['content-type']).toBe('text/plain; charset=utf-8');
    const unknown = await add(h, 'no-such-package');
    expect(unknown.status).toBe(404);
    expect(unknown.text).toMatch(/no-such-package/);
    const broken = await add(h, 'broken');
    expect(broken.status).toBe(500);
    expect(broken.text).toBe(
      'failed to satisfy all dependencies for broken, missing are does-not-exist-anywhere',
    );
  });

  it('lists PackagePeek entries with the newest build', async () => {
    const reply = await h.ask('/package/list');
    expect(reply.status).toBe(200);
    const list = reply.json as Record<string, unknown>[];
    expect(list.map((peek) => peek.base).sort()).toEqual(['app', 'libthing-base']);
    for (const peek of list) expect(Object.keys(peek).sort()).toEqual(PEEK_KEYS);
    const lib = list.find((peek) => peek.base === 'libthing-base')!;
    expect(lib).toMatchObject({
      members: ['libthing', 'libthing-docs'],
      version: '2.1',
      enabled: true,
      devel: false,
    });
    const latest = lib.build as Record<string, unknown>;
    expect(Object.keys(latest).sort()).toEqual(BUILD_KEYS);
    expect(latest).toMatchObject({ state: { state: 'success' }, reason: 'initial', version: '2.1' });
    expect(latest.started).toMatch(TIMESTAMP);
    expect(latest.ended).toMatch(TIMESTAMP);
  });

  it('answers PackageInfo of one package, 404 for an unknown one', async () => {
    const reply = await h.ask('/package/libthing-base');
    expect(reply.status).toBe(200);
    expect(reply.json).toMatchObject({
      base: 'libthing-base',
      members: ['libthing', 'libthing-docs'],
      description: 'Test package libthing-base',
      upstream_url: 'https://example.invalid/libthing-base',
      builds: 1,
      version: '2.1',
      dependency: true,
    });
    const unknown = await h.ask('/package/nope');
    expect(unknown.status).toBe(404);
    expect(unknown.text).toBe('package with base nope is not added');
  });

  it('changes settings: empty 200, validation 400, unknown package 404', async () => {
    const set = (body: unknown, base = 'app') => h.ask(`/package/${base}/set`, { method: 'POST', body });
    const ok = await set({ key: 'enabled', value: false });
    expect(ok.status).toBe(200);
    expect(ok.body.length).toBe(0);
    expect(ok.headers['content-length']).toBe('0');
    expect(ok.headers['content-type']).toBeUndefined();
    expect((await set({ key: 'prepare', value: 'echo hi' })).status).toBe(200);
    expect((await set({ key: 'flags', value: ['nocheck', 'skippgpcheck'] })).status).toBe(200);
    expect((await set({ key: 'schedule', value: '0 30 2 * * *' })).status).toBe(200);
    expect((await set({ key: 'srcinfooverride', value: true })).status).toBe(200);
    let info = (await h.ask('/package/app')).json as Record<string, unknown>;
    expect(info).toMatchObject({
      enabled: false,
      prepare_commands: 'echo hi',
      makepkg_flags: ['nocheck', 'skippgpcheck'],
      schedule: '0 30 2 * * *',
      schedule_changed: true,
      srcinfo_override: true,
    });
    // the kept package list follows the change at once
    const peek = ((await h.ask('/package/list')).json as Record<string, unknown>[]).find(
      (p) => p.base === 'app',
    );
    expect(peek?.enabled).toBe(false);
    expect((await set({ key: 'private', value: true })).status).toBe(200);
    info = (await h.ask('/package/app')).json as Record<string, unknown>;
    expect(info.prepare_commands).toBeNull();

    const cron = await set({ key: 'schedule', value: '30 2 * * *' });
    expect(cron.status).toBe(400);
    expect(cron.text).toBe('cannot parse cron expression (you probably forgot the seconds)');
    const unknownKey = await set({ key: 'enable', value: true });
    expect(unknownKey.status).toBe(400);
    expect(unknownKey.text).toMatch(/key: unknown value "enable", expected one of .*enabled/);
    const wrongType = await set({ key: 'clean', value: 'yes' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.text).toMatch(/value: .*expected boolean/);
    const badFlag = await set({ key: 'flags', value: ['--nocheck'] });
    expect(badFlag.status).toBe(400);
    expect((await set({ key: 'clean', value: true }, 'nope')).status).toBe(404);
    for (const key of ['enabled', 'private'] as const) await set({ key, value: key === 'enabled' });
  });

  it('answers the published PKGBUILD as a JSON string; 404 before the first publish', async () => {
    const reply = await h.ask('/package/app/pkgbuild');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    expect(typeof reply.json).toBe('string');
    expect(reply.json).toContain('pkgname=');
    expect((await add(h, 'solo', { build: false })).status).toBe(200);
    const never = await h.ask('/package/solo/pkgbuild');
    expect(never.status).toBe(404);
    expect(never.text).toBe('package was never built and has thus no used package build');
  });

  it('starts builds, lists them newest first, finds them by latest, index and time, and serves logs', async () => {
    const started = await build(h, ['app']);
    expect(started.status).toBe(200);
    expect(started.body.length).toBe(0);
    await h.orchestrator.idle();
    const all = (await h.ask('/package/app/build')).json as Record<string, unknown>[];
    expect(all).toHaveLength(2);
    const listed = ((await h.ask('/package/list')).json as Record<string, unknown>[]).find(
      (p) => p.base === 'app',
    );
    expect(listed?.build).toEqual(all[0]);
    expect(all.map((b) => b.reason)).toEqual(['manual', 'initial']);
    for (const b of all) expect(Object.keys(b).sort()).toEqual(BUILD_KEYS);
    expect((await h.ask('/package/app/build?count=1')).json).toEqual([all[0]]);
    expect((await h.ask('/package/app/build?count=0')).json).toEqual([]);
    expect((await h.ask('/package/ghost/build')).json).toEqual([]);
    const badCount = await h.ask('/package/app/build?count=-1');
    expect(badCount.status).toBe(400);
    expect(badCount.text).toMatch(/count/);

    expect((await h.ask('/package/app/build/latest')).json).toEqual(all[0]);
    expect((await h.ask('/package/app/build/0')).json).toEqual(all[1]);
    expect((await h.ask('/package/app/build/0001')).json).toEqual(all[0]);
    expect((await h.ask(`/package/app/build/${all[1]?.started}`)).json).toEqual(all[1]);
    const bad = await h.ask('/package/app/build/yesterday');
    expect(bad.status).toBe(400);
    expect(bad.text).toBe("expected valid date, valid index number, or 'latest', not 'yesterday'");
    const none = await h.ask('/package/app/build/7');
    expect(none.status).toBe(404);
    expect(none.text).toBe('package not found or no build at this time');

    const logs = await h.ask('/package/app/build/latest/logs');
    expect(logs.status).toBe(200);
    expect(typeof logs.json).toBe('string');
    expect(logs.json).toContain('==> Making package: app');
    expect((await h.ask('/package/app/build/7/logs')).status).toBe(404);
  });

  it('refuses builds of unknown packages (404) and of packages in a running session (500)', async () => {
    const unknown = await build(h, ['app', 'ghost']);
    expect(unknown.status).toBe(404);
    expect(unknown.text).toBe('package with base ghost is not added');
    expect((await build(h, [])).status).toBe(200);
    const missing = await h.ask('/build', {
      method: 'POST',
      body: { packages: ['app'], clean: false, resolve: true },
    });
    expect(missing.status).toBe(400);
    expect(missing.text).toMatch(/force: missing field/);

    h.hold('app');
    try {
      expect((await build(h, ['app'])).status).toBe(200);
      const locked = await build(h, ['app']);
      expect(locked.status).toBe(500);
      expect(locked.text).toBe('cannot build now, app is currently in a running build session');
      // a build still running has no logs
      await until(async () => {
        const latest = (await h.ask('/package/app/build/latest')).json as { state: { state: string } };
        return latest.state.state === 'running';
      });
      const running = await h.ask('/package/app/build/latest/logs');
      expect(running.status).toBe(404);
      expect(running.text).toBe('build does not have any logs');
    } finally {
      h.release('app');
    }
    await h.orchestrator.idle();
    const all = await h.ask('/build/all', {
      method: 'POST',
      body: { packages: [], clean: false, resolve: true, force: true },
    });
    expect(all.status).toBe(200);
    await h.orchestrator.idle();
    expect(((await h.ask('/package/libthing-base/build')).json as unknown[]).length).toBe(2);
  });

  it('gives webhook secrets and builds by webhook', async () => {
    const reply = await h.ask('/webhook/package/app/secret');
    expect(reply.status).toBe(200);
    const secret = reply.json as string;
    expect(secret).toBe(webhookSecret(secretToken(SECRET), 'app', WEBHOOK_SECRET));
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    expect((await h.ask('/webhook/package/ghost/secret')).status).toBe(404);
    expect((await h.ask('/webhook/package/app/secret', { secret: null })).status).toBe(401);

    await h.aur.bump('app');
    const hook = await h.ask(`/webhook/package/app/build?secret=${encodeURIComponent(secret)}`, {
      method: 'POST',
      secret: null,
      headers: { 'Content-Type': 'application/json' },
      raw: '{"zen":"GitHub payloads are ignored"}',
    });
    expect(hook.status).toBe(200);
    expect(hook.body.length).toBe(0);
    await h.orchestrator.idle();
    const latest = (await h.ask('/package/app/build/latest')).json as Record<string, unknown>;
    expect(latest.reason).toBe('webhook');

    const none = await h.ask('/webhook/package/app/build', { method: 'POST', secret: null });
    expect(none.status).toBe(401);
    expect(none.text).toBe('no webhook secret provided');
    const wrong = await h.ask('/webhook/package/app/build?secret=nope', { method: 'POST', secret: null });
    expect(wrong.status).toBe(403);
    expect(wrong.text).toBe('no signing secret found');
    // a secret of another package does not fit
    const other = await h.ask(`/webhook/package/solo/build?secret=${encodeURIComponent(secret)}`, {
      method: 'POST',
    });
    expect(other.status).toBe(403);
    const ghostSecret = webhookSecret(secretToken(SECRET), 'ghost', WEBHOOK_SECRET);
    const ghost = await h.ask(`/webhook/package/ghost/build?secret=${encodeURIComponent(ghostSecret)}`, {
      method: 'POST',
      secret: null,
    });
    expect(ghost.status).toBe(404);
  });

  it('redirects /{arch}/package/{name} to the current file of a member (307)', async () => {
    const reply = await h.ask('/x86_64/package/libthing-docs', { secret: null });
    expect(reply.status).toBe(307);
    expect(reply.headers.location).toBe('/x86_64/libthing-docs-2.1-1-any.pkg.tar.gz');
    expect(reply.body.length).toBe(0);
    const file = await h.ask(reply.headers.location!, { secret: null });
    expect(file.status).toBe(200);
    expect(file.body.length).toBeGreaterThan(0);
    const arch = await h.ask('/aarch64/package/libthing', { secret: null });
    expect(arch.status).toBe(400);
    expect(arch.text).toBe("architecture 'aarch64' is not supported by this server");
    const unknown = await h.ask('/x86_64/package/nope', { secret: null });
    expect(unknown.status).toBe(404);
    expect(unknown.text).toBe("package 'nope' does not exist or is not yet built");
  });

  it('removes a package: empty 200, then 404', async () => {
    const removed = await h.ask('/package/solo', { method: 'DELETE' });
    expect(removed.status).toBe(200);
    expect(removed.body.length).toBe(0);
    expect((await h.ask('/package/solo')).status).toBe(404);
    const again = await h.ask('/package/solo', { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect(again.text).toBe('package with base solo is not added');
  });
});

describe('authentication', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it('answers 401 without a secret and 403 for a wrong one, on read and write endpoints', async () => {
    for (const [path, method] of [
      ['/package/list', 'GET'],
      ['/package/x', 'DELETE'],
      ['/key', 'GET'],
    ] as const) {
      const none = await h.ask(path, { method, secret: null });
      expect(none.status).toBe(401);
      expect(none.text).toBe('no secret provided');
      const wrong = await h.ask(path, { method, secret: 'guess' });
      expect(wrong.status).toBe(403);
      expect(wrong.text).toBe('invalid secret');
    }
    // bytes beyond visible ASCII count as the empty secret
    const latin = await h.ask('/package/list', { secret: `${SECRET}\u00e9` });
    expect(latin.status).toBe(403);
    // auth comes before the body is looked at
    const body = await h.ask('/package/add', { method: 'POST', secret: null, raw: '{not json' });
    expect(body.status).toBe(401);
  });

  it('never logs the secrets', async () => {
    await h.ask('/package/list', { secret: 'a-wrong-secret-to-look-for' });
    const text = JSON.stringify(h.logs);
    expect(text).not.toContain('a-wrong-secret-to-look-for');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(secretToken(SECRET));
  });

  it('follows changes of authorized_secrets at once, and refuses everybody while it is missing', async () => {
    expect((await h.ask('/package/list')).status).toBe(200);
    const settle = () => sleep(150);
    await fs.writeFile(h.secretsFile, `\n   \n${secretToken('new secret')} someone else\n`);
    await settle();
    expect((await h.ask('/package/list')).status).toBe(403);
    expect((await h.ask('/package/list', { secret: 'new secret' })).status).toBe(200);

    await fs.rm(h.secretsFile);
    await settle();
    expect((await h.ask('/package/list', { secret: 'new secret' })).status).toBe(403);
    expect(
      h.logs.some(
        (line) => line.level === 'warn' && /does not exist: nobody is authorized/.test(line.message),
      ),
    ).toBe(true);

    // replaced by a rename, as editors and secret mounts do
    await fs.writeFile(`${h.secretsFile}.tmp`, `${secretToken(SECRET)}\n`);
    await fs.rename(`${h.secretsFile}.tmp`, h.secretsFile);
    await settle();
    expect((await h.ask('/package/list')).status).toBe(200);
  });
});

describe('ALLOW_READS and disabled webhooks', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ http: { allowReads: true, webhookSecret: undefined } });
  });
  afterAll(() => h.close());

  it('lets reads through without any check, but not writes', async () => {
    expect((await h.ask('/', { secret: null })).json).toMatchObject({ readable: true, signed: false });
    expect((await h.ask('/package/list', { secret: null })).status).toBe(200);
    expect((await h.ask('/package/list', { secret: 'wrong' })).status).toBe(200);
    const key = await h.ask('/key', { secret: null });
    expect(key.status).toBe(404);
    expect(key.text).toBe('the server has no private key to sign packages');
    expect((await h.ask('/package/x', { method: 'DELETE', secret: null })).status).toBe(401);
  });

  it('answers 503 for webhooks when the server has no webhook secret', async () => {
    expect((await h.ask('/x86_64/package/x', { secret: null })).status).toBe(404);
    const hook = await h.ask('/webhook/package/x/build?secret=abc', { method: 'POST', secret: null });
    expect(hook.status).toBe(503);
    expect(hook.text).toBe("webhooks aren't enabled on this server");
  });
});

describe('health checks', () => {
  it('answers 503 while the readiness check fails', async () => {
    const h = await startHarness({
      http: {
        healthCheck: () => {
          throw new Error('store closed');
        },
      },
    });
    try {
      const reply = await h.ask('/health', { secret: null });
      expect(reply.status).toBe(503);
      expect(reply.text).toBe('not ready: store closed');
    } finally {
      await h.close();
    }
  });
});

describe('an unreachable AUR', () => {
  it('answers 502 (a bad gateway) with one message naming the AUR and the cause', async () => {
    const h = await startHarness();
    try {
      // the AUR emulation stops: its port refuses connections, as an AUR behind a dead network would
      await h.aur.close();
      const reply = await add(h, 'app');
      expect(reply.status).toBe(502);
      expect(reply.text).toBe(
        `the AUR at ${h.aur.url} cannot be reached: connect ECONNREFUSED ${new URL(h.aur.url).host}`,
      );
      // nothing was added
      expect((await h.ask('/package/list')).json).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
