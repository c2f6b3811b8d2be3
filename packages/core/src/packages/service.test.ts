import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type AurEmulator,
  type AurTestPackage,
  startAurEmulator,
} from '../../../../test/fixtures/aur/index.js';
import type { Store } from '../contracts/store.js';
import { InputError } from '../errors.js';
import { BuildOrchestrator } from '../orchestration/orchestrator.js';
import { createFilesystemRepository, type FilesystemRepository } from '../pacman/filesystem-repository.js';
import { createSourceFactory } from '../sources/source-factory.js';
import { createKnexStore } from '../store/knex-store.js';
import { createInstantRunner } from '../testing/instant-runner.js';
import { sampleBuild, samplePackage } from '../testing/store-suite.js';
import { type PackageScheduling, PackageService, type PackageServiceOptions } from './service.js';

interface Harness {
  aur: AurEmulator;
  store: Store;
  publisher: FilesystemRepository;
  orchestrator: BuildOrchestrator;
  service: PackageService;
  scheduled: Map<string, unknown>;
  root: string;
}

const open: Harness[] = [];

async function harness(
  packages: AurTestPackage[],
  serviceOptions: Partial<PackageServiceOptions> = {},
): Promise<Harness> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-service-'));
  const aur = await startAurEmulator({ packages });
  const store = createKnexStore({ filename: ':memory:' });
  await store.open();
  const runner = createInstantRunner();
  const publisher = createFilesystemRepository({ dir: path.join(root, 'repository') });
  await publisher.init();
  const sources = createSourceFactory({
    generateSrcinfo: (dir) => runner.printSrcinfo(dir),
    aur: { baseUrl: aur.url },
  });
  const sourcesDir = path.join(root, 'sources');
  const orchestrator = new BuildOrchestrator({
    store,
    sources,
    runner,
    publisher,
    sourcesDir,
    workDir: path.join(root, 'work'),
  });
  const scheduled = new Map<string, unknown>();
  const scheduling: PackageScheduling = {
    reschedule: (base, pkg) => (pkg?.enabled ? scheduled.set(base, pkg) : scheduled.delete(base)),
    effectiveSchedule: (pkg) => pkg.schedule ?? (pkg.devel ? '0 0 */2 * * *' : '0 0 0 * * *'),
    validate: (expression) => {
      if (expression.trim().split(/\s+/).length < 6) {
        throw new InputError('cannot parse cron expression (you probably forgot the seconds)');
      }
    },
  };
  const service = new PackageService({
    store,
    sources,
    orchestrator,
    publisher,
    runner,
    scheduling,
    sourcesDir,
    logsDir: path.join(root, 'logs'),
    ...serviceOptions,
  });
  const h = { aur, store, publisher, orchestrator, service, scheduled, root };
  open.push(h);
  return h;
}

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.orchestrator.stop();
    await h.store.close();
    await h.aur.close();
    await fs.rm(h.root, { recursive: true, force: true });
  }
});

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('PackageService', () => {
  it("shows a runner's one engine: state by its ping, since when it changed, capacity", async () => {
    let answers = true;
    const runner = { ...createInstantRunner(), name: 'docker', ping: async () => answers };
    const started = Date.now();
    const { service } = await harness([], { runner, concurrentBuilds: 3, arch: 'aarch64' });
    const made = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const [first] = await service.engines();
    expect(first).toMatchObject({
      name: 'docker',
      arch: 'aarch64',
      state: 'up',
      capacity: 3,
      running: 0,
      builds: [],
      labels: [],
    });
    expect(first?.reason).toBeUndefined();
    // first seen up: up since the service began
    expect(first!.since.getTime()).toBeGreaterThanOrEqual(started);
    expect(first!.since.getTime()).toBeLessThanOrEqual(made);
    await new Promise((resolve) => setTimeout(resolve, 20));
    answers = false;
    const [down] = await service.engines();
    expect(down).toMatchObject({ state: 'down', reason: 'it does not answer pings' });
    expect(down!.since.getTime()).toBeGreaterThan(first!.since.getTime());
    expect((await service.engines())[0]?.since).toEqual(down!.since);
    answers = true;
    const [back] = await service.engines();
    expect(back?.state).toBe('up');
    expect(back!.since.getTime()).toBeGreaterThanOrEqual(down!.since.getTime());
    // a runner that cannot be asked: unknown
    const plain = await harness([]);
    expect((await plain.service.engines())[0]).toMatchObject({
      name: 'instant',
      state: 'unknown',
      capacity: 5,
    });
  });

  it('names the engine of each running build by its architecture when a package builds for two at once', async () => {
    const engine = (name: string, arch: string, builds: string[]) => ({
      name,
      arch,
      state: 'up' as const,
      since: new Date(),
      capacity: 1,
      running: builds.length,
      builds,
      labels: [],
    });
    const runner = {
      ...createInstantRunner(),
      engines: () => [engine('pi', 'aarch64', ['alpha']), engine('pc', 'x86_64', ['alpha', 'beta'])],
    };
    const { orchestrator, service } = await harness([], { runner });
    const build = (base: string, arch: string, phase: 'running' | 'waiting') => ({
      base,
      started: new Date(),
      reason: 'manual' as const,
      state: { state: 'running' as const },
      phase,
      waitingFor: [],
      runner: 'pool',
      arch,
    });
    // the orchestrator's view of a session in flight (what a pool of two engines runs now)
    orchestrator.inFlight = () => [
      build('alpha', 'x86_64', 'running'),
      build('alpha', 'aarch64', 'running'),
      build('beta', 'x86_64', 'running'),
      build('gamma', 'x86_64', 'waiting'),
    ];
    expect(service.queue().map((entry) => [entry.base, entry.arch, entry.engine])).toEqual([
      ['alpha', 'x86_64', 'pc'],
      ['alpha', 'aarch64', 'pi'],
      ['beta', 'x86_64', 'pc'],
      ['gamma', 'x86_64', undefined],
    ]);
  });

  it('adds an AUR package with its AUR dependency, builds the dependency first, and publishes both', async () => {
    const h = await harness([
      { base: 'app', pkgver: '1.0', depends: ['libthing>=2'] },
      { base: 'libthing-base', pkgver: '2.1', members: [{ name: 'libthing' }] },
    ]);
    const added = await h.service.add({ source: { type: 'aur', name: 'app' }, replace: false });
    expect(added.map((view) => [view.record.base, view.record.dependency])).toEqual([
      ['app', false],
      ['libthing-base', true],
    ]);
    expect(added[0]!.source.describe().label).toBe('aur package');
    expect([...h.scheduled.keys()].sort()).toEqual(['app', 'libthing-base']);
    await h.orchestrator.idle();
    expect((await h.publisher.list()).map((entry) => entry.name)).toEqual(['app', 'libthing']);
    const app = await h.service.build('app', 'latest');
    const lib = await h.service.build('libthing-base', 'latest');
    expect(app.state).toEqual({ state: 'success' });
    expect(app.reason).toBe('initial');
    expect(lib.ended!.getTime()).toBeLessThanOrEqual(app.ended!.getTime());
    expect((await h.service.get('app')).srcinfo?.packages[0]?.pkgname).toBe('app');
    expect(await h.service.pkgbuild('app')).toContain('pkgname=');
  });

  it('refuses an unknown AUR package, a package added twice, and missing dependencies', async () => {
    const h = await harness([
      { base: 'alpha', pkgver: '1' },
      { base: 'broken', pkgver: '1', depends: ['does-not-exist-anywhere'] },
    ]);
    const unknown = await rejection(h.service.add({ source: { type: 'aur', name: 'nope' }, replace: false }));
    expect(unknown.name).toBe('NotFoundError');
    await h.service.add({ source: { type: 'aur', name: 'alpha' }, replace: false, build: false });
    const twice = await rejection(h.service.add({ source: { type: 'aur', name: 'alpha' }, replace: false }));
    expect(twice.message).toBe('package with the same base is already added');
    const missing = await rejection(
      h.service.add({ source: { type: 'aur', name: 'broken' }, replace: false }),
    );
    expect(missing.message).toBe(
      'failed to satisfy all dependencies for broken, missing are does-not-exist-anywhere',
    );
    expect((await h.service.list()).map((item) => item.view.record.base)).toEqual(['alpha']);
    // replace keeps the settings
    await h.service.set('alpha', { key: 'prepare', value: 'echo hi' });
    const replaced = await h.service.add({
      source: { type: 'aur', name: 'alpha' },
      replace: true,
      build: false,
    });
    expect(replaced[0]!.record.prepare).toBe('echo hi');
  });

  it('looks builds up by latest, index and exact time, and refuses anything else', async () => {
    const h = await harness([{ base: 'alpha', pkgver: '1' }]);
    await h.service.add({ source: { type: 'aur', name: 'alpha' }, replace: false });
    await h.orchestrator.idle();
    await h.service.startBuild(['alpha'], { resolve: true, clean: false, force: true });
    await h.orchestrator.idle();
    const builds = await h.service.builds('alpha');
    expect(builds).toHaveLength(2);
    expect((await h.service.build('alpha', '0')).started).toEqual(builds[1]!.started);
    expect((await h.service.build('alpha', '0001')).started).toEqual(builds[0]!.started);
    expect((await h.service.build('alpha', builds[1]!.started.toISOString())).started).toEqual(
      builds[1]!.started,
    );
    expect((await rejection(h.service.build('alpha', 'yesterday'))).message).toBe(
      "expected valid date, valid index number, or 'latest', not 'yesterday'",
    );
    expect((await rejection(h.service.build('alpha', '7'))).message).toBe(
      'package not found or no build at this time',
    );
    expect(await h.service.logs('alpha', 'latest')).toContain('Making package');
    expect(
      (await rejection(h.service.startBuild(['ghost'], { resolve: true, clean: false, force: true })))
        .message,
    ).toBe('package with base ghost is not added');
  });

  it('reads every package a page at a time: count, summaries, list, build all, the schedule, an add', async () => {
    // more than two pages of `packagePages` (500 packages each): a read that stopped after a page, or
    // matched the newest builds of one page to another's packages, would show here
    const h = await harness([{ base: 'app', pkgver: '1', depends: ['libdeep>=3'] }]);
    const bases = Array.from({ length: 1203 }, (_, i) => `pkg-${String(i).padStart(4, '0')}`);
    const enabled = bases.filter((_, i) => i % 3 !== 0);
    // a package on the last page provides what the added one needs
    const provider = bases.at(-1)!;
    const built = bases.filter((_, i) => i % 250 === 7 || i === 499 || i === 500);
    await h.store.transaction(async (tx) => {
      for (const [i, base] of bases.entries()) {
        await tx.insertPackage(
          samplePackage(base, {
            // a source the service can restore (the view and the schedule need it)
            source: {
              devel: false,
              srcinfo_override: false,
              inner: { type: 'AurSource', base, version: '1-1' },
            },
            enabled: i % 3 !== 0,
            srcinfo:
              base === provider
                ? `pkgbase = ${base}\n\tpkgver = 3\n\tpkgrel = 1\n\tarch = any\n\npkgname = libdeep\n`
                : null,
          }),
        );
      }
      for (const [i, base] of built.entries()) {
        await tx.insertBuild(
          sampleBuild(base, new Date(Date.UTC(2024, 0, 1, 0, 0, i)), { version: 'newest' }),
        );
        await tx.insertBuild(
          sampleBuild(base, new Date(Date.UTC(2023, 0, 1, 0, 0, i)), { version: 'older' }),
        );
      }
    });

    expect(await h.service.count()).toBe(bases.length);
    const summaries = await h.service.summaries();
    expect(summaries.map((summary) => summary.record.base)).toEqual(bases);
    expect(
      summaries
        .filter((summary) => summary.latest)
        .map((summary) => [summary.record.base, summary.latest!.version]),
    ).toEqual(built.map((base) => [base, 'newest']));
    expect(summaries.at(-1)).toMatchObject({ members: ['libdeep'], version: '3' });
    const list = await h.service.list();
    expect(list.map((item) => [item.view.record.base, item.latest?.version])).toEqual(
      summaries.map((summary) => [summary.record.base, summary.latest?.version]),
    );

    await h.service.scheduleAll();
    expect([...h.scheduled.keys()]).toEqual(enabled);
    // the session itself is the orchestrator's (tested there): here, which packages it is given
    const start = vi.spyOn(h.orchestrator, 'start').mockResolvedValue({ done: Promise.resolve(), bases: [] });
    await h.service.startBuildAll({ resolve: true, clean: false, force: false });
    expect(start.mock.calls.map((call) => call[0])).toEqual([enabled]);
    start.mockRestore();

    const added = await h.service.add({ source: { type: 'aur', name: 'app' }, replace: false, build: false });
    expect(added.map((view) => view.record.base)).toEqual(['app']);
  });

  it('changes settings, validates schedules and flags, and reschedules', async () => {
    const h = await harness([{ base: 'alpha', pkgver: '1' }]);
    await h.service.add({ source: { type: 'aur', name: 'alpha' }, replace: false, build: false });
    await h.service.set('alpha', { key: 'enabled', value: false });
    expect(h.scheduled.has('alpha')).toBe(false);
    await h.service.set('alpha', { key: 'enabled', value: true });
    await h.service.set('alpha', { key: 'schedule', value: '0 30 2 * * *' });
    expect(h.scheduled.get('alpha')).toMatchObject({ schedule: '0 30 2 * * *' });
    expect(
      (await rejection(h.service.set('alpha', { key: 'schedule', value: '30 2 * * *' }))).message,
    ).toMatch(/forgot the seconds/);
    await h.service.set('alpha', { key: 'flags', value: ['nocheck', 'skippgpcheck'] });
    expect((await h.service.get('alpha')).record.flags).toEqual(['nocheck', 'skippgpcheck']);
    await h.service.set('alpha', { key: 'devel', value: true });
    expect((await h.service.get('alpha')).source.devel).toBe(true);
    expect((await h.service.get('alpha')).schedule).toBe('0 30 2 * * *');
  });

  it('removes a package with its repository entries, source folder, builds and log files', async () => {
    const h = await harness([{ base: 'alpha', pkgver: '1' }]);
    await h.service.add({ source: { type: 'aur', name: 'alpha' }, replace: false });
    await h.orchestrator.idle();
    // the log files of its builds (the host writes them; an original install has them)
    await fs.mkdir(path.join(h.root, 'logs', 'alpha'), { recursive: true });
    await fs.writeFile(path.join(h.root, 'logs', 'alpha', '2024-05-01T12:00:00.log'), 'log');
    await fs.mkdir(path.join(h.root, 'logs', 'other'), { recursive: true });
    expect((await h.publisher.list()).map((entry) => entry.name)).toEqual(['alpha']);
    await h.service.remove('alpha');
    expect(await h.publisher.list()).toEqual([]);
    expect(await h.store.getPackage('alpha')).toBeUndefined();
    expect(await h.service.builds('alpha')).toEqual([]);
    expect(h.scheduled.has('alpha')).toBe(false);
    await expect(fs.access(path.join(h.root, 'sources', 'alpha'))).rejects.toThrow();
    expect(await fs.readdir(path.join(h.root, 'logs'))).toEqual(['other']);
    expect(JSON.parse(await fs.readFile(path.join(h.root, 'repository', 'bases.json'), 'utf8'))).toEqual({});
    expect((await rejection(h.service.remove('alpha'))).message).toBe('package with base alpha is not added');
  });
});
