// DockerRunner on a real Docker Engine with the local runner image (scripts/setup-docker.mjs makes
// both). Runner containers use host networking so that they reach servers on 127.0.0.1.
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createFilesystemRepository, createMemoryLogger } from '@serene/core';
import {
  run,
  setupMissing,
  simplePkgbuild,
  testRunner,
  writeRunnerJob,
  writeSyntheticPackage,
} from '@serene/core/testing';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setupReason, TEST_PREFIX, TEST_RUNNER_IMAGE } from '../../../scripts/clone.mjs';
import { createDockerRunner, type DockerRunnerOptions, DockerUnreachableError } from './index.js';

// this clone's runner image and container names (scripts/clone.mjs), so that two clones on one
// engine never touch each other's; the pid keeps parallel runs of one clone apart
const IMAGE = TEST_RUNNER_IMAGE;
const SOCKET = '/var/run/docker.sock';
const PREFIX = `${TEST_PREFIX}${process.pid}-`;
const SRCINFO_NAME = `${PREFIX}srcinfo`;

const missing =
  spawnSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' }).status === 0
    ? []
    : [`a Docker Engine with ${IMAGE}: ${setupReason('docker') ?? 'run node scripts/setup-docker.mjs'}`];
const SUITE = `DockerRunner on a real engine${missing.length > 0 ? ` (skipped: ${missing.join('; ')})` : ''}`;
/** skipped where the set-up cannot make an engine; under CI=true a failing test says why instead */
const skip = setupMissing(SUITE, missing);

const options: DockerRunnerOptions = {
  url: SOCKET,
  image: IMAGE,
  prefix: PREFIX,
  srcinfoName: SRCINFO_NAME,
  network: 'host',
  pruneImages: false,
};

const docker = new Docker({ socketPath: SOCKET });

