import { setTimeout as sleep } from 'node:timers/promises';
import type { EngineStatus } from '@serene/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, SECRET, startHarness } from '../../plugin-repo-http/src/testing/harness.js';
import { type CliHome, type CliOutput, createCliHome } from './testing/cli-home.js';

// `serene queue`, `serene cancel` and `serene list --builds` in-process against a real server
// (Koa app, SQLite store, orchestrator, the gated instant runner).

let h: Harness;
/** a server whose runner drives two engines, their status set by the test (as the Docker Engine pool's) */
let pool: Harness;
let home: CliHome;
const since = new Date(Date.now() - 90_000);
beforeAll(async () => {
  h = await startHarness({
    packages: [
      { base: 'alpha', pkgver: '1.0' },
      { base: 'beta', pkgver: '2.0' },
    ],
  });
  pool = await startHarness({
    packages: [{ base: 'gamma', pkgver: '3.0' }],
    engines: (running): EngineStatus[] => [
      {
        name: 'big',
        arch: 'x86_64',
        state: 'up',
        since,
        capacity: 2,
        running: running.length,
        builds: running,
        labels: ['big', 'fast'],
      },
      {
        name: 'pi',
        arch: undefined,
        state: 'down',
        since,
        reason: 'it stopped answering pings',
        capacity: 1,
        running: 0,
        builds: [],
        labels: [],
      },
    ],
  });
  home = await createCliHome(h.url, SECRET, { tuning: { pollMs: 100 } });
});
afterAll(async () => {
  await h.close();
  await pool.close();
  await home.cleanup();
});

function run(args: string[], server?: Harness): Promise<CliOutput> {
  return home.run(server ? ['--server', server.url, ...args] : args);
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
    expect(lines[0]?.split(/\s+/)).toEqual(['name', 'state', 'step', 'reason', 'engine', 'arch', 'for']);
    // the runner's one engine, named after it
    expect(lines[1]).toMatch(/^alpha\s+running\s+build\s+manual\s+gated\s+x86_64\s+\d+s$/);

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
      'engine',
      'took',
      'message',
    ]);
    // newest first: beta, then the cancelled alpha with who cancelled it; each ran on the runner's
    // one engine, named after it
    expect(rows[1]).toMatch(/ beta\s+passing\s+2\.0\s+manual\s+gated\s+\d+s$/);
    expect(rows[2]).toMatch(
      / alpha\s+aborted\s+-\s+manual\s+gated\s+\d+s\s+cancelled: build was cancelled by tester@laptop$/,
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

describe('serene server engines, and the engine of each build in serene queue', () => {
  it('prints the engines with state, load, labels and builds, and why one is down', async () => {
    const idle = await run(['server', 'engines'], pool);
    expect(idle.code).toBe(0);
    expect(idle.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^name\s+state\s+for\s+load\s+arch\s+labels\s+building$/),
      expect.stringMatching(/^big\s+up\s+1m 3\ds\s+0\/2\s+x86_64\s+big,fast\s+-$/),
      expect.stringMatching(/^pi\s+down\s+1m 3\ds\s+0\/1\s+\?\s+-\s+-$/),
      'pi is down: it stopped answering pings',
    ]);

    expect((await run(['add', 'gamma', '-s'], pool)).code).toBe(0);
    pool.hold('gamma');
    expect((await run(['build', 'gamma'], pool)).code).toBe(0);
    await until(async () => (await run(['server', 'engines'], pool)).stdout.includes('gamma'));
    const busy = (await run(['server', 'engines'], pool)).stdout.split('\n');
    expect(busy[1]).toMatch(/^big\s+up\s+\S+ \S+\s+1\/2\s+x86_64\s+big,fast\s+gamma$/);
    const queue = (await run(['queue'], pool)).stdout.split('\n');
    expect(queue[1]).toMatch(/^gamma\s+running\s+build\s+manual\s+big\s+x86_64\s+\d+s$/);
    pool.release('gamma');
    await until(async () => ((await pool.ask('/queue')).json as unknown[]).length === 0);
    // the finished build keeps the engine it ran on
    const builds = (await run(['list', '--builds'], pool)).stdout.split('\n');
    expect(builds[1]).toMatch(/ gamma\s+passing\s+3\.0\s+manual\s+big\s+\d+s$/);
  });
});
