// The engine pool on real Docker Engines: two extra `dockerd` started here, each with its own socket,
// data root, exec root and pid file under /tmp/serene-engines-<clone id>-N (the data roots are kept between
// runs, so the runner image is loaded once), next to the machine's engine, which is not touched.
// Architectures are by configuration: every engine here is x86_64; one is declared aarch64.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { openSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BuildOrchestrator,
  createFilesystemRepository,
  createKnexStore,
  createMemoryLogger,
  createSourceFactory,
  type RunnerJob,
} from '@serene/core';
import { hasProgram, samplePackage, simplePkgbuild, writeRunnerJob } from '@serene/core/testing';
import Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLONE_ID, TEST_RUNNER_IMAGE } from '../../../scripts/clone.mjs';
import { createDockerEnginePool, type DockerEnginePool, type DockerEngineSpec } from './index.js';

// this clone's runner image and names (scripts/clone.mjs): another clone's run never touches them
const IMAGE = TEST_RUNNER_IMAGE;
const PREFIX = `serene-engines-${CLONE_ID}-${process.pid}-`;

const canRun =
  process.getuid?.() === 0 &&
  hasProgram('dockerd') &&
  spawnSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' }).status === 0;
const reason = `needs root, dockerd and ${TEST_RUNNER_IMAGE} on the machine engine (node scripts/setup-docker.mjs)`;
if (!canRun && process.env.CI !== 'true') console.warn(`skipping the engine pool tests: ${reason}`);

