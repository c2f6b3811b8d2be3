import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AurEmulator,
  type AurTestPackage,
  startAurEmulator,
} from '../../../../test/fixtures/aur/index.js';
import type { SourceFactory } from '../contracts/source.js';
import type { BuildState, PackageRecord, Store } from '../contracts/store.js';
import { createFilesystemRepository, type FilesystemRepository } from '../pacman/filesystem-repository.js';
import { createSourceFactory } from '../sources/source-factory.js';
import { createKnexStore } from '../store/knex-store.js';
import {
  createInstantRunner,
  type InstantRunner,
  type InstantRunnerOptions,
} from '../testing/instant-runner.js';
import { samplePackage } from '../testing/store-suite.js';
import { mountTmpfs, snapshotFiles, tmpfsSupport } from '../testing/tmpfs.js';
import {
  BuildOrchestrator,
  type OrchestratorOptions,
  RESTART_MESSAGE,
  type RunSettings,
  SESSION_UPDATES,
  SHUTDOWN_MESSAGE,
} from './orchestrator.js';

interface Harness {
  aur: AurEmulator;
  store: Store;
  runner: InstantRunner;
  publisher: FilesystemRepository;
  orchestrator: BuildOrchestrator;
  states: { base: string; state: BuildState }[];
  add(base: string): Promise<void>;
  root: string;
}

const harnesses: Harness[] = [];

async function harness(
  packages: AurTestPackage[],
  runnerOptions: InstantRunnerOptions = {},
  options: Partial<OrchestratorOptions> = {},
): Promise<Harness> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-orchestrator-'));
  const aur = await startAurEmulator({ packages });
  const store = createKnexStore({ filename: ':memory:' });
  await store.open();
  const runner = createInstantRunner(runnerOptions);
  const publisher = createFilesystemRepository({ dir: path.join(root, 'repository'), name: 'serene' });
  await publisher.init();
  const sources = createSourceFactory({
    generateSrcinfo: (dir) => runner.printSrcinfo(dir),
    aur: { baseUrl: aur.url },
  });
  const orchestrator = new BuildOrchestrator({
    store,
    sources,
    runner,
    publisher,
    sourcesDir: path.join(root, 'sources'),
    workDir: path.join(root, 'work'),
    ...options,
  });
  const states: { base: string; state: BuildState }[] = [];
  orchestrator.bus.on('state', (event) => states.push({ base: event.base, state: event.state }));
  const h: Harness = {
    aur,
    store,
    runner,
    publisher,
    orchestrator,
    states,
    root,
    async add(name) {
      const source = await sources.create({ type: 'aur', name });
      await source.initialize(orchestrator.sourceDir(source.inner.base!));
      const record: PackageRecord = {
        base: source.inner.base!,
        added: new Date(),
        source: source.toJSON(),
        srcinfo: null,
        pkgbuild: null,
        enabled: true,
        clean: false,
        private: false,
        dependency: false,
        schedule: null,
        prepare: null,
        flags: [],
        builtState: 'init',
        failedState: null,
      };
      await store.insertPackage(record);
    },
  };
  harnesses.push(h);
  return h;
}

afterEach(async () => {
  for (const h of harnesses.splice(0)) {
    await h.orchestrator.stop();
    await h.store.close();
    await h.aur.close();
    await fs.rm(h.root, { recursive: true, force: true });
  }
});

const manual: RunSettings = { reason: 'manual', resolve: true, clean: false, force: false };

async function run(h: Harness, bases: string[], settings: RunSettings = manual): Promise<void> {
  const { done } = await h.orchestrator.start(bases, settings);
  await done;
}

async function latest(h: Harness, base: string) {
  return (await h.store.getLatestBuild(base))!;
}

