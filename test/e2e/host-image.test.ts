// The server's container image (packages/host/Dockerfile) as it is deployed: built as `serene:local`
// by scripts/build-host-image.mjs (reused when its inputs are unchanged), run on the real Docker
// Engine with a data folder mounted at /app and the engine's socket, then stopped with SIGTERM.
// Host networking, so the test reaches it on 127.0.0.1 at a free port. Skips, saying why, when no
// engine answers or the image cannot be built.

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { skipOrFail } from '@serene/core/testing';
import { secretToken } from '@serene/plugin-repo-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../packages/host/src/testing/host-harness.js';
import { setupReason, TEST_HOST_IMAGE, TEST_PREFIX, TEST_RUNNER_IMAGE } from '../../scripts/clone.mjs';
import { type AurEmulator, startAurEmulator } from '../fixtures/aur/index.js';

const REPO = path.resolve(import.meta.dirname, '../..');
// this clone's images and names (scripts/clone.mjs): two clones on one engine never touch each other's
const IMAGE = TEST_HOST_IMAGE;
const NAME = `${TEST_PREFIX}image-${process.pid}`;
const SOCKET = '/var/run/docker.sock';
const SECRET = 'image-test-secret';
const RUNNER_IMAGE = TEST_RUNNER_IMAGE;
const RUNNER_PREFIX = `${TEST_PREFIX}image-${process.pid}-`;
let aur: AurEmulator | undefined;

/** Why the tests skip; undefined once the container serves. */
let skipReason: string | undefined;
let dataDir: string | undefined;
let base = '';
/** the image's user inside the container, as `uid:gid` */
let owner = '';

function docker(args: string[]): { code: number; stdout: string; stderr: string } {
  const result = spawnSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return {
    code: result.status ?? -1,
    stdout: (result.stdout ?? '').trim(),
    stderr: (result.stderr ?? '').trim(),
  };
}

/** Runs the build script; resolves with its exit code and the end of its output. */
function buildImage(): Promise<{ code: number; tail: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(REPO, 'scripts/build-host-image.mjs'), '--tag', IMAGE], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error) => resolve({ code: -1, tail: error.message }));
    child.on('close', (code) => resolve({ code: code ?? -1, tail: output.trim() }));
  });
}

async function serving(url: string, deadline: number): Promise<void> {
  for (;;) {
    const state = docker(['inspect', '--format', '{{.State.Status}}', NAME]).stdout;
    if (state !== 'running') {
      throw new Error(`the container is ${state}:\n${docker(['logs', '--tail', '50', NAME]).stderr}`);
    }
    const reply = await fetch(url).catch(() => undefined);
    if (reply?.ok) return;
    if (Date.now() > deadline) {
      throw new Error(`no answer at ${url}:\n${docker(['logs', '--tail', '50', NAME]).stderr}`);
    }
    await sleep(250);
  }
}

beforeAll(async () => {
  if (docker(['version', '--format', '{{.Server.Version}}']).code !== 0) {
    skipReason = `no Docker Engine answers: ${setupReason('docker') ?? 'run node scripts/setup-docker.mjs --no-image'}`;
    return;
  }
  const build = await buildImage();
  if (build.code !== 0) {
    const last = build.tail.split('\n').at(-1) ?? '';
    skipReason = `${IMAGE} could not be built (node scripts/build-host-image.mjs --tag ${IMAGE}): ${last}`;
    console.warn(`${skipReason}\n${build.tail}`);
    return;
  }
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-image-'));
  await fs.writeFile(path.join(dataDir, 'authorized_secrets'), `${secretToken(SECRET)} image-test\n`);
  const port = await freePort();
  aur = await startAurEmulator({ packages: [{ base: 'image-built', pkgver: '4.2' }] });
  const run = docker([
    'run',
    '--detach',
    '--name',
    NAME,
    '--network',
    'host',
    '--env',
    `PORT=${port}`,
    // no registry here; the runner image is not needed for these requests
    '--env',
    'PULL_IMAGE=false',
    // builds: the local runner image, runners on the host network reach the AUR emulation on loopback
    '--env',
    `AUR_URL=${aur.url}`,
    '--env',
    `RUNNER_IMAGE=${RUNNER_IMAGE}`,
    '--env',
    'RUNNER_NETWORK=host',
    '--env',
    `RUNNER_PREFIX=${RUNNER_PREFIX}`,
    '--env',
    `RUNNER_SRCINFO_NAME=${RUNNER_PREFIX}srcinfo`,
    '--env',
    'SYNC_MIRROR=http://127.0.0.1:9/{repo}/os/{arch}',
    // serene-cli depends on nodejs, which needs the official mirror; the bundle is checked below
    '--env',
    'BUILD_CLI=false',
    '--volume',
    `${dataDir}:/app`,
    '--volume',
    `${SOCKET}:${SOCKET}`,
    IMAGE,
  ]);
  if (run.code !== 0) throw new Error(`docker run failed: ${run.stderr}`);
  base = `http://127.0.0.1:${port}`;
  await serving(`${base}/`, Date.now() + 60_000);
  owner = docker(['exec', NAME, 'sh', '-c', 'echo "$(id -u):$(id -g)"']).stdout;
}, 30 * 60_000);

afterAll(async () => {
  if (docker(['inspect', NAME]).code === 0) docker(['rm', '--force', '--volumes', NAME]);
  for (const id of docker(['ps', '--all', '--quiet', '--filter', `name=${RUNNER_PREFIX}`]).stdout.split(
    '\n',
  )) {
    if (id) docker(['rm', '--force', id]);
  }
  await aur?.close();
  if (dataDir) {
    // the server wrote as the image's user (root): a test run by another user clears it through the image
    await fs.rm(dataDir, { recursive: true, force: true }).catch(async () => {
      docker([
        'run',
        '--rm',
        '--volume',
        `${dataDir}:/data`,
        '--entrypoint',
        'find',
        IMAGE,
        '/data',
        '-mindepth',
        '1',
        '-delete',
      ]);
      await fs.rm(dataDir!, { recursive: true, force: true });
    });
  }
});