/** Removes every container this test process made. */
async function removeOurContainers(): Promise<void> {
  const all = await docker.listContainers({ all: true });
  for (const info of all) {
    if (info.Names.some((name) => name.startsWith(`/${PREFIX}`))) {
      await docker
        .getContainer(info.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
  }
}

async function containerId(name: string): Promise<string | null> {
  return await docker
    .getContainer(name)
    .inspect()
    .then(
      (info) => info.Id,
      () => null,
    );
}

async function pkginfo(file: string): Promise<string> {
  const out = await run('bsdtar', ['-xOf', file, '.PKGINFO']);
  return out.stdout;
}

/** A byte-for-byte proxy to the engine's socket that can be started and stopped, for outages. */
async function startProxy(listen: { path: string } | { host: string; port: number }) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(SOCKET);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(listen, resolve));
  return {
    port: (server.address() as AddressInfo | string | null as AddressInfo | null)?.port ?? 0,
    /** stops listening and cuts every open connection, as a stopped engine would */
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

testRunner('docker', {
  create: () => createDockerRunner(options),
  cleanup: removeOurContainers,
  skip,
  stats: true,
  incremental: true,
});

/** generous: makepkg forks thousands of times, which is slow on a loaded machine */
const TEST_TIMEOUT = 600_000;

describe.skipIf(skip)(SUITE, { timeout: TEST_TIMEOUT }, () => {
  const runner = createDockerRunner(options);
  let dir: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-docker-'));
    await fs.chmod(dir, 0o755);
  });
  afterAll(async () => {
    await runner.dispose();
    await removeOurContainers();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('compiles a C program for x86_64 (and a pkgbase with a + in its name)', async () => {
    const base = 'serene-hello-c++';
    const pkgbuild = [
      `pkgname=${base}`,
      'pkgver=1.0',
      'pkgrel=1',
      "arch=('x86_64')",
      "license=('MIT')",
      "source=('hello.c')",
      "sha256sums=('SKIP')",
      'build() { gcc -O2 -o hello hello.c; }',
      "check() { ./hello | grep -q 'hello from C'; }",
      'package() { install -Dm755 hello "$pkgdir/usr/bin/serene-hello"; }',
      '',
    ].join('\n');
    const job = await writeRunnerJob(dir, base, pkgbuild, {
      files: { 'hello.c': '#include <stdio.h>\nint main(void) { puts("hello from C"); return 0; }\n' },
    });
    const result = await runner.run(job);
    expect(result.success, result.logs).toBe(true);
    // no false alarm from pacman's empty local database (its ALPM_DB_VERSION is in the image)
    expect(result.logs).not.toMatch(/error:|incorrect version/i);
    expect(result.packages.map((file) => path.basename(file))).toEqual([`${base}-1.0-1-x86_64.pkg.tar.zst`]);
    expect(await containerId(`${PREFIX}serene-hello-c_x2b__x2b_`)).not.toBeNull();
    const unpacked = path.join(dir, 'unpacked');
    await fs.mkdir(unpacked);
    expect((await run('bsdtar', ['-xf', result.packages[0]!, '-C', unpacked])).code).toBe(0);
    const binary = path.join(unpacked, 'usr/bin/serene-hello');
    expect((await fs.readFile(binary)).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect((await run(binary, [])).stdout).toBe('hello from C\n');
    expect(await pkginfo(result.packages[0]!)).toMatch(/^arch = x86_64$/m);
    // stats from the cgroup files (v1 here, v2 elsewhere): gcc used memory and CPU
    expect(result.stats?.memoryPeak).toBeGreaterThan(0);
    expect(result.stats?.cpuUser).toBeGreaterThan(0);
    expect(result.stats?.ioRead).not.toBeNull();
    expect(result.stats?.ioWritten).not.toBeNull();
  });

  it('installs a dependency from our own repository (OWN_REPOSITORY_URL) with pacman in the container', async () => {
    const repoDir = path.join(dir, 'own-repo');
    const repo = createFilesystemRepository({ dir: repoDir, name: 'ownrepo' });
    await repo.init();
    const dependency = await writeSyntheticPackage(path.join(dir, 'synthetic'), {
      name: 'serene-test-dep',
      version: '1.2-1',
      files: { 'usr/share/serene-test-dep/message': 'hello from our own repository\n' },
    });
    await repo.publish([dependency]);
    const requests: string[] = [];
    const server = http.createServer((request, response) => {
      const name = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
      requests.push(name);
      const file = path.join(repoDir, name);
      if (name.includes('..') || name.includes('/')) {
        response.writeHead(404).end();
        return;
      }
      fs.stat(file).then(
        (stat) => {
          response.writeHead(200, { 'content-length': stat.size });
          createReadStream(file).pipe(response);
        },
        () => response.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const base = 'serene-test-dependent';
      const pkgbuild = simplePkgbuild(base, {
        extra: "depends=('serene-test-dep')",
        build: 'cat /usr/share/serene-test-dep/message',
      });
      const job = await writeRunnerJob(dir, base, pkgbuild, {
        inputs: { customRepo: `[ownrepo]\nSigLevel = Never\nServer = ${url}\n` },
      });
      const result = await runner.run(job);
      expect(result.success, result.logs).toBe(true);
      expect(result.logs).toContain('hello from our own repository');
      expect(requests).toContain('ownrepo.db');
      expect(requests).toContain(path.basename(dependency));
      expect(await pkginfo(result.packages[0]!)).toMatch(/^depend = serene-test-dep$/m);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await repo.dispose?.();
    }
  });

  it('reuses a package container; re-creates it for clean builds and changed settings (PACKAGER, limits)', async () => {
    const base = 'serene-test-reuse';
    const name = `${PREFIX}${base}`;
    const pkgbuild = simplePkgbuild(base, {
      build:
        'echo "pids.max: $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"',
    });
    // quick runs that end in the prepare commands, where only the container matters
    const quick = { prepare: 'echo "container started"; exit 3\n' };
    const build = async (
      using: typeof runner,
      extra: { clean?: boolean; inputs?: typeof quick; arch?: string } = {},
    ) => {
      const job = await writeRunnerJob(dir, base, pkgbuild, extra);
      const result = await using.run(extra.arch === undefined ? job : { ...job, arch: extra.arch });
      if (!extra.inputs) expect(result.success, result.logs).toBe(true);
      else expect(result.logs).toContain('container started');
      return { result, id: await containerId(name) };
    };
    const first = await build(runner, { clean: true, inputs: quick });
    const second = await build(runner, { inputs: quick });
    expect(second.id).toBe(first.id);
    const clean = await build(runner, { clean: true, inputs: quick });
    expect(clean.id).not.toBe(second.id);
    // the architecture (docs/engines.md#architectures): the engine's own needs no CARCH and keeps the
    // container; another one is told with CARCH in a new container, kept for its next build
    const carch = async (id: string | null) =>
      ((await docker.getContainer(id ?? 'none').inspect()).Config.Env ?? []).filter((entry) =>
        entry.startsWith('CARCH='),
      );
    const native = await build(runner, { inputs: quick, arch: 'x86_64' });
    expect(native.id).toBe(clean.id);
    const foreign = await build(runner, { inputs: quick, arch: 'aarch64' });
    expect(foreign.id).not.toBe(native.id);
    expect(await carch(foreign.id)).toEqual(['CARCH=aarch64']);
    expect((await build(runner, { inputs: quick, arch: 'aarch64' })).id).toBe(foreign.id);
    const back = await build(runner, { inputs: quick });
    expect(back.id).not.toBe(foreign.id);
    expect(await carch(back.id)).toEqual([]);

    const packager = 'Serene Test <test@serene.invalid>';
    const limited = createDockerRunner({
      ...options,
      packager,
      resources: { memoryBytes: 512 * 1024 * 1024, cpus: 1.5, pids: 300 },
    });
    try {
      const changed = await build(limited);
      expect(changed.id).not.toBe(back.id);
      expect(changed.result.logs).toContain('pids.max: 300');
      expect(await pkginfo(changed.result.packages[0]!)).toContain(`packager = ${packager}`);
      const info = await docker.getContainer(name).inspect();
      expect(info.HostConfig.Memory).toBe(512 * 1024 * 1024);
      expect(info.HostConfig.NanoCpus).toBe(1_500_000_000);
      expect(info.HostConfig.PidsLimit).toBe(300);
      expect(info.HostConfig.NetworkMode).toBe('host');
    } finally {
      await limited.dispose();
    }
  });

  it('a timeout or a cancel kills the build, says so, and removes its container', async () => {
    const base = 'serene-test-abort';
    const pkgbuild = simplePkgbuild(base);
    const inputs = { prepare: 'echo "sleeping now"; sleep 600\n' };
    const chunks: string[] = [];
    const timedOut = await runner.run(
      await writeRunnerJob(dir, base, pkgbuild, { inputs, timeoutMs: 6_000 }),
      {
        onLog: (chunk) => chunks.push(chunk),
      },
    );
    expect(timedOut.aborted).toBe('timeout');
    expect(timedOut.message).toBe(`build timed out after 6 s; its container ${PREFIX}${base} was killed`);
    expect(timedOut.logs.trimEnd().endsWith(`:: SERENE :: ${timedOut.message}`)).toBe(true);
    expect(chunks.join('')).toBe(timedOut.logs);
    expect(timedOut.exitCode).toBe(137);
    expect(await containerId(`${PREFIX}${base}`)).toBeNull();

    const controller = new AbortController();
    const cancelled = await runner.run(await writeRunnerJob(dir, base, pkgbuild, { inputs }), {
      signal: controller.signal,
      onLog: (chunk) => {
        if (chunk.includes('sleeping now')) controller.abort();
      },
    });
    expect(cancelled.aborted).toBe('cancelled');
    expect(cancelled.message).toBe(`build was cancelled; its container ${PREFIX}${base} was stopped`);
    expect(await containerId(`${PREFIX}${base}`)).toBeNull();
  });

  it('removes leftover containers at start-up, keeping stopped build containers and others', async () => {
    const make = async (name: string, command: string[], state: 'running' | 'exited' | 'created') => {
      const container = await docker.createContainer({
        name,
        Image: IMAGE,
        Entrypoint: command,
        HostConfig: { NetworkMode: 'host' },
      });
      if (state !== 'created') await container.start();
      if (state === 'exited') await container.wait();
      return name;
    };
    const running = await make(`${PREFIX}leftover-running`, ['sleep', '600'], 'running');
    const created = await make(`${PREFIX}leftover-created`, ['true'], 'created');
    const exited = await make(`${PREFIX}leftover-exited`, ['true'], 'exited');
    const srcinfo = await make(SRCINFO_NAME, ['true'], 'exited');
    const other = await make(`serene-other-${process.pid}`, ['sleep', '600'], 'running');
    try {
      const removed = await runner.removeLeftovers();
      expect(removed.sort()).toEqual([created, running, srcinfo].sort());
      expect(await containerId(running)).toBeNull();
      expect(await containerId(exited)).not.toBeNull();
      expect(await containerId(other)).not.toBeNull();
      // the runner's own start-up chore: init removes them (PULL_IMAGE off: no pull) and starts no schedule
      const again = await make(`${PREFIX}leftover-again`, ['sleep', '600'], 'running');
      const starting = createDockerRunner({ ...options, pullImage: false });
      await starting.init();
      expect(await containerId(again)).toBeNull();
      expect(await containerId(exited)).not.toBeNull();
      await starting.dispose();
    } finally {
      await docker
        .getContainer(other)
        .remove({ force: true })
        .catch(() => undefined);
    }
  });

  it('fails builds with a clear message while the engine is away, and builds again once it is back', async () => {
    const socket = path.join(dir, 'engine.sock');
    const logger = createMemoryLogger();
    const away = createDockerRunner({ ...options, url: `unix://${socket}`, logger });
    const base = 'serene-test-engine';
    // a quick build that ends in its prepare commands: what matters is that it runs
    const job = await writeRunnerJob(dir, base, simplePkgbuild(base), {
      inputs: { prepare: 'echo "the engine is back"; exit 3\n' },
    });
    try {
      const failure = await away.run(job).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(DockerUnreachableError);
      expect((failure as Error).message).toContain(`cannot reach the Docker Engine at unix://${socket}`);
      expect((failure as Error).message).toContain('Builds work again as soon as it is back');
      await expect(away.printSrcinfo(job.sourceDir)).rejects.toBeInstanceOf(DockerUnreachableError);
      expect(await away.pullImage()).toBe(false);
      expect(await away.removeLeftovers()).toEqual([]);

      const proxy = await startProxy({ path: socket });
      try {
        const result = await away.run(job);
        expect(result.exitCode, result.logs).toBe(3);
        expect(result.logs).toContain('the engine is back');
      } finally {
        await proxy.close();
      }
      await expect(away.run(job)).rejects.toThrow(/cannot reach the Docker Engine/);
    } finally {
      await away.dispose();
    }

    // the same over TCP (DOCKER_URL=tcp://...)
    const tcp = await startProxy({ host: '127.0.0.1', port: 0 });
    const overTcp = createDockerRunner({ ...options, url: `tcp://127.0.0.1:${tcp.port}` });
    try {
      expect(await overTcp.printSrcinfo(job.sourceDir)).toMatch(new RegExp(`^pkgbase = ${base}$`, 'm'));
    } finally {
      await overTcp.dispose();
      await tcp.close();
    }
  });

  it('a failed image pull is logged, never fatal; a missing image fails builds clearly', async () => {
    const logger = createMemoryLogger();
    const local = createDockerRunner({ ...options, pruneImages: true, logger });
    expect(await local.pullImage()).toBe(false);
    expect(logger.records.map((record) => [record.level, record.message])).toEqual([
      ['warn', 'could not pull the runner image; using the one the engine has'],
    ]);

    const missingLogger = createMemoryLogger();
    const missing = createDockerRunner({
      ...options,
      image: 'serene-test-missing:none',
      logger: missingLogger,
    });
    expect(await missing.pullImage()).toBe(false);
    expect(missingLogger.records.at(-1)?.level).toBe('error');
    const base = 'serene-test-noimage';
    const error = await missing
      .run(await writeRunnerJob(dir, base, simplePkgbuild(base)))
      .catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      /the runner image serene-test-missing:none is not on the engine and could not be pulled/,
    );
  });
});
