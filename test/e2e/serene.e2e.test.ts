// The whole of serene with real parts: the host as its own process (`main.ts`, as `npm start` runs
// it), a real Docker Engine with the local runner image (`scripts/setup-docker.mjs`), makepkg in
// the runner containers, the AUR emulation and a git server on 127.0.0.1, signing on, and real
// pacman with `SigLevel = Required` as the client of the repository. Skips, saying why, when no
// engine or runner image is there.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createKnexStore, RESTART_MESSAGE } from '@serene/core';
import { createPacmanSandbox, hasProgram, type PacmanSandbox, setupMissing } from '@serene/core/testing';
import { exportPublicKey, loadOpenPgpSigner } from '@serene/plugin-signing';
import Docker from 'dockerode';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  createDataDir,
  freePort,
  TEST_SECRET,
  testEnv,
  until,
} from '../../packages/host/src/testing/host-harness.js';
import { setupReason, TEST_PREFIX, TEST_RUNNER_IMAGE } from '../../scripts/clone.mjs';
import { type AurEmulator, startAurEmulator } from '../fixtures/aur/index.js';
import { type GitServer, startGitServer } from '../fixtures/git/index.js';

// this clone's runner image and container names (scripts/clone.mjs)
const IMAGE = TEST_RUNNER_IMAGE;
const PREFIX = `${TEST_PREFIX}e2e-${process.pid}-`;
const MAIN = path.resolve(import.meta.dirname, '../../packages/host/src/main.ts');
const CLI = path.resolve(import.meta.dirname, '../../packages/cli/src/main.ts');
const STRICT = 'Required DatabaseRequired';

const missing = [
  spawnSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' }).status === 0
    ? undefined
    : `a Docker Engine with ${IMAGE}: ${setupReason('docker') ?? 'run node scripts/setup-docker.mjs'}`,
  ...['pacman', 'pacman-key', 'gpg'].filter((tool) => !hasProgram(tool)),
].filter((item) => item !== undefined);

/** A build's state as the API shows it. */
interface BuildJson {
  started: string;
  state: { state: string; info?: unknown };
  reason: string;
  version: string | null;
  ended: string | null;
}

const gitPkgbuild = (version: string) => `pkgname=e2e-git
pkgver=${version}
pkgrel=1
pkgdesc='custom git package of the end-to-end test'
arch=('any')
license=('MIT')
package() {
  install -d "$pkgdir/usr/share/e2e-git"
  echo "${version}" > "$pkgdir/usr/share/e2e-git/version"
}
`;

const rawPkgbuild = `pkgname=e2e-raw
pkgver=3.0
pkgrel=1
pkgdesc='raw PKGBUILD of the end-to-end test'
arch=('any')
license=('MIT')
package() {
  install -d "$pkgdir/usr/share/e2e-raw"
  echo raw > "$pkgdir/usr/share/e2e-raw/file"
}
`;

const slowPkgbuild = `pkgname=e2e-slow
pkgver=1.0
pkgrel=1
pkgdesc='a build that takes long enough to be killed in the middle'
arch=('any')
license=('MIT')
build() {
  echo "slow build started"
  sleep 120
}
package() {
  :
}
`;

const SUITE = `serene end to end (missing: ${missing.join(', ') || 'none'})`;

