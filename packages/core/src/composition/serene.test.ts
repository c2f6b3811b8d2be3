import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { type AurEmulator, startAurEmulator } from '../../../../test/fixtures/aur/index.js';
import type { Runner } from '../contracts/runner.js';
import { SHUTDOWN_MESSAGE } from '../orchestration/orchestrator.js';
import { createFilesystemRepository } from '../pacman/filesystem-repository.js';
import { createSourceFactory } from '../sources/source-factory.js';
import { createKnexStore } from '../store/knex-store.js';
import { createInstantRunner, type InstantBehaviour } from '../testing/instant-runner.js';
import { samplePackage } from '../testing/store-suite.js';
import { createSerene, INVALID_SCHEDULE_MESSAGE, type Serene, type SereneSettings } from './serene.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** serene with real parts (SQLite file, filesystem repository, AUR emulator) and an instant runner. */
async function compose(
  options: {
    behaviour?: InstantBehaviour;
    init?: () => Promise<void>;
    settings?: Partial<SereneSettings>;
  } = {},
) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-composition-'));
  const aur: AurEmulator = await startAurEmulator({ packages: [{ base: 'beta', pkgver: '2.0' }] });
  cleanups.push(
    () => fs.rm(root, { recursive: true, force: true }),
    () => aur.close(),
  );
  const events: string[] = [];
  const instant = createInstantRunner({ behaviour: () => options.behaviour ?? 'success' });
  // the runner's lifecycle members, recorded
  const runner: Runner = {
    name: 'instant',
    run: (job, runOptions) => instant.run(job, runOptions),
    printSrcinfo: (dir) => instant.printSrcinfo(dir),
    async init() {
      events.push('runner init');
      await options.init?.();
    },
    async dispose() {
      events.push('runner dispose');
    },
  };
  const store = createKnexStore({ filename: path.join(root, 'serene.db') });
  const open = store.open.bind(store);
  const close = store.close.bind(store);
  store.open = async () => {
    events.push('store open');
    await open();
  };
  store.close = async () => {
    events.push('store close');
    await close();
  };
  const repositoryDir = path.join(root, 'repository');
  const serene: Serene = createSerene(
    {
      store,
      runner,
      publisher: createFilesystemRepository({ dir: repositoryDir }),
      sources: createSourceFactory({
        generateSrcinfo: (dir) => runner.printSrcinfo(dir),
        aur: { baseUrl: aur.url },
      }),
    },
    {
      arch: 'x86_64',
      name: 'serene',
      sourcesDir: path.join(root, 'sources'),
      workDir: path.join(root, 'work'),
      logsDir: path.join(root, 'logs'),
      schedulingDisabled: true,
      ...options.settings,
    },
  );
  serene.bus.on('state', (event) => events.push(`${event.base} ${event.state.state}`));
  serene.add({
    name: 'http',
    start: () => void events.push('http start'),
    stop: () => void events.push('http stop'),
  });
  return { serene, events, root, repositoryDir };
}

