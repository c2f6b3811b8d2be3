import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, SECRET, startHarness } from '../../plugin-repo-http/src/testing/harness.js';
import { type CliHome, type CliOutput, createCliHome } from './testing/cli-home.js';

// `serene queue`, `serene cancel` and `serene list --builds` in-process against a real server
// (Koa app, SQLite store, orchestrator, the gated instant runner).

let h: Harness;
let home: CliHome;
beforeAll(async () => {
  h = await startHarness({
    packages: [
      { base: 'alpha', pkgver: '1.0' },
      { base: 'beta', pkgver: '2.0' },
    ],
  });
  home = await createCliHome(h.url, SECRET, { tuning: { pollMs: 100 } });
});
afterAll(async () => {
  await h.close();
  await home.cleanup();
});

function run(args: string[]): Promise<CliOutput> {
  return home.run(args);
}

async function until(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(20);
  }
}

describe('serene queue, cancel and list --builds', () => {
  it('shows the queue, cancels a build with who asked, and lists recent builds of every package', async () => {
    for (const name of ['alpha', 'beta']) expect((await run(['add', name, '-s'])).code).toBe(0);
    const empty = await run(['queue']);
    expect([empty.code, empty.stdout, empty.stderr]).toEqual([0, '', 'no builds are queued or running\n']);
    const idle = await run(['cancel', 'alpha']);
    expect(idle.code).toBe(1);
    expect(idle.stderr).toBe('error: package alpha has no build queued or running (409)\n');
    expect((await run(['cancel', 'nope'])).stderr).toBe('error: package with base nope is not added (404)\n');

    h.hold('alpha');
    expect((await run(['build', 'alpha'])).code).toBe(0);
    await until(async () => (await run(['queue'])).stdout.includes('alpha'));
    await until(async () => (await run(['queue'])).stdout.includes('running'));
    const queue = await run(['queue']);
    const lines = queue.stdout.trimEnd().split('\n');
    expect(lines[0]?.split(/\s+/)).toEqual(['name', 'state', 'step', 'reason', 'engine', 'for']);
    expect(lines[1]).toMatch(/^alpha\s+running\s+build\s+manual\s+gated\/x86_64\s+\d+s$/);

    const cancelled = await run(['cancel', 'alpha']);
    expect([cancelled.code, cancelled.stdout]).toEqual([0, 'cancelled the running build of alpha\n']);
    h.release('alpha');
    expect((await run(['build', 'beta'])).code).toBe(0);
    await until(async () => {
      const builds = (await h.ask('/builds')).json as { state: { state: string } }[];
      return (
        builds.length === 2 &&
        builds.every((build) => build.state.state !== 'pending' && build.state.state !== 'running')
      );
    });

    const list = await run(['list', '--builds']);
    expect(list.code).toBe(0);
    const rows = list.stdout.trimEnd().split('\n');
    expect(rows[0]?.split(/\s+/)).toEqual([
      'started',
      'name',
      'build',
      'version',
      'reason',
      'took',
      'message',
    ]);
    // newest first: beta, then the cancelled alpha with who cancelled it
    expect(rows[1]).toMatch(/ beta\s+passing\s+2\.0\s+manual\s+\d+s$/);
    expect(rows[2]).toMatch(
      / alpha\s+aborted\s+-\s+manual\s+\d+s\s+cancelled: build was cancelled by tester@laptop$/,
    );
    expect((await run(['list', '-b', '-n', '1'])).stdout.trimEnd().split('\n')).toHaveLength(2);
    expect((await run(['list', '-b', '-n', '0'])).code).toBe(2);
    // without the flag, list is the original's package table
    expect((await run(['list'])).stdout.split('\n')[0]?.split(/\s+/)).toEqual([
      'name',
      'version',
      'devel',
      'enabled',
      'build',
      'time',
    ]);
  });
});