describe.skipIf(setupMissing(SUITE, missing))(SUITE, () => {
  let aur: AurEmulator;
  let git: GitServer;
  let data: Awaited<ReturnType<typeof createDataDir>>;
  let env: Record<string, string>;
  let url: string;
  let host: ChildProcess | undefined;
  let hostOutput = '';
  let sandbox: PacmanSandbox;
  let fingerprint: string;
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });

  const startHost = async () => {
    const child = spawn(process.execPath, ['--conditions=@serene/source', '--import', 'tsx', MAIN], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const before = hostOutput.length;
    child.stdout!.on('data', (chunk) => (hostOutput += chunk));
    child.stderr!.on('data', (chunk) => (hostOutput += chunk));
    host = child;
    await until(
      () => hostOutput.slice(before).includes('serene is serving') || child.exitCode !== null,
      120_000,
      'the host',
    );
    if (child.exitCode !== null) throw new Error(`the host exited (${child.exitCode}):\n${hostOutput}`);
  };
  const stopHost = async (signal: NodeJS.Signals) => {
    const child = host;
    if (!child || child.exitCode !== null) return null;
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill(signal);
    host = undefined;
    return exited;
  };
  const latestBuild = async (base: string) => {
    const reply = await api(url, `/package/${base}/build/latest`);
    return reply.status === 200 ? (reply.json as BuildJson) : undefined;
  };
  /** Waits for the latest build of `base` to end, and returns it. */
  const ended = async (base: string, after?: string) => {
    let build: BuildJson | undefined;
    await until(
      async () => {
        build = await latestBuild(base);
        if (!build || (after !== undefined && new Date(build.started) <= new Date(after))) return false;
        return !['pending', 'running'].includes(build.state.state);
      },
      600_000,
      `the build of ${base}`,
    );
    return build!;
  };
  const stateOf = (build: BuildJson) => build.state.state;
  /** Runs the `serene` command as a user would, with the test secret as its secret file. */
  const cli = async (args: string[]) => {
    const home = path.join(data.root, 'cli-home');
    await fs.mkdir(path.join(home, 'share', 'serene'), { recursive: true });
    await fs.writeFile(path.join(home, 'share', 'serene', 'secret.txt'), TEST_SECRET);
    const child = spawn(
      process.execPath,
      ['--conditions=@serene/source', '--import', 'tsx', CLI, '-s', url, ...args],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: home,
          XDG_DATA_HOME: path.join(home, 'share'),
          XDG_CONFIG_HOME: path.join(home, 'config'),
          XDG_CACHE_HOME: path.join(home, 'cache'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    return { code, output };
  };
  const explain = async (base: string) =>
    `${JSON.stringify(await latestBuild(base))}\n${(await api(url, `/package/${base}/build/latest/logs`)).text}\n${hostOutput.slice(-4000)}`;

  beforeAll(async () => {
    aur = await startAurEmulator({
      packages: [
        { base: 'e2e-lib', pkgver: '1.0' },
        { base: 'e2e-app', pkgver: '2.0', depends: ['e2e-lib'] },
      ],
    });
    git = await startGitServer();
    await git.createRepo('e2e-git', { PKGBUILD: gitPkgbuild('1.0') });
    const { privateKey } = await openpgp.generateKey({
      type: 'ecc',
      curve: 'ed25519Legacy',
      userIDs: [{ name: 'serene e2e', email: 'e2e@serene.invalid' }],
      format: 'armored',
      passphrase: 'e2e password',
    });
    const signer = (await loadOpenPgpSigner({ armoredKey: privateKey, password: 'e2e password' }))!;
    fingerprint = await signer.fingerprint();
    data = await createDataDir({ signKey: privateKey });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    env = testEnv(data.dataDir, {
      PORT: String(port),
      LOG_LEVEL: 'info',
      AUR_URL: aur.url,
      SIGN_KEY_PASSWORD: 'e2e password',
      OWN_REPOSITORY_URL: `${url}/x86_64`,
      WEBHOOK_SECRET: 'e2e webhook secret',
      RUNNER_IMAGE: IMAGE,
      RUNNER_NETWORK: 'host',
      RUNNER_PREFIX: PREFIX,
      RUNNER_SRCINFO_NAME: `${PREFIX}srcinfo`,
      PULL_IMAGE: 'false',
      SCHEDULING_DEFAULT: 'false',
      CONCURRENT_BUILDS: '2',
      ARCH: 'x86_64',
    });
    await startHost();

    sandbox = await createPacmanSandbox([{ name: 'serene', server: `${url}/x86_64`, sigLevel: STRICT }], {
      sigLevel: STRICT,
    });
    expect((await sandbox.pacmanKey(['--init'])).code).toBe(0);
    const keyFile = path.join(sandbox.root, 'serene.asc');
    await fs.writeFile(keyFile, await exportPublicKey(signer));
    expect((await sandbox.pacmanKey(['--add', keyFile])).code).toBe(0);
    expect((await sandbox.pacmanKey(['--lsign-key', fingerprint])).code).toBe(0);
  }, 300_000);

  afterAll(async () => {
    await stopHost('SIGKILL');
    for (const info of await docker.listContainers({ all: true }).catch(() => [])) {
      if (info.Names.some((name) => name.startsWith(`/${PREFIX}`))) {
        await docker
          .getContainer(info.Id)
          .remove({ force: true })
          .catch(() => undefined);
      }
    }
    await sandbox?.cleanup();
    await git?.close();
    await aur?.close();
    await data?.cleanup();
  }, 900_000);

  it('builds an AUR package after its AUR dependency (installed from our repository), a git package and a raw PKGBUILD; pacman installs them with SigLevel = Required', async () => {
    const addAur = await api(url, '/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'aur', name: 'e2e-app' } },
    });
    expect(addAur.status, addAur.text).toBe(200);
    const addedBases = (addAur.json as { base: string }[]).map((pkg) => pkg.base).sort();
    expect(addedBases).toEqual(['e2e-app', 'e2e-lib']);
    const addGit = await api(url, '/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'git', url: `${git.url}/e2e-git.git`, devel: false } },
    });
    expect(addGit.status, addGit.text).toBe(200);
    const addRaw = await api(url, '/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'raw', pkgbuild: rawPkgbuild, devel: false } },
    });
    expect(addRaw.status, addRaw.text).toBe(200);

    const builds: Record<string, BuildJson> = {};
    for (const base of ['e2e-lib', 'e2e-app', 'e2e-git', 'e2e-raw']) {
      builds[base] = await ended(base);
      expect(stateOf(builds[base]!), await explain(base)).toBe('success');
    }
    // the dependency was built first, and the dependent's build installed it from our repository
    expect(new Date(builds['e2e-lib']!.ended!).getTime()).toBeLessThanOrEqual(
      new Date(builds['e2e-app']!.ended!).getTime(),
    );
    const appLog = (await api(url, '/package/e2e-app/build/latest/logs')).text;
    expect(appLog).toMatch(/e2e-lib/);
    expect((await api(url, '/package/e2e-lib')).json).toMatchObject({ dependency: true });

    const sync = await sandbox.pacman(['-Sy']);
    expect(sync.code, sync.stderr).toBe(0);
    const install = await sandbox.pacman(['-S', '--noconfirm', 'e2e-app', 'e2e-git', 'e2e-raw']);
    expect(install.code, `${install.stdout}\n${install.stderr}`).toBe(0);
    const query = await sandbox.pacman(['-Q']);
    expect(query.stdout).toMatch(/^e2e-app 2\.0-1$/m);
    expect(query.stdout).toMatch(/^e2e-lib 1\.0-1$/m);
    expect(query.stdout).toMatch(/^e2e-git 1\.0-1$/m);
    expect(query.stdout).toMatch(/^e2e-raw 3\.0-1$/m);
    expect(await fs.readFile(path.join(sandbox.root, 'usr/share/e2e-git/version'), 'utf8')).toBe('1.0\n');

    // the serene command line sees the same
    const list = await cli(['list']);
    expect(list.code, list.output).toBe(0);
    for (const base of ['e2e-app', 'e2e-git', 'e2e-lib', 'e2e-raw']) expect(list.output).toContain(base);
    const pkgbuild = await cli(['info', 'e2e-raw', 'pkgbuild']);
    expect(pkgbuild.output).toContain("pkgdesc='raw PKGBUILD of the end-to-end test'");
  }, 900_000);

  it('a push to the git repository plus its webhook rebuilds the package', async () => {
    const before = (await latestBuild('e2e-git'))!;
    await git.commit('e2e-git', { PKGBUILD: gitPkgbuild('1.1') });
    const secret = await api(url, '/webhook/package/e2e-git/secret');
    expect(secret.status, secret.text).toBe(200);
    // a session ends (and releases its lock) just after its last build's end state
    let hook = { status: 0, text: '' };
    await until(async () => {
      hook = await api(
        url,
        `/webhook/package/e2e-git/build?secret=${encodeURIComponent(secret.json as string)}`,
        {
          method: 'POST',
          secret: null,
        },
      );
      return !(hook.status === 500 && hook.text.includes('currently in a running build session'));
    }, 30_000);
    expect(hook.status, hook.text).toBe(200);
    const build = await ended('e2e-git', before.started);
    expect(stateOf(build), await explain('e2e-git')).toBe('success');
    expect(build.reason).toBe('webhook');
    expect(build.version).toBe('1.1');
    expect((await sandbox.pacman(['-Syu', '--noconfirm'])).code).toBe(0);
    expect((await sandbox.pacman(['-Q', 'e2e-git'])).stdout.trim()).toBe('e2e-git 1.1-1');
  }, 900_000);

  it('a version bump in the AUR is picked up by the schedule', async () => {
    const before = (await latestBuild('e2e-lib'))!;
    await aur.bump('e2e-lib', { pkgver: '1.1' });
    // every 5 seconds for this package only (new packages are not scheduled: SCHEDULING_DEFAULT=false)
    expect(
      (
        await api(url, '/package/e2e-lib/set', {
          method: 'POST',
          body: { key: 'schedule', value: '*/5 * * * * *' },
        })
      ).status,
    ).toBe(200);
    expect(
      (await api(url, '/package/e2e-lib/set', { method: 'POST', body: { key: 'enabled', value: true } }))
        .status,
    ).toBe(200);
    const build = await ended('e2e-lib', before.started);
    expect(stateOf(build), await explain('e2e-lib')).toBe('success');
    expect(build.reason).toBe('schedule');
    expect(build.version).toBe('1.1');
    expect(
      (await api(url, '/package/e2e-lib/set', { method: 'POST', body: { key: 'enabled', value: false } }))
        .status,
    ).toBe(200);
  }, 900_000);

  it('the host killed with SIGKILL in the middle of a build: the repository still syncs and verifies, the build is marked, nothing else is lost', async () => {
    const add = await api(url, '/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'raw', pkgbuild: slowPkgbuild, devel: false } },
    });
    expect(add.status, add.text).toBe(200);
    // the live log (SSE) shows the build running inside its container
    const controller = new AbortController();
    const stream = await fetch(`${url}/package/e2e-slow/build/logs/subscribe`, {
      headers: { Authorization: TEST_SECRET },
      signal: controller.signal,
    });
    expect(stream.status).toBe(200);
    let seen = '';
    const decoder = new TextDecoder();
    const timeout = setTimeout(() => controller.abort(), 300_000);
    try {
      for await (const chunk of stream.body!) {
        seen += decoder.decode(chunk as Uint8Array, { stream: true });
        if (seen.includes('slow build started')) break;
      }
    } finally {
      clearTimeout(timeout);
      controller.abort();
    }
    expect(seen).toMatch(/^event: log$/m);
    expect(seen).toContain('slow build started');
    const killed = await latestBuild('e2e-slow');
    expect(await stopHost('SIGKILL')).toBe(null);

    await startHost();
    const marked = (await latestBuild('e2e-slow'))!;
    expect(marked.started).toBe(killed!.started);
    expect(stateOf(marked)).toBe('fatal');
    expect(JSON.stringify(marked.state)).toContain(RESTART_MESSAGE);
    // the leftover build container was removed at start-up
    const left = await docker.listContainers({ all: true });
    expect(
      left.filter((info) => info.Names.includes(`/${PREFIX}e2e-slow`) && info.State === 'running'),
    ).toEqual([]);
    // everything else is as it was
    const list = ((await api(url, '/package/list')).json as { base: string }[]).map((pkg) => pkg.base).sort();
    expect(list).toEqual(['e2e-app', 'e2e-git', 'e2e-lib', 'e2e-raw', 'e2e-slow']);
    const sync = await sandbox.pacman(['-Syy']);
    expect(sync.code, sync.stderr).toBe(0);
    const search = await sandbox.pacman(['-Sl', 'serene']);
    expect(search.stdout).toMatch(/e2e-app 2\.0-1/);
    expect(search.stdout).toMatch(/e2e-git 1\.1-1/);
    // and the store was closed cleanly by the next SIGTERM
    expect(await stopHost('SIGTERM')).toBe(0);
    const store = createKnexStore({ filename: path.join(data.dataDir, 'serene.db') });
    await store.open();
    try {
      expect(await store.listUnfinishedBuilds()).toEqual([]);
    } finally {
      await store.close();
    }
  }, 900_000);
});