/** One extra Docker Engine of this test. */
class TestEngine {
  readonly root: string;
  readonly socket: string;
  private process: ChildProcess | undefined;
  constructor(readonly n: number) {
    this.root = `/tmp/serene-engines-${CLONE_ID}-${n}`;
    this.socket = path.join(this.root, 'docker.sock');
  }
  get url(): string {
    return `unix://${this.socket}`;
  }
  get docker(): Docker {
    return new Docker({ socketPath: this.socket });
  }
  async start(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true });
    const log = openSync(path.join(this.root, 'dockerd.log'), 'a');
    this.process = spawn(
      'dockerd',
      [
        `--host=${this.url}`,
        `--data-root=${path.join(this.root, 'data')}`,
        `--exec-root=${path.join(this.root, 'exec')}`,
        `--pidfile=${path.join(this.root, 'docker.pid')}`,
        '--bridge=none',
        '--iptables=false',
        '--shutdown-timeout=3',
      ],
      { stdio: ['ignore', log, log] },
    );
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (this.process.exitCode !== null)
        throw new Error(`dockerd ${this.n} exited; see ${this.root}/dockerd.log`);
      if (
        await this.docker.ping().then(
          () => true,
          () => false,
        )
      )
        break;
      if (Date.now() > deadline) throw new Error(`dockerd ${this.n} did not answer in 60 s`);
      await sleep(250);
    }
    if (spawnSync('docker', ['-H', this.url, 'image', 'inspect', IMAGE], { stdio: 'ignore' }).status !== 0) {
      const load = spawnSync('sh', ['-c', `docker save ${IMAGE} | docker -H ${this.url} load`], {
        stdio: 'ignore',
      });
      if (load.status !== 0) throw new Error(`could not load ${IMAGE} into dockerd ${this.n}`);
    }
  }
  /** SIGTERM, as a machine shutting down; resolves when dockerd has exited. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  async containers(): Promise<Docker.ContainerInfo[]> {
    const all = await this.docker.listContainers({ all: true });
    return all.filter((info) => info.Names.some((name) => name.startsWith(`/${PREFIX}`)));
  }
  /** Removes this process's containers, or with `all` those of every run (the engines are ours alone). */
  async removeOurs(all = false): Promise<void> {
    const infos = all
      ? (await this.docker.listContainers({ all: true })).filter((info) =>
          info.Names.some((name) => name.startsWith(`/serene-engines-${CLONE_ID}-`)),
        )
      : await this.containers();
    for (const info of infos) {
      await this.docker
        .getContainer(info.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
  }
}

const one = new TestEngine(1);
const two = new TestEngine(2);

describe.skipIf(!canRun && process.env.CI !== 'true')('Docker Engine pool on real engines', () => {
  let dir: string;
  const pools: DockerEnginePool[] = [];

  const makePool = async (engines: DockerEngineSpec[], extra: { pins?: Record<string, string> } = {}) => {
    const logger = createMemoryLogger();
    const pool = createDockerEnginePool({
      engines,
      runner: {
        image: IMAGE,
        prefix: PREFIX,
        srcinfoName: `${PREFIX}srcinfo`,
        network: 'host',
        pullImage: false,
      },
      pingIntervalMs: 500,
      lostCheckMs: 4_000,
      logger,
      ...extra,
    });
    pools.push(pool);
    await pool.init?.();
    return { pool, logger };
  };

  const job = async (base: string, build = 'true', extra: Partial<RunnerJob> = {}): Promise<RunnerJob> => ({
    ...(await writeRunnerJob(dir, base, simplePkgbuild(base, { build }))),
    ...extra,
  });

  const engineOf = (logs: string): string | undefined => /building on Docker Engine (\S+)/.exec(logs)?.[1];

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-engines-test-'));
    await Promise.all([one.start(), two.start()]);
    // what an interrupted run left on these engines (kept data roots)
    await Promise.all([one.removeOurs(true), two.removeOurs(true)]);
  }, 600_000);

  // each test's pool is disposed after it: a pool left alive keeps pinging, and when an engine
  // comes back it takes it back too, removing as leftovers the containers of the next test's pool
  // (same prefix, runs it does not know of): that made the take-back case fail under load
  afterEach(async () => {
    for (const pool of pools.splice(0)) await pool.dispose?.();
  });

  afterAll(async () => {
    for (const pool of pools) await pool.dispose?.();
    for (const engine of [one, two]) await engine.removeOurs().catch(() => undefined);
    await Promise.all([one.stop(), two.stop()]);
    await fs.rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('places builds by free capacity, reads the architecture from the engine, and removes leftovers at start', async () => {
    // a leftover: a build container a crash left in `created` state
    await two.docker.createContainer({ name: `${PREFIX}leftover`, Image: IMAGE, Entrypoint: ['true'] });
    const { pool } = await makePool([
      { name: 'one', url: one.url, capacity: 1 },
      { name: 'two', url: two.url, capacity: 2 },
    ]);
    expect(pool.capacity).toBe(3);
    expect(pool.engines().map((e) => [e.name, e.state, e.arch])).toEqual([
      ['one', 'up', 'x86_64'],
      ['two', 'up', 'x86_64'],
    ]);
    expect((await two.containers()).map((c) => c.Names[0])).not.toContain(`/${PREFIX}leftover`);

    const jobs = await Promise.all(['cap-a', 'cap-b', 'cap-c', 'cap-d'].map((base) => job(base, 'sleep 4')));
    const runs = jobs.map((j) => pool.run(j));
    // three run at once (one on `one`, two on `two`); the fourth waits for a slot
    let peak = { one: 0, two: 0 };
    const sampler = setInterval(() => {
      for (const e of pool.engines())
        peak = { ...peak, [e.name]: Math.max(peak[e.name as 'one'], e.running) };
    }, 50);
    const results = await Promise.all(runs);
    clearInterval(sampler);
    for (const result of results) expect(result.success, result.logs).toBe(true);
    expect(peak).toEqual({ one: 1, two: 2 });
    const placed = results.map((r) => engineOf(r.logs));
    expect(placed.filter((name) => name === 'two').length).toBeGreaterThanOrEqual(2);
    expect(placed.filter((name) => name === 'one').length).toBeGreaterThanOrEqual(1);
    expect(pool.engines().reduce((sum, e) => sum + e.started, 0)).toBe(4);
  }, 300_000);

  it('sends aarch64 builds only to the engine declared aarch64, and refuses an architecture no engine builds', async () => {
    const { pool } = await makePool([
      { name: 'x86', url: one.url, capacity: 2 },
      { name: 'arm', url: two.url, capacity: 2, arch: 'aarch64' },
    ]);
    const results = await Promise.all([
      pool.run(await job('arch-a1', 'true', { arch: 'aarch64' })),
      pool.run(await job('arch-a2', 'true', { arch: 'aarch64' })),
      pool.run(await job('arch-x1', 'true', { arch: 'x86_64' })),
      pool.run(await job('arch-x2', 'true', { arch: 'x86_64' })),
    ]);
    for (const result of results) expect(result.success, result.logs).toBe(true);
    expect(results.map((r) => engineOf(r.logs))).toEqual(['arm', 'arm', 'x86', 'x86']);
    await expect(pool.run(await job('arch-r', 'true', { arch: 'riscv64' }))).rejects.toThrow(
      /no Docker Engine builds for architecture riscv64/,
    );
  }, 300_000);

  it('builds a package of x86_64 and aarch64 and an any package through the orchestrator: the aarch64 engine builds only for aarch64, any goes into both repositories', async () => {
    const { pool } = await makePool([
      { name: 'x86', url: one.url, capacity: 2 },
      { name: 'arm', url: two.url, capacity: 2, arch: 'aarch64' },
    ]);
    const root = await fs.mkdtemp(path.join(dir, 'orchestrated-'));
    const store = createKnexStore({ filename: ':memory:' });
    await store.open();
    const repository = (arch: string) =>
      createFilesystemRepository({ dir: path.join(root, `repository-${arch}`), name: 'serene' });
    const x86 = repository('x86_64');
    const arm = repository('aarch64');
    await x86.init();
    await arm.init();
    const sources = createSourceFactory({ generateSrcinfo: (sourceDir) => pool.printSrcinfo(sourceDir) });
    const orchestrator = new BuildOrchestrator({
      store,
      sources,
      runner: pool,
      publisher: x86,
      publishers: { aarch64: arm },
      arch: 'x86_64',
      arches: ['x86_64', 'aarch64'],
      sourcesDir: path.join(root, 'sources'),
      workDir: path.join(root, 'work'),
    });
    const engines = new Map<string, string>();
    orchestrator.bus.on('log', (event) => {
      const engine = engineOf(event.chunk);
      if (engine) engines.set(`${event.base}@${event.started.getTime()}`, engine);
    });
    try {
      const pkgbuilds = {
        [`${PREFIX}multi`]: simplePkgbuild(`${PREFIX}multi`).replace(
          "arch=('any')",
          "arch=('x86_64' 'aarch64')",
        ),
        [`${PREFIX}noarch`]: simplePkgbuild(`${PREFIX}noarch`),
      };
      for (const [base, pkgbuild] of Object.entries(pkgbuilds)) {
        const source = await sources.create({ type: 'raw', pkgbuild, devel: false });
        await source.initialize(orchestrator.sourceDir(base));
        await store.insertPackage(
          samplePackage(base, { added: new Date(), source: source.toJSON(), clean: false }),
        );
      }
      const { done } = await orchestrator.start(Object.keys(pkgbuilds), {
        reason: 'manual',
        resolve: true,
        clean: false,
        force: false,
      });
      await done;
      const builds = [];
      for (const base of Object.keys(pkgbuilds)) {
        for (const build of await store.listBuilds(base)) {
          builds.push({
            base: base.slice(PREFIX.length),
            arch: build.arch,
            state: build.state.state,
            engine: engines.get(`${base}@${build.started.getTime()}`),
          });
        }
      }
      expect(builds.sort((a, b) => `${a.base}${a.arch}`.localeCompare(`${b.base}${b.arch}`))).toEqual([
        { base: 'multi', arch: 'aarch64', state: 'success', engine: 'arm' },
        { base: 'multi', arch: 'x86_64', state: 'success', engine: 'x86' },
        { base: 'noarch', arch: 'x86_64', state: 'success', engine: 'x86' },
      ]);
      // makepkg was told the architecture (CARCH): the package of the aarch64 build is named and marked for it
      expect((await arm.list()).map((entry) => [entry.name.slice(PREFIX.length), entry.arch])).toEqual([
        ['multi', 'aarch64'],
        ['noarch', 'any'],
      ]);
      expect((await x86.list()).map((entry) => [entry.name.slice(PREFIX.length), entry.arch])).toEqual([
        ['multi', 'x86_64'],
        ['noarch', 'any'],
      ]);
    } finally {
      await orchestrator.stop();
      await store.close();
    }
  }, 600_000);

  it('honours a label pin', async () => {
    const { pool } = await makePool(
      [
        { name: 'small', url: one.url, capacity: 2 },
        { name: 'big', url: two.url, capacity: 1, labels: ['big'] },
      ],
      { pins: { 'pin-big': 'big' } },
    );
    const results = await Promise.all([pool.run(await job('pin-big')), pool.run(await job('pin-big2'))]);
    expect(results.map((r) => r.success)).toEqual([true, true]);
    expect(engineOf(results[0]!.logs)).toBe('big');
    expect(engineOf(results[1]!.logs)).toBe('small');
  }, 300_000);

  it('leaves no container behind on an extra engine when a build is cancelled or times out', async () => {
    const { pool } = await makePool([{ name: 'two', url: two.url, capacity: 2 }]);
    const controller = new AbortController();
    const logs: string[] = [];
    const cancelled = pool.run(await job('gone-cancel', 'echo sleeping; sleep 60'), {
      signal: controller.signal,
      onLog: (text) => {
        logs.push(text);
        if (logs.join('').includes('sleeping')) controller.abort();
      },
    });
    const timedOut = pool.run(await job('gone-timeout', 'sleep 60', { timeoutMs: 8_000 }));
    const [a, b] = await Promise.all([cancelled, timedOut]);
    expect(a.aborted).toBe('cancelled');
    expect(b.aborted).toBe('timeout');
    const names = (await two.containers()).flatMap((c) => c.Names);
    expect(names).not.toContain(`/${PREFIX}gone-cancel`);
    expect(names).not.toContain(`/${PREFIX}gone-timeout`);
  }, 300_000);

  it('runs a build again elsewhere when its engine stops mid-build, and takes the engine back when it answers', async () => {
    const { pool } = await makePool([
      { name: 'two', url: two.url, capacity: 1 },
      { name: 'one', url: one.url, capacity: 1 },
    ]);
    const base = 'moved';
    const j = await job(base, 'echo sleeping; sleep 15');
    let stopping: Promise<void> | undefined;
    let seen = '';
    const result = await pool.run(j, {
      onLog: (text) => {
        seen += text;
        if (!stopping && seen.includes('sleeping') && engineOf(seen) === 'two') stopping = two.stop();
      },
    });
    await stopping;
    expect(stopping).toBeDefined();
    expect(result.success, result.logs).toBe(true);
    expect(result.logs).toContain('Docker Engine two went away during the build');
    expect(/building on Docker Engine one/.test(result.logs)).toBe(true);
    // published once: one package file in the output folder
    expect(result.packages).toHaveLength(1);
    expect((await fs.readdir(j.outputDir)).filter((f) => f.includes('.pkg.tar'))).toHaveLength(1);
    const down = pool.engines().find((e) => e.name === 'two')!;
    expect(down.state).toBe('down');
    expect(down.lost).toBe(1);

    // back: the periodic ping takes it back, and builds go there again
    await two.start();
    const deadline = Date.now() + 30_000;
    while (pool.engines().find((e) => e.name === 'two')!.state !== 'up' && Date.now() < deadline) {
      await sleep(200);
    }
    expect(pool.engines().find((e) => e.name === 'two')!.state).toBe('up');
    const after = await Promise.all([
      pool.run(await job('back-1', 'sleep 2')),
      pool.run(await job('back-2', 'sleep 2')),
    ]);
    // on failure, say why (message and the log's end): seen failing twice on fresh clones under the full suite
    expect(
      after.map((r) =>
        r.success ? true : `${r.message ?? ''} (exit ${r.exitCode}): ${r.logs.slice(-1500)}`,
      ),
    ).toEqual([true, true]);
    expect(after.map((r) => engineOf(r.logs)).sort()).toEqual(['one', 'two']);
  }, 400_000);
});

it.runIf(!canRun && process.env.CI !== 'true')(`engine pool tests skipped: ${reason}`, () => {});