describe('createSerene', () => {
  it('starts its parts in one order and stops them in reverse; the plugins do their own chores', async () => {
    const { serene, events, root, repositoryDir } = await compose();
    // a signature without its package: the publisher's init removes it
    await fs.mkdir(repositoryDir, { recursive: true });
    await fs.writeFile(path.join(repositoryDir, 'gone-1-1-any.pkg.tar.zst.sig'), 'orphan');
    expect(serene.lifecycle.parts.map((part) => part.name)).toEqual([
      'store',
      'publisher',
      'runner',
      'build log files',
      'orchestrator',
      'scheduler',
      'http',
    ]);
    await serene.start();
    expect(events).toEqual(['store open', 'runner init', 'http start']);
    expect(await fs.readdir(repositoryDir)).not.toContain('gone-1-1-any.pkg.tar.zst.sig');
    expect(await fs.readdir(repositoryDir)).toContain('serene.db.tar.gz');

    await serene.service.add({ source: { type: 'aur', name: 'beta' }, replace: false });
    await serene.orchestrator.idle();
    expect((await serene.store.getLatestBuild('beta'))?.state).toEqual({ state: 'success' });
    // the build log file, written once the build ended
    const build = (await serene.store.getLatestBuild('beta'))!;
    const log = await serene.store.readLog('beta', build.started);
    await serene.stop();
    const logFile = path.join(root, 'logs', 'beta', `${build.started.toISOString().slice(0, 19)}.log`);
    expect(log).toBeTruthy();
    expect(await fs.readFile(logFile, 'utf8')).toBe(log);
    expect(events.slice(-3)).toEqual(['http stop', 'runner dispose', 'store close']);
    await serene.stop();
    expect(events.filter((event) => event === 'store close').length).toBe(1);
  });

  it('cancels running builds before the runner is disposed and writes their log files before the store closes', async () => {
    const { serene, events, root } = await compose({ behaviour: 'hang' });
    await serene.start();
    await serene.service.add({ source: { type: 'aur', name: 'beta' }, replace: false });
    const until = Date.now() + 10_000;
    while ((await serene.store.getLatestBuild('beta'))?.state.state !== 'running') {
      if (Date.now() > until) throw new Error('no running build');
      await sleep(20);
    }
    await serene.stop();
    expect(events.slice(events.indexOf('http stop'))).toEqual([
      'http stop',
      'beta cancelled',
      'runner dispose',
      'store close',
    ]);
    const store = createKnexStore({ filename: path.join(root, 'serene.db') });
    await store.open();
    try {
      const build = await store.getLatestBuild('beta');
      expect(build?.state).toEqual({ state: 'cancelled', info: SHUTDOWN_MESSAGE });
      const file = path.join(root, 'logs', 'beta', `${build!.started.toISOString().slice(0, 19)}.log`);
      expect(await fs.readFile(file, 'utf8')).toBe(await store.readLog('beta', build!.started));
    } finally {
      await store.close();
    }
  });

  it('on a failed start stops what started, in reverse, and throws the cause', async () => {
    const { serene, events } = await compose({
      init: async () => {
        throw new Error('the engine is not there');
      },
    });
    await expect(serene.start()).rejects.toThrow('the engine is not there');
    expect(events).toEqual(['store open', 'runner init', 'store close']);
  });

  it('puts every stored package on its schedule at start, read a page at a time', async () => {
    const { serene, root } = await compose({ settings: { schedulingDisabled: false } });
    // more than two pages of `packagePages` (500), written before the server starts
    const bases = Array.from({ length: 1203 }, (_, i) => `pkg-${String(i).padStart(4, '0')}`);
    const before = createKnexStore({ filename: path.join(root, 'serene.db') });
    await before.open();
    await before.transaction(async (tx) => {
      for (const [i, base] of bases.entries())
        await tx.insertPackage(samplePackage(base, { enabled: i % 3 !== 0 }));
    });
    await before.close();
    await serene.start();
    cleanups.push(() => serene.stop());
    expect(bases.filter((base) => serene.scheduler.next(base) !== undefined)).toEqual(
      bases.filter((_, i) => i % 3 !== 0),
    );
  });

  it("refuses an invalid custom schedule with the original's words, as production does", async () => {
    const { serene } = await compose();
    await serene.start();
    cleanups.push(() => serene.stop());
    await serene.service.add({ source: { type: 'aur', name: 'beta' }, replace: false, build: false });
    const error = await serene.service.set('beta', { key: 'schedule', value: '30 2 * * *' }).catch((e) => e);
    expect(error.name).toBe('InputError');
    expect(error.message).toBe(INVALID_SCHEDULE_MESSAGE);
    expect(error.cause.message).toMatch(/it has 5 fields/);
    expect(serene.scheduler.effectiveSchedule({ schedule: null, devel: false })).toBe('0 0 0 * * *');
  });
});
