// The README's first steps as a newcomer takes them, on a fresh clone of the current commit in a
// temporary folder: its first command (`npm install`, from npm's cache: --prefer-offline), `npm start`,
// then the quick start's CLI lines run literally by bash in the clone (the port is the one change:
// a free one instead of 8080), with the AUR emulation on 127.0.0.1 standing in for the AUR and this
// clone's runner image building in a real Docker Engine. Slow (a whole `npm install`, sqlite3
// compiled); skips, saying why, without an engine and runner image, and fails instead under CI=true.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setupMissing } from '@serene/core/testing';
import { secretToken } from '@serene/plugin-repo-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, until } from '../../packages/host/src/testing/host-harness.js';
import { REPO, setupReason, TEST_PREFIX, TEST_RUNNER_IMAGE } from '../../scripts/clone.mjs';
import { type AurEmulator, startAurEmulator } from '../fixtures/aur/index.js';

const PREFIX = `${TEST_PREFIX}readme-${process.pid}-`;

/** The lines of the README's quick start block (the first `sh` block under "## Quick start"). */
async function quickStart(): Promise<string[]> {
  const readme = await fs.readFile(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = section.match(/```sh\n([\s\S]*?)```/)?.[1];
  if (block === undefined) throw new Error('README.md has no sh block under "## Quick start"');
  return block.split('\n').filter((line) => line.trim() !== '');
}

const missing =
  spawnSync('docker', ['image', 'inspect', TEST_RUNNER_IMAGE], { stdio: 'ignore' }).status === 0
    ? []
    : [
        `a Docker Engine with ${TEST_RUNNER_IMAGE}: ${setupReason('docker') ?? 'run node scripts/setup-docker.mjs'}`,
      ];
const SUITE = `README on a fresh clone${missing.length > 0 ? ` (skipped: ${missing.join('; ')})` : ''}`;

describe('README command lines', () => {
  it('call the CLI as ./serene, never through npx (a stranger package outside the clone; npx eats -s)', async () => {
    const files = [
      'README.md',
      ...(await fs.readdir(path.join(REPO, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
    ];
    const offending: string[] = [];
    for (const file of files) {
      const text = await fs.readFile(path.join(REPO, file), 'utf8');
      // inside code blocks: a command line that runs `serene` by a bare name or through npx/npm exec
      let inBlock = false;
      for (const [index, line] of text.split('\n').entries()) {
        if (line.startsWith('```')) {
          inBlock = !inBlock;
          continue;
        }
        if (inBlock && /\bnpx\s+(--?\S+\s+)*serene\b|\bnpm\s+exec\b.*\bserene\b/.test(line)) {
          offending.push(`${file}:${index + 1}: ${line}`);
        }
        if (inBlock && /^\s*(sudo\s+)?serene\s/.test(line)) offending.push(`${file}:${index + 1}: ${line}`);
      }
    }
    expect(offending).toEqual([]);
  });
});

describe.skipIf(setupMissing(SUITE, missing))(SUITE, () => {
  let root: string;
  let clone: string;
  let home: string;
  let aur: AurEmulator;
  let server: ChildProcess | undefined;
  let serverOutput = '';
  let lines: string[];

  /**
   * Runs one README line with bash in the clone, as a user's shell would (HOME: a new user's).
   * Asynchronously: the AUR stand-in answers from this process, which must not block while it waits.
   */
  const sh = (line: string, env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('bash', ['-c', line], {
        cwd: clone,
        env: { PATH: process.env.PATH ?? '', HOME: home, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 15 * 60_000,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.on('error', reject);
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-readme-'));
    clone = path.join(root, 'serene');
    home = path.join(root, 'home');
    await fs.mkdir(home);
    aur = await startAurEmulator({ packages: [{ base: 'yay-bin', pkgver: '12.5.7' }] });
    lines = await quickStart();
    const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).stdout.trim();
    const cloned = spawnSync('git', ['clone', '--quiet', '--no-checkout', REPO, clone], { encoding: 'utf8' });
    expect(cloned.status, cloned.stderr).toBe(0);
    const checkout = spawnSync('git', ['checkout', '--quiet', head], { cwd: clone, encoding: 'utf8' });
    expect(checkout.status, checkout.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    if (server?.pid !== undefined && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.on('exit', resolve));
      process.kill(-server.pid, 'SIGTERM');
      await exited;
    }
    for (const id of spawnSync('docker', ['ps', '--all', '--quiet', '--filter', `name=${PREFIX}`], {
      encoding: 'utf8',
    }).stdout.split('\n')) {
      if (id) spawnSync('docker', ['rm', '--force', id], { stdio: 'ignore' });
    }
    await aur?.close();
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  it(
    'npm install, npm start, then the quick start CLI lines, literally',
    async () => {
      // the first line: `npm install && npm start`, split so that the server runs in the background
      expect(lines[0]).toMatch(/^npm install && npm start\s+#/);
      // this user's own HOME for npm: its cache (offline first) and node-gyp's headers, as a user has them
      const install = await sh('npm install --prefer-offline --no-audit --no-fund', {
        HOME: process.env.HOME,
      });
      expect(install.status, `${install.stdout}\n${install.stderr}`).toBe(0);
      // npm linked the CLI: the committed launcher, which runs the build npm install made
      expect((await fs.lstat(path.join(clone, 'node_modules/.bin/serene'))).isSymbolicLink()).toBe(true);

      const port = await freePort();
      server = spawn('npm', ['start'], {
        cwd: clone,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH ?? '',
          HOME: home,
          PORT: String(port),
          HOST: '127.0.0.1',
          // what this machine can offer instead of the internet: the AUR emulation and no mirror
          AUR_URL: aur.url,
          SYNC_MIRROR: `http://127.0.0.1:${await freePort()}/{repo}/os/{arch}`,
          RUNNER_IMAGE: TEST_RUNNER_IMAGE,
          PULL_IMAGE: 'false',
          RUNNER_NETWORK: 'host',
          RUNNER_PREFIX: PREFIX,
          RUNNER_SRCINFO_NAME: `${PREFIX}srcinfo`,
        },
      });
      server.stdout!.on('data', (chunk) => (serverOutput += chunk));
      server.stderr!.on('data', (chunk) => (serverOutput += chunk));
      const url = `http://127.0.0.1:${port}`;
      await until(
        async () =>
          server!.exitCode !== null ||
          (await fetch(`${url}/`).then(
            (r) => r.ok,
            () => false,
          )),
        120_000,
        'npm start to answer',
      );
      expect(server.exitCode, serverOutput).toBeNull();
      // npm install built it: npm start compiled nothing
      expect(serverOutput).not.toContain('serene: compiling');

      // the CLI lines, as written (the port excepted)
      const cli = lines.filter((line) => line.startsWith('./serene '));
      expect(cli).toHaveLength(2);
      for (const line of cli) {
        const result = await sh(line.replaceAll('localhost:8080', `127.0.0.1:${port}`));
        expect(result.status, `${line}\n${result.stdout}\n${result.stderr}\n${serverOutput}`).toBe(0);
      }
      // the first line appended this machine's token to the server's authorized_secrets
      const secret = (await fs.readFile(path.join(home, '.local/share/serene/secret.txt'), 'utf8')).trim();
      expect(await fs.readFile(path.join(clone, 'data/authorized_secrets'), 'utf8')).toBe(
        `${secretToken(secret)}\n`,
      );
      // the second added yay-bin and waited for its build: it is in the repository
      const list = await fetch(`${url}/package/list`, { headers: { authorization: secret } });
      expect(list.status).toBe(200);
      expect(JSON.stringify(await list.json())).toContain('"base":"yay-bin"');
      const files = await fs.readdir(path.join(clone, 'data/repository'));
      expect(files.some((file) => /^yay-bin-12\.5\.7-1-any\.pkg\.tar\.zst$/.test(file))).toBe(true);
    },
    45 * 60_000,
  );
});