describe('BuildOrchestrator', () => {
  it('runs at most SESSION_UPDATES source updates of a large session at once, and builds every package', async () => {
    const h = await harness([]);
    // the real sources, with their updates counted
    const real = createSourceFactory({ generateSrcinfo: (dir) => h.runner.printSrcinfo(dir) });
    let running = 0;
    let most = 0;
    const counted: SourceFactory = {
      ...real,
      restore(json) {
        const source = real.restore(json);
        const update = source.update.bind(source);
        source.update = async (dir, opts) => {
          most = Math.max(most, ++running);
          try {
            await sleep(1);
            return await update(dir, opts);
          } finally {
            running--;
          }
        };
        return source;
      },
    };
    const orchestrator = new BuildOrchestrator({
      store: h.store,
      sources: counted,
      runner: h.runner,
      publisher: h.publisher,
      sourcesDir: path.join(h.root, 'sources'),
      workDir: path.join(h.root, 'work'),
    });
    const bases = Array.from({ length: SESSION_UPDATES + 30 }, (_, i) => `raw-${String(i).padStart(3, '0')}`);
    for (const base of bases) {
      const source = await real.create({
        type: 'raw',
        devel: false,
        pkgbuild: `pkgname=${base}\npkgver=1.0\npkgrel=1\narch=(any)\npackage() { :; }\n`,
      });
      const dir = path.join(h.root, 'sources', base);
      // the instant runner's .SRCINFO generator reads it from the folder
      await fs.mkdir(dir, { recursive: true });
      // every package but the first depends on the first: resolved in a large session too
      const depends = base === bases[0] ? '' : `\tdepends = ${bases[0]}\n`;
      await fs.writeFile(
        path.join(dir, '.SRCINFO'),
        `pkgbase = ${base}\n\tpkgver = 1.0\n\tpkgrel = 1\n\tarch = any\n${depends}\npkgname = ${base}\n`,
      );
      await source.initialize(dir);
      await h.store.insertPackage(
        samplePackage(base, { added: new Date(), source: source.toJSON(), clean: false }),
      );
    }
    const { done } = await orchestrator.start(bases, manual);
    await done;
    expect(most).toBe(SESSION_UPDATES);
    const states = await Promise.all(bases.map(async (base) => (await latest(h, base)).state));
    expect(states).toEqual(bases.map(() => ({ state: 'success' })));
    const first = await latest(h, bases[0]!);
    for (const base of bases.slice(1)) {
      expect((await latest(h, base)).runStarted!.getTime()).toBeGreaterThanOrEqual(first.ended!.getTime());
    }
  });

  it('builds, publishes and records a package through every state', async () => {
    const h = await harness([{ base: 'alpha', pkgver: '1.2.3' }]);
    await h.add('alpha');
    await run(h, ['alpha']);
    const build = await latest(h, 'alpha');
    expect(build.state).toEqual({ state: 'success' });
    expect(build.version).toBe('1.2.3');
    expect(build.runSuccess).toBe(true);
    expect(build.ended).not.toBeNull();
    expect(h.states.filter((s) => s.base === 'alpha').map((s) => s.state)).toEqual([
      { state: 'pending' },
      { state: 'running', info: 'build' },
      { state: 'running', info: 'publish' },
      { state: 'success' },
    ]);
    expect((await h.publisher.list()).map((entry) => [entry.name, entry.version])).toEqual([
      ['alpha', '1.2.3-1'],
    ]);
    const record = (await h.store.getPackage('alpha'))!;
    expect(record.builtState).toBe('1.2.3-1');
    expect(record.srcinfo).toContain('pkgver = 1.2.3');
    expect(record.pkgbuild).toContain('pkgver=1.2.3');
    expect(await h.store.readLog('alpha', build.started)).toContain('==> Making package: alpha');
  });

  it('skips an up-to-date package unless forced, and rebuilds when the source changed', async () => {
    const h = await harness([{ base: 'alpha', pkgver: '1.0' }]);
    await h.add('alpha');
    await run(h, ['alpha']);
    await run(h, ['alpha'], { ...manual, reason: 'schedule' });
    expect(await h.store.countBuilds('alpha')).toBe(1);
    await run(h, ['alpha'], { ...manual, force: true });
    expect(await h.store.countBuilds('alpha')).toBe(2);
    await h.aur.bump('alpha', { pkgver: '1.1' });
    await run(h, ['alpha'], { ...manual, reason: 'schedule' });
    expect(await h.store.countBuilds('alpha')).toBe(3);
    expect((await latest(h, 'alpha')).version).toBe('1.1');
    expect((await h.publisher.list()).map((entry) => entry.version)).toEqual(['1.1-1']);
  });

  it('builds a session in dependency order, provides and versions included', async () => {
    const h = await harness([
      { base: 'app', pkgver: '1', depends: ['libfoo>=2'], makedepends: ['tool'] },
      { base: 'libfoo', pkgver: '2.5', depends: ['base-thing'] },
      { base: 'tools', pkgver: '1', members: [{ name: 'tools', provides: ['tool=3'] }] },
      { base: 'base-thing', pkgver: '1' },
    ]);
    for (const base of ['app', 'libfoo', 'tools', 'base-thing']) await h.add(base);
    await run(h, ['app', 'libfoo', 'tools', 'base-thing']);
    const order = h.runner.started;
    expect(order.indexOf('base-thing')).toBeLessThan(order.indexOf('libfoo'));
    expect(order.indexOf('libfoo')).toBeLessThan(order.indexOf('app'));
    expect(order.indexOf('tools')).toBeLessThan(order.indexOf('app'));
    for (const base of ['app', 'libfoo', 'tools', 'base-thing']) {
      expect((await latest(h, base)).state).toEqual({ state: 'success' });
    }
  });

  it('cancels missing dependencies, cycles and dependents with the original messages', async () => {
    const h = await harness([
      { base: 'needs-missing', pkgver: '1', depends: ['nowhere-to-be-found'] },
      { base: 'waits', pkgver: '1', depends: ['needs-missing'] },
      { base: 'ping', pkgver: '1', depends: ['pong'] },
      { base: 'pong', pkgver: '1', depends: ['ping'] },
      { base: 'fine', pkgver: '1' },
      { base: 'never-built', pkgver: '1' },
      { base: 'wants-unbuilt', pkgver: '1', depends: ['never-built'] },
    ]);
    for (const base of ['needs-missing', 'waits', 'ping', 'pong', 'fine', 'never-built', 'wants-unbuilt']) {
      await h.add(base);
    }
    await run(h, ['needs-missing', 'waits', 'ping', 'pong', 'fine', 'wants-unbuilt']);
    expect((await latest(h, 'needs-missing')).state).toEqual({
      state: 'cancelled',
      info: 'missing dependencies: nowhere-to-be-found',
    });
    expect((await latest(h, 'waits')).state).toEqual({
      state: 'cancelled',
      info: 'dependencies are added but have been cancelled: needs-missing',
    });
    expect((await latest(h, 'ping')).state).toMatchObject({ state: 'cancelled' });
    expect(((await latest(h, 'ping')).state as { info: string }).info).toMatch(
      /cycle: (ping -> pong -> ping|pong -> ping -> pong)/,
    );
    expect((await latest(h, 'wants-unbuilt')).state).toEqual({
      state: 'cancelled',
      info: 'dependency never-built is added but has never built successfully',
    });
    expect((await latest(h, 'fine')).state).toEqual({ state: 'success' });
    expect(h.runner.started).toEqual(['fine']);
  });

  it('cancels the dependents of a failed build, and remembers the failure for scheduled runs (skipFailedOnSchedule)', async () => {
    const h = await harness(
      [
        { base: 'lib', pkgver: '1' },
        { base: 'app', pkgver: '1', depends: ['lib'] },
      ],
      { behaviour: (job) => (job.base === 'lib' ? 'failure' : 'success') },
      { skipFailedOnSchedule: true },
    );
    await h.add('lib');
    await h.add('app');
    await run(h, ['lib', 'app']);
    expect((await latest(h, 'lib')).state).toEqual({ state: 'failure' });
    expect((await latest(h, 'app')).state).toEqual({
      state: 'cancelled',
      info: 'failed to build dependency lib successfully',
    });
    expect(await h.store.readLog('lib', (await latest(h, 'lib')).started)).toContain('A failure occurred');
    // a scheduled run does not try the failed package again at the same source state
    await run(h, ['lib'], { reason: 'schedule', resolve: true, clean: false, force: false });
    expect(await h.store.countBuilds('lib')).toBe(1);
    // a manual one does, and so does a schedule after the source changed
    await run(h, ['lib'], { ...manual, force: false });
    expect(await h.store.countBuilds('lib')).toBe(2);
    await h.aur.bump('lib');
    await run(h, ['lib'], { reason: 'schedule', resolve: true, clean: false, force: false });
    expect(await h.store.countBuilds('lib')).toBe(3);
  });

  it('limits concurrent builds across sessions', async () => {
    const packages = Array.from({ length: 6 }, (_, i) => ({ base: `p${i}`, pkgver: '1' }));
    const h = await harness(packages, { delayMs: 50 }, { concurrentBuilds: 2 });
    for (const pkg of packages) await h.add(pkg.base);
    const a = await h.orchestrator.start(['p0', 'p1', 'p2'], manual);
    const b = await h.orchestrator.start(['p3', 'p4', 'p5'], manual);
    await Promise.all([a.done, b.done]);
    expect(h.runner.maxConcurrent).toBe(2);
    expect(h.runner.started.length).toBe(6);
  });

  it('gives the slots to sessions in turn: a small session does not wait behind every build of a large one', async () => {
    const large = Array.from({ length: 12 }, (_, i) => ({
      base: `large${String(i).padStart(2, '0')}`,
      pkgver: '1',
    }));
    const packages = [...large, { base: 'small', pkgver: '1' }];
    const h = await harness(packages, { delayMs: 40 }, { concurrentBuilds: 1 });
    for (const pkg of packages) await h.add(pkg.base);
    const a = await h.orchestrator.start(
      large.map((pkg) => pkg.base),
      manual,
    );
    // the large session's builds are all ready and its first runs; then the small one starts
    while (h.runner.started.length === 0) await sleep(5);
    const b = await h.orchestrator.start(['small'], manual);
    // queued: the large session's builds waiting for the one slot, and the small one's
    while (h.orchestrator.queue.queued < large.length) await sleep(5);
    expect(h.orchestrator.queue).toEqual({ running: 1, queued: large.length });
    await Promise.all([a.done, b.done]);
    const order = h.runner.started;
    expect(order).toHaveLength(packages.length);
    // one build of the large session may start before the small session's feeder asks for the slot
    expect(order.indexOf('small')).toBeLessThanOrEqual(2);
    expect(h.runner.maxConcurrent).toBe(1);
  });

  it('ends a stuck build as fatal at the timeout', async () => {
    const h = await harness(
      [{ base: 'stuck', pkgver: '1' }],
      { behaviour: () => 'hang' },
      { buildTimeoutMs: 300 },
    );
    await h.add('stuck');
    await run(h, ['stuck']);
    const build = await latest(h, 'stuck');
    expect(build.state.state).toBe('fatal');
    expect((build.state as { info: [string, string] }).info[0]).toMatch(/timed out/);
    expect((build.state as { info: [string, string] }).info[1]).toBe('build');
  });

  it('has no timeout unless one is set: the runner gets none and a long build is not stopped', async () => {
    const timeouts: (number | undefined)[] = [];
    const h = await harness([{ base: 'long', pkgver: '1' }], {
      delayMs: 400,
      behaviour: (job) => {
        timeouts.push(job.timeoutMs);
        return 'success';
      },
    });
    await h.add('long');
    await run(h, ['long']);
    expect(timeouts).toEqual([undefined]);
    expect((await latest(h, 'long')).state).toEqual({ state: 'success' });
  });

  it('builds a failed package again on the next scheduled run, as the original; skips it when told to', async () => {
    const schedule: RunSettings = { reason: 'schedule', resolve: true, clean: false, force: false };
    for (const skip of [false, true]) {
      const h = await harness(
        [{ base: 'flaky', pkgver: '1' }],
        { behaviour: () => 'failure' },
        { skipFailedOnSchedule: skip },
      );
      await h.add('flaky');
      await run(h, ['flaky'], schedule);
      expect((await latest(h, 'flaky')).state).toEqual({ state: 'failure' });
      await run(h, ['flaky'], schedule);
      expect(h.runner.started, `skipFailedOnSchedule: ${skip}`).toEqual(
        skip ? ['flaky'] : ['flaky', 'flaky'],
      );
    }
  });

  it("removes a clean package's runner after a failed build too, and keeps the others'", async () => {
    const h = await harness(
      [
        { base: 'tidy', pkgver: '1' },
        { base: 'keep', pkgver: '1' },
      ],
      { behaviour: () => 'failure' },
    );
    const removed: string[] = [];
    Object.assign(h.runner, { remove: async (base: string) => void removed.push(base) });
    await h.add('tidy');
    await h.add('keep');
    await h.store.updatePackage('tidy', { clean: true });
    await run(h, ['tidy', 'keep']);
    expect((await latest(h, 'tidy')).state).toEqual({ state: 'failure' });
    expect(removed).toEqual(['tidy']);
  });

  it('cancels running and queued builds', async () => {
    const h = await harness(
      [
        { base: 'running', pkgver: '1' },
        { base: 'queued', pkgver: '1' },
      ],
      { behaviour: () => 'hang' },
      { concurrentBuilds: 1 },
    );
    await h.add('running');
    await h.add('queued');
    const { done } = await h.orchestrator.start(['queued', 'running'], { ...manual, resolve: false });
    while (h.runner.started.length === 0) await sleep(10);
    const first = h.runner.started[0]!;
    const second = first === 'running' ? 'queued' : 'running';
    expect(h.orchestrator.cancel(second)).toBe(true);
    expect(h.orchestrator.cancel(first)).toBe(true);
    await done;
    for (const base of [first, second]) {
      expect((await latest(h, base)).state).toEqual({ state: 'cancelled', info: 'build was cancelled' });
    }
    expect(h.runner.started).toEqual([first]);
    expect(h.orchestrator.cancel('running')).toBe(false);
  });

  it('shows the builds in flight with their phase, and cancels one waiting for its dependencies at once', async () => {
    const h = await harness(
      [
        { base: 'lib', pkgver: '1' },
        { base: 'app', pkgver: '1', depends: ['lib'] },
        { base: 'other', pkgver: '1' },
        { base: 'third', pkgver: '1' },
      ],
      { behaviour: (job) => (job.base === 'lib' || job.base === 'other' ? 'hang' : 'success') },
      { concurrentBuilds: 2 },
    );
    for (const base of ['lib', 'app', 'other', 'third']) await h.add(base);
    expect(h.orchestrator.inFlight()).toEqual([]);
    const session = await h.orchestrator.start(['lib', 'app'], manual);
    while (!h.runner.started.includes('lib')) await sleep(10);
    const other = await h.orchestrator.start(['other', 'third'], { ...manual, resolve: false });
    while (h.runner.started.length < 2) await sleep(10);
    while (h.orchestrator.buildInFlight('third')?.phase !== 'queued') {
      await sleep(5);
    }
    // lib and other hold both slots; third waits for a slot, app for lib
    const phases = Object.fromEntries(h.orchestrator.inFlight().map((build) => [build.base, build]));
    expect(Object.keys(phases).sort()).toEqual(['app', 'lib', 'other', 'third']);
    expect(phases.app).toMatchObject({ phase: 'waiting', waitingFor: ['lib'], state: { state: 'pending' } });
    expect(phases.lib).toMatchObject({ phase: 'running', state: { state: 'running', info: 'build' } });
    expect(phases.third).toMatchObject({ phase: 'queued', state: { state: 'pending' }, runner: 'instant' });
    expect(phases.other?.arch).toBe('x86_64');

    // cancelling app ends it now, while lib still runs
    expect(h.orchestrator.cancel('app', 'build was cancelled by tester')).toBe(true);
    while (h.orchestrator.buildInFlight('app')) await sleep(5);
    expect((await latest(h, 'app')).state).toEqual({
      state: 'cancelled',
      info: 'build was cancelled by tester',
    });
    expect(h.orchestrator.buildInFlight('lib')?.phase).toBe('running');

    // cancelling a queued build ends it without running it
    expect(h.orchestrator.cancel('third')).toBe(true);
    while (h.orchestrator.buildInFlight('third')) await sleep(5);
    expect((await latest(h, 'third')).state).toEqual({ state: 'cancelled', info: 'build was cancelled' });
    expect(h.runner.started).not.toContain('third');

    h.orchestrator.cancel('lib');
    h.orchestrator.cancel('other');
    await Promise.all([session.done, other.done]);
    expect(h.orchestrator.inFlight()).toEqual([]);
    expect(h.runner.started).not.toContain('app');
  });

  it('stop() (SIGTERM) ends running and queued builds as cancelled, saying the server shut down', async () => {
    const h = await harness(
      [
        { base: 'one', pkgver: '1' },
        { base: 'two', pkgver: '1' },
      ],
      { behaviour: () => 'hang' },
      { concurrentBuilds: 1 },
    );
    await h.add('one');
    await h.add('two');
    await h.orchestrator.start(['one', 'two'], { ...manual, resolve: false });
    while (h.runner.started.length === 0) await sleep(10);
    await h.orchestrator.stop();
    for (const base of ['one', 'two']) {
      expect((await latest(h, base)).state).toEqual({ state: 'cancelled', info: SHUTDOWN_MESSAGE });
    }
    expect(await h.store.listUnfinishedBuilds()).toEqual([]);
  });

  it('refuses a manual build of a locked package, and skips it silently on schedule', async () => {
    const h = await harness([{ base: 'slow', pkgver: '1' }], { delayMs: 300 });
    await h.add('slow');
    const { done } = await h.orchestrator.start(['slow'], manual, { failIfLocked: true });
    await expect(h.orchestrator.start(['slow'], manual, { failIfLocked: true })).rejects.toThrow(
      'cannot build now, slow is currently in a running build session',
    );
    const scheduled = await h.orchestrator.start(['slow'], { ...manual, reason: 'schedule' });
    expect(scheduled.bases).toEqual([]);
    await done;
    expect(h.orchestrator.isLocked('slow')).toBe(false);
  });

  it('fails a build with a clear message when the runner cannot run, and publishes nothing', async () => {
    const h = await harness([{ base: 'alpha', pkgver: '1' }], { behaviour: () => 'unreachable' });
    await h.add('alpha');
    await run(h, ['alpha']);
    const build = await latest(h, 'alpha');
    expect(build.state).toEqual({
      state: 'fatal',
      info: ["plugin 'instant': cannot reach the build engine at unix:///nowhere.sock", 'build'],
    });
    expect(await h.publisher.list()).toEqual([]);
  });

  it('refuses a build that reports another version', async () => {
    const h = await harness([{ base: 'alpha', pkgver: '1.0' }], {
      reportSrcinfo: (_job, text) => text.replace('pkgver = 1.0', 'pkgver = 9.9'),
    });
    await h.add('alpha');
    await run(h, ['alpha']);
    expect((await latest(h, 'alpha')).state).toEqual({
      state: 'fatal',
      info: ['version mismatch on package alpha, expected 1.0 but built 9.9', 'publish'],
    });
    expect(await h.publisher.list()).toEqual([]);
  });

  it('refuses a build whose runner reports a .SRCINFO over the limit, and publishes nothing', async () => {
    const h = await harness([{ base: 'alpha', pkgver: '1.0' }], {
      // a malicious PKGBUILD's output: 5 MiB of .SRCINFO
      reportSrcinfo: (_job, text) => `${text}${'#'.repeat(5 * 1024 * 1024)}\n`,
    });
    await h.add('alpha');
    await run(h, ['alpha']);
    expect((await latest(h, 'alpha')).state).toEqual({
      state: 'fatal',
      info: ["the build's .SRCINFO is larger than 4 MiB; nothing was published", 'publish'],
    });
    expect(await h.publisher.list()).toEqual([]);
  });

  it("cuts a build's log past the limit with a note (a build printing without end fills nothing)", async () => {
    const inner = createInstantRunner();
    // a malicious PKGBUILD's output: far more log than is kept
    const runner = {
      ...inner,
      name: inner.name,
      printSrcinfo: inner.printSrcinfo.bind(inner),
      run: async (job: Parameters<typeof inner.run>[0], options: Parameters<typeof inner.run>[1] = {}) => {
        for (let i = 0; i < 10; i++) options.onLog?.(String(i).repeat(1000));
        return inner.run(job, options);
      },
    };
    const h = await harness(
      [{ base: 'alpha', pkgver: '1.0' }],
      {},
      { runner, outputLimits: { logCharacters: 2500 } },
    );
    const live: string[] = [];
    h.orchestrator.bus.on('log', (event) => live.push(event.chunk));
    await h.add('alpha');
    await run(h, ['alpha']);
    const build = await latest(h, 'alpha');
    expect(build.state).toEqual({ state: 'success' });
    const log = (await h.store.readLog('alpha', build.started))!;
    expect(log).toBe(
      `${'0'.repeat(1000)}${'1'.repeat(1000)}${'2'.repeat(500)}\n==> serene: the build's log is longer than 2500 characters; the rest was cut\n`,
    );
    expect(live.join('')).toBe(log);
  });

  it('marks builds left unfinished by a crash as fatal at start-up', async () => {
    const h = await harness([{ base: 'alpha', pkgver: '1' }]);
    await h.add('alpha');
    const started = new Date('2026-01-01T00:00:00.123Z');
    await h.store.insertBuild({
      package: 'alpha',
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
    expect(await h.orchestrator.recover()).toBe(1);
    const build = (await h.store.getBuild('alpha', started))!;
    expect(build.state).toEqual({ state: 'fatal', info: [RESTART_MESSAGE, 'build'] });
    expect(build.ended).toEqual(started);
    expect(await h.orchestrator.recover()).toBe(0);
  });
});

const tmpfs = tmpfsSupport();
describe.skipIf(!tmpfs.ok && process.env.CI !== 'true')(
  tmpfs.ok
    ? 'BuildOrchestrator on a full disk (a real tmpfs)'
    : `BuildOrchestrator on a full disk (skipped: ${tmpfs.reason})`,
  () => {
    it('a publish that meets a full disk ends fatal naming it, the repository as it was; with room the next build publishes', async () => {
      const disk = await mountTmpfs(1024);
      try {
        const publisher = createFilesystemRepository({
          dir: path.join(disk.dir, 'repository'),
          name: 'serene',
        });
        await publisher.init();
        const h = await harness([{ base: 'alpha', pkgver: '1.0' }], {}, { publisher });
        await h.add('alpha');
        const before = await snapshotFiles(publisher.dir);
        await disk.leave(0);
        await run(h, ['alpha']);
        const failed = await latest(h, 'alpha');
        expect(failed.state.state).toBe('fatal');
        const info = (failed.state as { info: [string, string] }).info;
        expect(info[0]).toMatch(/^no space left on the disk to write '.*' \(the disk is full\)/);
        expect(info[1]).toBe('publish');
        expect(await snapshotFiles(publisher.dir)).toEqual(before);
        await disk.unfill();
        await run(h, ['alpha']);
        expect((await latest(h, 'alpha')).state).toEqual({ state: 'success' });
        expect((await publisher.list()).map((entry) => entry.name)).toEqual(['alpha']);
      } finally {
        await disk.unmount();
      }
    });
  },
);