describe('the server image', () => {
  it('answers GET / with its SereneInfo', async (ctx) => {
    if (skipReason) skipOrFail(ctx, skipReason);
    const reply = await fetch(`${base}/`);
    expect(reply.status).toBe(200);
    const info = (await reply.json()) as Record<string, unknown>;
    expect(info).toMatchObject({ name: 'serene', readable: false, signed: false });
    expect(info.version).toMatch(/^v\d+\.\d+\.\d+/);
    expect(typeof info.architecture).toBe('string');
    expect(Number.isNaN(Date.parse(String(info.started)))).toBe(false);
  });

  it('carries the bundled CLI for serene-cli, and gnupg for signing through a gpg-agent', async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const cli = docker([
      'exec',
      NAME,
      'node',
      '/opt/serene/packages/host/dist/serene-cli/dist/main.js',
      '--version',
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/\d+\.\d+\.\d+/);
    for (const tool of ['gpg', 'gpgconf', 'gpg-connect-agent']) {
      expect(docker(['exec', NAME, 'sh', '-c', `command -v ${tool}`]).code, tool).toBe(0);
    }
  });

  it('serves the (empty) repository database as a gzip', async (ctx) => {
    if (skipReason) skipOrFail(ctx, skipReason);
    const info = (await (await fetch(`${base}/`)).json()) as { architecture: string };
    const reply = await fetch(`${base}/${info.architecture}/serene.db`);
    expect(reply.status).toBe(200);
    const body = new Uint8Array(await reply.arrayBuffer());
    expect([body[0], body[1]]).toEqual([0x1f, 0x8b]);
  });

  it('lists packages for the secret in the mounted authorized_secrets, and refuses others', async (ctx) => {
    if (skipReason) skipOrFail(ctx, skipReason);
    expect((await fetch(`${base}/package/list`)).status).toBe(401);
    expect((await fetch(`${base}/package/list`, { headers: { authorization: 'wrong' } })).status).toBe(403);
    const reply = await fetch(`${base}/package/list`, { headers: { authorization: SECRET } });
    expect(reply.status).toBe(200);
    expect(await reply.json()).toEqual([]);
  });

  it('serves /metrics and passes its own health check', async (ctx) => {
    if (skipReason) skipOrFail(ctx, skipReason);
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('serene_http_requests_total');
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    // the HEALTHCHECK command of the image, run in the container now instead of after its interval
    const test = JSON.parse(
      docker(['image', 'inspect', '--format', '{{json .Config.Healthcheck.Test}}', IMAGE]).stdout,
    );
    expect(test[0]).toBe('CMD');
    expect(docker(['exec', NAME, ...test.slice(1)]).code).toBe(0);
  });

  it(
    'builds an AUR package in a runner container through the mounted engine, and serves it',
    async (ctx) => {
      if (skipReason) skipOrFail(ctx, skipReason);
      if (docker(['image', 'inspect', RUNNER_IMAGE]).code !== 0) {
        skipOrFail(
          ctx,
          `no ${RUNNER_IMAGE}: ${setupReason('docker') ?? 'run node scripts/setup-docker.mjs'}`,
        );
      }
      const auth = { authorization: SECRET, 'content-type': 'application/json' };
      const added = await fetch(`${base}/package/add`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ replace: false, source: { type: 'aur', name: 'image-built' } }),
      });
      expect(added.status, await added.text()).toBe(200);
      let state = '';
      const deadline = Date.now() + 10 * 60_000;
      while (!['success', 'failure', 'fatal', 'cancelled'].includes(state) && Date.now() < deadline) {
        await sleep(1000);
        const build = await fetch(`${base}/package/image-built/build/latest`, { headers: auth });
        state = build.ok ? ((await build.json()) as { state: { state: string } }).state.state : '';
      }
      const logs = await fetch(`${base}/package/image-built/build/latest/logs`, { headers: auth });
      expect(state, `${await logs.text()}\n${docker(['logs', '--tail', '40', NAME]).stderr}`).toBe('success');
      const info = (await (await fetch(`${base}/`)).json()) as { architecture: string };
      const file = await fetch(`${base}/${info.architecture}/package/image-built`);
      expect(file.status).toBe(200);
      expect(file.url).toMatch(/image-built-4\.2-1-any\.pkg\.tar\.zst$/);
    },
    15 * 60_000,
  );

  it('stops on SIGTERM within seconds, exit code 0, leaving its data in /app owned by its user', async (ctx) => {
    if (skipReason) skipOrFail(ctx, skipReason);
    expect(docker(['image', 'inspect', '--format', '{{.Config.StopSignal}}', IMAGE]).stdout).toBe('SIGTERM');
    const started = Date.now();
    const stop = docker(['stop', '--time', '20', NAME]);
    expect(stop.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(docker(['inspect', '--format', '{{.State.ExitCode}}', NAME]).stdout).toBe('0');
    const logs = docker(['logs', NAME]).stdout;
    expect(logs).toContain('stopped');

    expect(owner).toMatch(/^\d+:\d+$/);
    for (const file of ['serene.db', 'repository/serene.db.tar.gz']) {
      const stat = await fs.stat(path.join(dataDir!, file));
      expect(`${stat.uid}:${stat.gid}`, file).toBe(owner);
    }
  });
});
