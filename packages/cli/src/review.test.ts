import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, SECRET, startHarness } from '../../plugin-repo-http/src/testing/harness.js';
import { runCli } from './cli.js';
import { settingsRequest } from './info.js';
import type { CliIo } from './io.js';

// `serene review`, `approve` and `reject` in-process against a real server (Koa app, SQLite store,
// instant runner) whose AUR is the AUR stand-in (RPC on 127.0.0.1, real git repositories).

let h: Harness;
let home: string;

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
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-cli-review-'));
  await fs.mkdir(path.join(home, 'config'), { recursive: true });
  await fs.writeFile(path.join(home, 'config', 'serene.yml'), `url: ${h.url}\n`);
  await fs.mkdir(path.join(home, 'data', 'serene'), { recursive: true });
  await fs.writeFile(path.join(home, 'data', 'serene', 'secret.txt'), `${SECRET}\n`);
});
afterAll(async () => {
  await h?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

async function serene(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { code: -1, stdout: '', stderr: '' };
  const io: CliIo = {
    stdout: (text) => {
      out.stdout += text;
    },
    stderr: (text) => {
      out.stderr += text;
    },
    cwd: home,
    env: {
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, 'config'),
      XDG_DATA_HOME: path.join(home, 'data'),
      XDG_CACHE_HOME: path.join(home, 'cache'),
    },
    stdoutIsTTY: false,
    stdinIsTTY: false,
    exec: async () => 0,
  };
  out.code = await runCli(args, io, { pollMs: 100 });
  return out;
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
