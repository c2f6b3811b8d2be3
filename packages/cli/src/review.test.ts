import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, SECRET, startHarness } from '../../plugin-repo-http/src/testing/harness.js';
import { settingsRequest } from './info.js';
import { type CliHome, type CliOutput, createCliHome } from './testing/cli-home.js';

// `serene review`, `approve` and `reject` in-process against a real server (Koa app, SQLite store,
// instant runner) whose AUR is the AUR stand-in (RPC on 127.0.0.1, real git repositories).

let h: Harness;
let home: CliHome;

beforeAll(async () => {
  h = await startHarness({
    packages: [{ base: 'tool', pkgver: '1.0', functions: 'build() {\n  make\n}' }],
    gate: { review: 'diff' },
  });
  const added = await h.ask('/package/add', {
    method: 'POST',
    body: { source: { type: 'aur', name: 'tool' }, replace: false },
  });
  expect(added.status, added.text).toBe(200);
  await h.orchestrator.idle();
  home = await createCliHome(h.url, SECRET, { tuning: { pollMs: 100 } });
});
afterAll(async () => {
  await h?.close();
  await home?.cleanup();
});

function serene(...args: string[]): Promise<CliOutput> {
  return home.run(args);
}

describe('serene review', { timeout: 240_000 }, () => {
  it('lists nothing, then a held update; shows it with its diff; approves exactly it', async () => {
    const empty = await serene('review');
    expect(empty).toMatchObject({ code: 0, stdout: '' });
    expect(empty.stderr).toBe('no updates are held\n');

    await h.aur.bump('tool', { pkgver: '1.1', functions: 'build() {\n  make\n  ./configure --evil\n}' });
    const revision = await h.aur.materialize('tool');
    await h.orchestrator.start(['tool'], { reason: 'schedule', resolve: true, clean: false, force: false });
    await h.orchestrator.idle();

    const list = await serene('review');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^name\s+version\s+revision\s+held for\s+since\n/);
    expect(list.stdout).toContain(`tool  1.1-1    ${revision.slice(0, 12)}  diff`);

    const one = await serene('review', 'tool');
    expect(one.code).toBe(0);
    expect(one.stdout).toContain(`tool 1.1-1 at ${revision}`);
    expect(one.stdout).toContain('diff: more than a version bump: PKGBUILD changed: build()');
    expect(one.stdout).toContain(`approve: serene approve tool ${revision.slice(0, 12)}`);
    expect(one.stdout).toContain('+  ./configure --evil');

    const unknown = await serene('review', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('package with base nope is not added');
    const stale = await serene('approve', 'tool', 'a'.repeat(40));
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('is not the held one');
    expect((await serene('approve', 'tool')).code).toBe(2);

    const approved = await serene('approve', 'tool', revision.slice(0, 12));
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toBe(`approved tool at ${revision}; its build has started\n`);
    await h.orchestrator.idle();
    expect((await h.publisher.list()).find((entry) => entry.name === 'tool')?.version).toBe('1.1-1');
    expect((await serene('reject', 'tool', revision)).stderr).toContain('no update of package tool is held');
  });

  it('sets the gate settings of a package', async () => {
    expect(settingsRequest('cooloff', ['2d'])).toEqual({ key: 'cooloff', value: '2d' });
    expect(settingsRequest('review', ['default'])).toEqual({ key: 'review', value: null });
    expect(() => settingsRequest('review', ['maybe'])).toThrow('review takes off, diff, all or default');
    const set = await serene('info', 'tool', 'set', 'cooloff', '3d');
    expect(set.code, set.stderr).toBe(0);
    expect(
      ((await h.ask('/package/tool/policy')).json as { effective: { cool_off: string } }).effective.cool_off,
    ).toBe('3d');
  });
});
