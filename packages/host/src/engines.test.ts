/**
 * The engines at a glance (issue 16): `GET /engines`, the engines of `GET /server`, each build's
 * engine in `GET /queue` and the per-engine series of `/metrics`, on the real host (HTTP server,
 * SQLite store, orchestrator) with the real engine pool and Docker runners over the machine's Docker
 * Engine. The pool's engines answer pings and `GET /info` for real; their builds are the instant
 * runner's, held until the test lets them go (a real build needs the runner image, which the
 * placement does not depend on: docs/engines.md and plugin-docker's engine tests run those).
 */
import { createInstantRunner, setupMissing } from '@serene/core/testing';
import {
  createDockerEnginePool,
  createDockerRunner,
  type DockerEnginePool,
  type DockerRunner,
} from '@serene/plugin-docker';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEST_PREFIX } from '../../../scripts/clone.mjs';
import { type AurEmulator, startAurEmulator } from '../../../test/fixtures/aur/index.js';
import { readConfig } from './config.js';
import { type SereneServer, startServer } from './server.js';
import { api, createDataDir, testEnv, until } from './testing/host-harness.js';

const SOCKET = '/var/run/docker.sock';
// this clone's and this process's names (scripts/clone.mjs): leftovers of others are never touched
const PREFIX = `${TEST_PREFIX}engview-${process.pid}-`;
const NOWHERE = `unix:///tmp/${PREFIX}nowhere.sock`;

const probe = createDockerRunner({ url: SOCKET, image: 'serene-runner:unused' });
const dockerUp = await probe.ping();
await probe.dispose?.();
const missing = dockerUp ? [] : [`a Docker Engine at ${SOCKET} (node scripts/setup-docker.mjs starts one)`];
const SUITE = `engines over the machine's Docker Engine${missing.length > 0 ? ` (skipped: ${missing.join('; ')})` : ''}`;
const skip = setupMissing(SUITE, missing);

interface EngineJson {
  name: string;
  architecture: string | null;
  state: string;
  since: string;
  reason: string | null;
  capacity: number;
  running: number;
  builds: string[];
  labels: string[];
}
interface QueueJson {
  base: string;
  phase: string;
  engine: string | null;
  architecture: string;
}

let aur: AurEmulator;
const cleanups: (() => Promise<void>)[] = [];
beforeAll(async () => {
  aur = await startAurEmulator({
    packages: ['one', 'two', 'three', 'four'].map((base) => ({ base, pkgver: '1.0' })),
  });
});
afterAll(() => aur?.close());
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(env: Record<string, string>, runner?: DockerEnginePool): Promise<SereneServer> {
  const data = await createDataDir();
  cleanups.push(data.cleanup);
  const config = readConfig(
    testEnv(data.dataDir, {
      AUR_URL: aur.url,
      PULL_IMAGE: 'false',
      RUNNER_PREFIX: PREFIX,
      RUNNER_SRCINFO_NAME: `${PREFIX}srcinfo`,
      ...env,
    }),
  );
  const server = await startServer({ config, ...(runner ? { parts: { runner } } : {}) });
  cleanups.push(() => server.close());
  return server;
}

async function metric(server: SereneServer, name: string, engine: string): Promise<number | undefined> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{engine="${engine}",`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('one engine (DOCKER_URL, no ENGINES)', () => {
  it('shows an engine that does not answer as down, in the API and /metrics', async () => {
    const server = await start({ DOCKER_URL: NOWHERE, CONCURRENT_BUILDS: '3' });
    const engines = (await api(server.url, '/engines')).json as EngineJson[];
    expect(engines).toEqual([
      {
        name: 'docker',
        architecture: 'x86_64',
        state: 'down',
        since: expect.any(String),
        reason: 'it does not answer pings',
        capacity: 3,
        running: 0,
        builds: [],
        labels: [],
      },
    ]);
    expect(((await api(server.url, '/server')).json as { engines: unknown }).engines).toEqual(engines);
    expect(await metric(server, 'serene_engine_up', 'docker')).toBe(0);
    expect(await metric(server, 'serene_engine_capacity', 'docker')).toBe(3);
    // reads need a secret unless ALLOW_READS
    expect((await api(server.url, '/engines', { secret: null })).status).toBe(401);
  });

  it.skipIf(skip)('shows the machine engine up, since the start', async () => {
    const before = Date.now();
    const server = await start({ DOCKER_URL: SOCKET, CONCURRENT_BUILDS: '2', ALLOW_READS: 'true' });
    const reply = await api(server.url, '/engines', { secret: null });
    expect(reply.status).toBe(200);
    const [engine] = reply.json as EngineJson[];
    expect(engine).toMatchObject({ name: 'docker', state: 'up', reason: null, capacity: 2, running: 0 });
    expect(new Date(engine!.since).getTime()).toBeLessThanOrEqual(Date.now());
    expect(new Date(engine!.since).getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(await metric(server, 'serene_engine_up', 'docker')).toBe(1);
    expect(await metric(server, 'serene_engine_running', 'docker')).toBe(0);
  });
});

describe.skipIf(skip)(SUITE, () => {
  it('shows each engine with state, load and labels, and each build on its engine', async () => {
    // the real pool and Docker runners; only the builds are held instant ones (see the file's head)
    const instant = createInstantRunner();
    const gates = new Map<string, () => void>();
    const opened = new Map<string, Promise<void>>();
    const hold = (base: string) =>
      opened.set(
        base,
        new Promise<void>((resolve) => {
          gates.set(base, resolve);
        }),
      );
    const heldBuilds = (real: DockerRunner): DockerRunner => ({
      ...real,
      async run(job, options) {
        await opened.get(job.base);
        return instant.run(job, options);
      },
      printSrcinfo: (dir) => instant.printSrcinfo(dir),
    });
    const pool = createDockerEnginePool({
      engines: [
        { name: 'big', url: SOCKET, capacity: 2, labels: ['big'] },
        { name: 'small', url: SOCKET },
        { name: 'gone', url: NOWHERE },
      ],
      runner: {
        image: 'serene-runner:unused',
        prefix: PREFIX,
        srcinfoName: `${PREFIX}srcinfo`,
        pullImage: false,
      },
      createRunner: (options) => heldBuilds(createDockerRunner(options)),
    });
    const server = await start({ CONCURRENT_BUILDS: '4' }, pool);
    cleanups.push(async () => {
      for (const open of gates.values()) open();
    });

    const engines = (await api(server.url, '/engines')).json as EngineJson[];
    expect(engines.map((e) => [e.name, e.state, e.architecture, e.capacity, e.labels])).toEqual([
      ['big', 'up', 'x86_64', 2, ['big']],
      ['small', 'up', 'x86_64', 1, []],
      ['gone', 'down', null, 1, []],
    ]);
    expect(engines[2]?.reason).toMatch(/nowhere\.sock/);
    expect(engines.every((e) => e.running === 0 && e.builds.length === 0)).toBe(true);

    const names = ['one', 'two', 'three', 'four'];
    for (const name of names) {
      hold(name);
      const added = await api(server.url, '/package/add', {
        method: 'POST',
        body: { replace: false, build: false, source: { type: 'aur', name } },
      });
      expect(added.status, added.text).toBe(200);
    }
    const build = await api(server.url, '/build', {
      method: 'POST',
      body: { packages: names, clean: false, resolve: false, force: true },
    });
    expect(build.status).toBe(200);
    // three builds on the engines that are up (2 + 1); the fourth waits in the pool for a slot
    await until(async () => {
      const queue = (await api(server.url, '/queue')).json as QueueJson[];
      return queue.filter((entry) => entry.engine !== null).length === 3 && queue.length === 4;
    });
    const queue = (await api(server.url, '/queue')).json as QueueJson[];
    const on = (engine: string | null) => queue.filter((entry) => entry.engine === engine).length;
    expect([on('big'), on('small'), on('gone'), on(null)]).toEqual([2, 1, 0, 1]);
    expect(queue.every((entry) => entry.architecture === 'x86_64')).toBe(true);

    const busy = (await api(server.url, '/engines')).json as EngineJson[];
    const big = busy.find((e) => e.name === 'big')!;
    expect(big.running).toBe(2);
    expect(big.builds.sort()).toEqual(
      queue
        .filter((e) => e.engine === 'big')
        .map((e) => e.base)
        .sort(),
    );
    expect(busy.find((e) => e.name === 'small')).toMatchObject({ running: 1 });
    const details = (await api(server.url, '/server')).json as { engines: EngineJson[] };
    expect(details.engines.map((e) => [e.name, e.running])).toEqual([
      ['big', 2],
      ['small', 1],
      ['gone', 0],
    ]);
    expect(await metric(server, 'serene_engine_up', 'big')).toBe(1);
    expect(await metric(server, 'serene_engine_up', 'gone')).toBe(0);
    expect(await metric(server, 'serene_engine_running', 'big')).toBe(2);
    expect(await metric(server, 'serene_engine_capacity', 'big')).toBe(2);
    expect(await metric(server, 'serene_engine_lost_builds', 'small')).toBe(0);

    for (const open of gates.values()) open();
    await until(async () => ((await api(server.url, '/queue')).json as unknown[]).length === 0);
    const idle = (await api(server.url, '/engines')).json as EngineJson[];
    expect(idle.map((e) => e.running)).toEqual([0, 0, 0]);
    for (const name of names) {
      expect((await server.store.getLatestBuild(name))?.state).toEqual({ state: 'success' });
    }
    // each finished build names the engine it ran on (the fourth: whichever freed a slot first)
    const recent = (await api(server.url, '/builds')).json as { base: string; engine: string | null }[];
    const ranOn = new Map(recent.map((entry) => [entry.base, entry.engine]));
    for (const entry of queue) {
      expect(ranOn.get(entry.base)).toEqual(entry.engine ?? expect.stringMatching(/^(big|small)$/));
    }
    expect((await server.store.getLatestBuild(queue[0]!.base))?.engine).toBe(ranOn.get(queue[0]!.base));
  });
});
