import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { renderPkgbuild, renderSrcinfo } from '../../../test/fixtures/aur/index.js';
import { type GitServer, startGitServer } from '../../../test/fixtures/git/index.js';
import { secretToken as serverSecretToken, webhookSecret } from '../../plugin-repo-http/src/auth.js';
import {
  fakeSigner,
  type Harness,
  SECRET,
  startHarness,
  WEBHOOK_SECRET,
} from '../../plugin-repo-http/src/testing/harness.js';
import { runCli } from './cli.js';
import type { CliIo } from './io.js';

// The API commands run in-process against a real server (Koa app, SQLite store, instant runner).

const TUNING = { pollMs: 100 };

interface Output {
  code: number;
  stdout: string;
  stderr: string;
  /** programs the command ran (`sudo pacman -Sy ...`) */
  ran: string[][];
}

interface RunOptions {
  tty?: boolean;
  stdinTTY?: boolean;
  prompt?: (question: string) => Promise<string>;
  /** exit code of programs the command runs @default 0 */
  execCode?: number;
  signal?: AbortSignal;
}

/** A home folder with its XDG folders: where one user's client keeps its files. */
class Home {
  constructor(readonly dir: string) {}
  get env(): NodeJS.ProcessEnv {
    return {
      HOME: this.dir,
      XDG_CONFIG_HOME: path.join(this.dir, 'config'),
      XDG_DATA_HOME: path.join(this.dir, 'data'),
      XDG_CACHE_HOME: path.join(this.dir, 'cache'),
    };
  }
  get configFile(): string {
    return path.join(this.dir, 'config', 'serene.yml');
  }
  get secretFile(): string {
    return path.join(this.dir, 'data', 'serene', 'secret.txt');
  }
  async writeConfig(text: string): Promise<void> {
    await fs.mkdir(path.dirname(this.configFile), { recursive: true });
    await fs.writeFile(this.configFile, text);
  }
  async writeSecret(secret: string): Promise<void> {
    await fs.mkdir(path.dirname(this.secretFile), { recursive: true });
    await fs.writeFile(this.secretFile, `${secret}\n`);
  }
  /** Configured for `url`, with the secret the harness authorizes. */
  async connect(url: string): Promise<this> {
    await this.writeConfig(`url: ${url}\n`);
    await this.writeSecret(SECRET);
    return this;
  }
  run(args: readonly string[], options: RunOptions = {}): Promise<Output> {
    return this.start(args, options).done;
  }
  /** Starts a command; `out` fills as it prints. */
  start(args: readonly string[], options: RunOptions = {}): { out: Output; done: Promise<Output> } {
    const out: Output = { code: -1, stdout: '', stderr: '', ran: [] };
    const io: CliIo = {
      stdout: (text) => {
        out.stdout += text;
      },
      stderr: (text) => {
        out.stderr += text;
      },
      cwd: this.dir,
      env: this.env,
      stdoutIsTTY: options.tty ?? false,
      stdinIsTTY: options.stdinTTY ?? false,
      prompt: options.prompt,
      exec: async (command, commandArgs) => {
        out.ran.push([command, ...commandArgs]);
        return options.execCode ?? 0;
      },
      signal: options.signal,
    };
    const done = runCli(args, io, TUNING).then((code) => {
      out.code = code;
      return out;
    });
    return { out, done };
  }
}

const homes: string[] = [];
async function newHome(): Promise<Home> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-cli-home-'));
  homes.push(dir);
  return new Home(dir);
}
afterEach(async () => {
  for (const dir of homes.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function until(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(20);
  }
}

/** Writes `chunk` into the running build of `base` as soon as there is one. */
async function logWhenRunning(h: Harness, base: string, chunk: string): Promise<void> {
  await until(() => {
    try {
      h.log(base, chunk);
      return true;
    } catch {
      return false;
    }
  });
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ------------------------------------------------------------------------------------------------

describe('configuration, secret and onboarding', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  it('host secret creates a 64-character alphanumeric secret once and prints its authorized_secrets token', async () => {
    const home = await newHome();
    const first = await home.run(['host', 'secret', '-m']);
    expect(first.code).toBe(0);
    const secret = await fs.readFile(home.secretFile, 'utf8');
    expect(secret).toMatch(/^[A-Za-z0-9]{64}$/);
    // the same hash as the server's check of authorized_secrets
    expect(first.stdout).toBe(`${serverSecretToken(secret)}\n`);
    expect((await fs.stat(home.secretFile)).mode & 0o777).toBe(0o600);

    const again = await home.run(['host', 'secret']);
    expect(again.code).toBe(0);
    expect(await fs.readFile(home.secretFile, 'utf8')).toBe(secret);
    const line = again.stdout
      .split('\n')
      .find((text) => text.startsWith('  '))
      ?.trim();
    expect(line).toMatch(new RegExp(`^${escapeRegExp(serverSecretToken(secret))} \\S+@\\S+$`));
  });

  it('the line host secret prints authorizes this machine on the server', async () => {
    const home = await newHome();
    await home.writeConfig(`url: ${h.url}\n`);
    expect((await home.run(['list'])).code).toBe(1);
    const line = (await home.run(['host', 'secret'])).stdout.split('\n')[1]!.trim();
    await fs.appendFile(h.secretsFile, `${line}\n`);
    await until(async () => (await home.run(['list'])).code === 0);
  });

  it('without a config file a non-interactive session fails with what to do, and writes nothing', async () => {
    const home = await newHome();
    const lists = () => h.requests.filter((request) => request.url === '/package/list').length;
    const before = lists();
    const out = await home.run(['list'], { stdinTTY: false, prompt: async () => h.url });
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    expect(out.stderr).toBe(
      `error: no server configured: pass --server <url>, or write 'url: https://your.server' to ${home.configFile}\n`,
    );
    await expect(fs.stat(home.configFile)).rejects.toThrow(/ENOENT/);
    expect(lists()).toBe(before);
  });

  it('on a terminal the onboarding asks for the server, checks it and writes the config', async () => {
    const home = await newHome();
    const questions: string[] = [];
    const out = await home.run(['list'], {
      stdinTTY: true,
      prompt: async (question) => {
        questions.push(question);
        // the url, then no to setting pacman up (onboarding.test.ts does that part)
        return questions.length === 1 ? `${h.url}/` : 'n';
      },
    });
    expect(questions).toEqual([
      'Url of your serene server (https://...): ',
      'Do you want to configure pacman now? [Y/n] ',
    ]);
    expect(out.ran).toEqual([]);
    expect(await fs.readFile(home.configFile, 'utf8')).toBe(`url: ${h.url}\n`);
    const secret = await fs.readFile(home.secretFile, 'utf8');
    expect(out.stdout).toContain(`  ${serverSecretToken(secret)} `);
    // the new secret is not authorized yet
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('error: invalid secret (403)');
  });

  it('the onboarding refuses a server that does not answer', async () => {
    const home = await newHome();
    const url = `http://127.0.0.1:${await closedPort()}`;
    const out = await home.run(['list'], { stdinTTY: true, prompt: async () => url });
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(
      /^error: cannot reach the server at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
    );
    await expect(fs.stat(home.configFile)).rejects.toThrow(/ENOENT/);
  });

  it('--server overrides the url of the config file and needs no config file', async () => {
    const home = await newHome();
    await home.writeSecret(SECRET);
    const withoutConfig = await home.run(['--server', h.url, 'list']);
    expect(withoutConfig.code).toBe(0);
    await home.writeConfig(`url: http://127.0.0.1:${await closedPort()}\n`);
    expect((await home.run(['-s', h.url, 'list'])).code).toBe(0);
    expect((await home.run(['list'])).code).toBe(1);
  });

  it('reads the legacy secret of the config file (not the placeholder "empty")', async () => {
    const home = await newHome();
    await home.writeConfig(`url: ${h.url}\nsecret: ${JSON.stringify(SECRET)}\nelevator: doas\n`);
    expect((await home.run(['list'])).code).toBe(0);
    await expect(fs.stat(home.secretFile)).rejects.toThrow(/ENOENT/);
    expect((await home.run(['host', 'secret', '-m'])).stdout).toBe(`${serverSecretToken(SECRET)}\n`);

    await home.writeConfig(`url: ${h.url}\nsecret: empty\n`);
    await home.writeSecret(SECRET);
    expect((await home.run(['list'])).code).toBe(0);
  });

  it('a broken config file is an error naming the file', async () => {
    const home = await newHome();
    await home.writeConfig('url: [unclosed\n');
    const out = await home.run(['list']);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`error: ${home.configFile} is not valid YAML`);
    await home.writeConfig('server: http://x\n');
    expect((await home.run(['list'])).stderr).toBe(
      `error: ${home.configFile} has no 'url' (the server, e.g. url: https://serene.example.org)\n`,
    );
  });

  it('a wrong secret gets the server message, its status and a hint', async () => {
    const home = await newHome();
    await home.writeConfig(`url: ${h.url}\n`);
    await home.writeSecret('not the right one');
    const out = await home.run(['list']);
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    expect(out.stderr).toBe(
      "error: invalid secret (403)\nhint: this machine's secret is not in the server's authorized_secrets; see `serene host secret`\n",
    );
  });

  it('a server that is not listening is one clear error line and exit 1', async () => {
    const home = await newHome();
    await home.connect(`http://127.0.0.1:${await closedPort()}`);
    for (const args of [['list'], ['info', 'x'], ['build', 'x', '-l'], ['server', 'info']]) {
      const out = await home.run(args);
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(
        /^error: cannot reach the server at http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED[^\n]*\n$/,
      );
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('packages: list, add, remove, info, set', () => {
  let h: Harness;
  let git: GitServer;
  let home: Home;
  beforeAll(async () => {
    h = await startHarness({
      packages: [
        { base: 'zeta', pkgver: '2.0' },
        { base: 'alpha', pkgver: '1.5', depends: ['libalpha'] },
        { base: 'libalpha', pkgver: '0.9' },
        { base: 'split', pkgver: '3.1', members: [{ name: 'split-a' }, { name: 'split-b' }] },
        { base: 'doomed', pkgver: '1' },
      ],
    });
    git = await startGitServer();
  });
  afterAll(async () => {
    await git.close();
    await h.close();
  });
  beforeEach(async () => {
    home = await (await newHome()).connect(h.url);
  });

  it('list says so when there are no packages', async () => {
    const fresh = await startHarness();
    try {
      const out = await (await (await newHome()).connect(fresh.url)).run(['list']);
      expect(out.code).toBe(0);
      expect(out.stdout).toBe('');
      expect(out.stderr).toContain('no packages are added yet');
    } finally {
      await fresh.close();
    }
  });

  it('add sends an AUR source and prints what the server added, dependencies too', async () => {
    const out = await home.run(['add', 'alpha', '--skipbuild']);
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(out.stdout).toBe('added alpha (aur package)\nadded libalpha as a dependency\n');
    const alpha = await h.store.getPackage('alpha');
    expect(alpha?.source).toMatchObject({ devel: false, inner: { type: 'AurSource', base: 'alpha' } });
    expect(alpha?.dependency).toBe(false);
    expect((await h.store.getPackage('libalpha'))?.dependency).toBe(true);
    // --skipbuild: build=false reached the server
    expect((await h.ask('/package/alpha/build')).json).toEqual([]);
  });

  it('add of an existing package fails with the server message; --replace replaces it', async () => {
    await home.run(['add', 'zeta', '-s']);
    const again = await home.run(['add', 'zeta', '-s']);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe('error: package with the same base is already added (400)\n');
    const replaced = await home.run(['add', 'zeta', '-s', '-r']);
    expect(replaced.code).toBe(0);
    expect(replaced.stdout).toBe('added zeta (aur package)\n');
  });

  it('add of an unknown AUR package is the 404 of the server', async () => {
    const out = await home.run(['add', 'no-such-package']);
    expect(out.code).toBe(1);
    expect(out.stderr).toBe("error: aur package 'no-such-package' does not exist (404)\n");
  });

  it('add -c -d sends a git source with devel; add -p -f reads the PKGBUILD from a file', async () => {
    const pkg = { base: 'custom', pkgver: '0.1' };
    await git.createRepo('custom', { PKGBUILD: renderPkgbuild(pkg), '.SRCINFO': renderSrcinfo(pkg) });
    const out = await home.run(['add', '-c', git.repoUrl('custom'), '-d', '-s']);
    expect(out.code).toBe(0);
    expect(out.stdout).toBe('added custom (git repository)\n');
    expect((await h.store.getPackage('custom'))?.source).toMatchObject({
      devel: true,
      inner: { type: 'GitSource', repository: git.repoUrl('custom') },
    });
    expect((await h.ask('/package/custom')).json).toMatchObject({
      devel: true,
      source_url: git.repoUrl('custom'),
    });

    // the harness cannot generate a .SRCINFO for a bare PKGBUILD: the server's 500 comes back whole
    await fs.writeFile(path.join(home.dir, 'PKGBUILD'), renderPkgbuild({ base: 'raw', pkgver: '1' }));
    const raw = await home.run(['add', '-p', '-f', 'PKGBUILD', '-s']);
    expect(raw.code).toBe(1);
    expect(raw.stderr).toMatch(/^error: .*\(500\)\n$/);
    const missing = await home.run(['add', '-p', '-f', 'nothere', '-s']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: ENOENT: no such file or directory.*nothere/);
  });

  it('add refuses flags that do not go together, before asking the server', async () => {
    const before = h.requests.length;
    for (const args of [
      ['add', 'x', '-d'],
      ['add', 'x', '-c', '-p'],
      ['add', 'x', '-s', '-l'],
      ['add', 'x', '-s', '-i'],
    ]) {
      const out = await home.run(args);
      expect(out.code, args.join(' ')).toBe(2);
      expect(out.stderr).toMatch(/^error: /);
    }
    expect(h.requests.length).toBe(before);
  });

  it('list prints aligned columns sorted by name, no colours off a terminal, and the completion cache', async () => {
    // by a member's name: the server answers with the package base
    expect((await home.run(['add', 'split-a', '-s'])).stdout).toBe('added split (aur package)\n');
    expect((await home.run(['build', 'split', '-l', '-q'])).code).toBe(0);
    const out = await home.run(['list']);
    expect(out.code).toBe(0);
    const lines = out.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^name +version +devel +enabled +build +time$/);
    const names = lines.slice(1).map((line) => line.split(/ +/)[0]);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(['alpha', 'libalpha', 'split', 'zeta']));
    const split = lines.find((line) => line.startsWith('split '))!;
    expect(split.split(/ +/)).toEqual([
      'split',
      '3.1',
      'no',
      'yes',
      'passing',
      expect.stringMatching(/^\d+s$/),
      'ago',
    ]);
    const alpha = lines.find((line) => line.startsWith('alpha '))!;
    expect(alpha.split(/ +/)).toEqual(['alpha', '-', 'no', 'yes', 'none', '-']);
    // columns line up: every row has its second column where the header has it
    const column = lines[0]!.indexOf('version');
    for (const line of lines.slice(1)) expect(line[column - 1]).toBe(' ');
    for (const line of lines.slice(1)) expect(line.slice(column, column + 1)).not.toBe(' ');
    expect(out.stdout).not.toContain('\x1b[');
    const cache = await fs.readFile(path.join(home.dir, 'cache', 'serene-package-completions.txt'), 'utf8');
    expect(cache.split(' ')).toEqual(names);

    const coloured = await home.run(['list'], { tty: true });
    expect(coloured.stdout).toContain('\x1b[32mpassing\x1b[39m');
  });

  it('info shows the package and its builds with ids from the oldest', async () => {
    await home.run(['add', 'split-a', '-s', '-r']);
    for (let i = 0; i < 2; i++) expect((await home.run(['build', 'split', '-l', '-q'])).code).toBe(0);
    const out = await home.run(['info', 'split']);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^base: +split$/m);
    expect(out.stdout).toMatch(/^members: +split-a split-b$/m);
    expect(out.stdout).toMatch(/^version: +3\.1$/m);
    expect(out.stdout).toMatch(
      new RegExp(`^source: +aur package \\(${escapeRegExp(h.aur.url)}/pkgbase/split\\)$`, 'm'),
    );
    const total = ((await h.ask('/package/split/build')).json as unknown[]).length;
    const rows = out.stdout.split('builds:\n')[1]!.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^id +state +reason +version +started +took$/);
    expect(rows.slice(1).map((row) => row.split(/ +/).slice(0, 4))).toEqual(
      Array.from({ length: total }, (_, i) => [
        String(total - 1 - i).padStart(4, '0'),
        'passing',
        'manual',
        '3.1',
      ]),
    );
  });

  it('info shows the newest 8 builds, all with --all (before or after the name)', async () => {
    await home.run(['add', 'split-a', '-s', '-r']);
    for (let i = 0; i < 9; i++) {
      await h.ask('/build', {
        method: 'POST',
        body: { packages: ['split'], clean: false, resolve: true, force: true },
      });
      await h.orchestrator.idle();
    }
    const total = ((await h.ask('/package/split/build')).json as unknown[]).length;
    expect(total).toBeGreaterThan(8);
    const rowsOf = (text: string) =>
      text
        .split(/builds.*:\n/)[1]!
        .trimEnd()
        .split('\n')
        .slice(1);
    const recent = await home.run(['info', 'split']);
    expect(recent.stdout).toContain(`builds (newest 8 of ${total}, --all for all):\n`);
    expect(rowsOf(recent.stdout).map((row) => row.slice(0, 4))).toEqual(
      Array.from({ length: 8 }, (_, i) => String(total - 1 - i).padStart(4, '0')),
    );
    for (const args of [
      ['info', 'split', '--all'],
      ['info', '-a', 'split'],
    ]) {
      const all = await home.run(args);
      expect(rowsOf(all.stdout), args.join(' ')).toHaveLength(total);
      expect(rowsOf(all.stdout).at(-1)?.slice(0, 4)).toBe('0000');
    }
  });

  it('info of an unknown package is the 404 of the server', async () => {
    for (const args of [
      ['info', 'ghost'],
      ['info', 'ghost', 'pkgbuild'],
      ['remove', 'ghost'],
      ['info', 'ghost', 'set', 'clean', 'true'],
    ]) {
      const out = await home.run(args);
      expect(out.code, args.join(' ')).toBe(1);
      expect(out.stderr).toBe('error: package with base ghost is not added (404)\n');
    }
    const build = await home.run(['info', 'ghost', 'build']);
    expect(build.code).toBe(1);
    expect(build.stderr).toBe('error: package not found or no build at this time (404)\n');
  });

  it('info build, logs and pkgbuild of a built package', async () => {
    await home.run(['add', 'split-a', '-s', '-r']);
    expect((await home.run(['build', 'split', '-l', '-q'])).code).toBe(0);
    const build = await home.run(['info', 'split', 'build']);
    expect(build.code).toBe(0);
    expect(build.stdout).toMatch(/^state: +success$/m);
    expect(build.stdout).toMatch(/^reason: +manual$/m);
    expect(build.stdout).toMatch(/^version: +3\.1$/m);
    expect(build.stdout).toMatch(/^ended: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(took \d+s\)$/m);

    const first = await home.run(['info', 'split', 'build', '0000']);
    expect(first.stdout).toMatch(/^reason: +manual$/m);

    const logs = await home.run(['info', 'split', 'logs', '0000']);
    expect(logs).toMatchObject({ code: 0, stderr: '' });
    expect(logs.stdout).toContain('==> Making package: split\n');
    const latest = await home.run(['info', 'split', 'logs']);
    expect(latest.stdout).toBe((await h.ask('/package/split/build/latest/logs')).json);

    const pkgbuild = await home.run(['info', 'split', 'pkgbuild']);
    expect(pkgbuild.code).toBe(0);
    expect(pkgbuild.stdout).toBe((await h.ask('/package/split/pkgbuild')).json);
    expect(pkgbuild.stdout).toContain('pkgbase=');

    const bad = await home.run(['info', 'split', 'build', 'yesterday']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(
      "error: expected valid date, valid index number, or 'latest', not 'yesterday' (400)\n",
    );
  });

  it('set sends each setting as the server expects and the server stores it', async () => {
    await home.run(['add', 'zeta', '-s', '-r']);
    const set = (...args: string[]) => home.run(['info', 'zeta', 'set', ...args]);
    expect((await set('enable', 'false')).code).toBe(0);
    expect((await set('clean', 'false')).code).toBe(0);
    expect((await set('private', 'true')).code).toBe(0);
    expect((await set('dependency', 'true')).code).toBe(0);
    expect((await set('schedule', '0 0 4 * * *')).stdout).toBe('set schedule of zeta to 0 0 4 * * *\n');
    expect((await set('prepare', 'echo', 'hello')).code).toBe(0);
    expect((await set('flags', 'nocheck', '--skippgpcheck')).code).toBe(0);
    expect(await h.store.getPackage('zeta')).toMatchObject({
      enabled: false,
      clean: false,
      private: true,
      dependency: true,
      schedule: '0 0 4 * * *',
      prepare: 'echo hello',
      flags: ['nocheck', 'skippgpcheck'],
    });
    expect((await home.run(['info', 'zeta'])).stdout).toMatch(/^schedule: +0 0 4 \* \* \* \(custom\)$/m);
    // empty text goes back to the default
    await set('schedule', '');
    await set('prepare', '');
    await set('flags');
    await set('private', 'false');
    expect(await h.store.getPackage('zeta')).toMatchObject({ schedule: null, prepare: null, flags: [] });
  });

  it('set: a bad cron is the 400 of the server, bad keys and values are usage errors', async () => {
    await home.run(['add', 'zeta', '-s', '-r']);
    const cron = await home.run(['info', 'zeta', 'set', 'schedule', '0 4 * * *']);
    expect(cron.code).toBe(1);
    expect(cron.stderr).toBe('error: cannot parse cron expression (you probably forgot the seconds) (400)\n');
    for (const args of [['enable', 'maybe'], ['enable'], ['flags', 'fast'], ['colour', 'blue']]) {
      const out = await home.run(['info', 'zeta', 'set', ...args]);
      expect(out.code, args.join(' ')).toBe(2);
      expect(out.stderr).toMatch(/^error: /);
    }
    const unknown = await home.run(['info', 'zeta', 'frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      "error: unknown subcommand 'frobnicate' of info; known are build, logs, pkgbuild, set\n",
    );
    expect((await home.run(['info', 'zeta', 'build', '1', '2'])).code).toBe(2);
    expect((await home.run(['frobnicate'])).code).toBe(2);
  });

  it('remove deletes the package on the server', async () => {
    await home.run(['add', 'doomed', '-s']);
    const out = await home.run(['remove', 'doomed']);
    expect(out).toMatchObject({ code: 0, stdout: 'removed doomed\n', stderr: '' });
    expect(await h.store.getPackage('doomed')).toBeUndefined();
  });

  it('server info, webhook and key', async () => {
    const info = await home.run(['server', 'info']);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/^server: +serene v0\.4\.3$/m);
    expect(info.stdout).toMatch(new RegExp(`^location: +${escapeRegExp(h.url)}$`, 'm'));
    expect(info.stdout).toMatch(/^architecture: +x86_64$/m);
    expect(info.stdout).toMatch(/^signed: +no$/m);
    const count = ((await h.ask('/package/list')).json as unknown[]).length;
    expect(info.stdout).toMatch(new RegExp(`^packages: +${count} \\(`, 'm'));

    await home.run(['add', 'zeta', '-s', '-r']);
    const hook = await home.run(['server', 'webhook', 'zeta', '-m']);
    const secret = webhookSecret(serverSecretToken(SECRET), 'zeta', WEBHOOK_SECRET);
    expect(hook.stdout).toBe(`${h.url}/webhook/package/zeta/build?secret=${encodeURIComponent(secret)}\n`);
    const url = new URL(hook.stdout.trim());
    expect((await h.ask(url.pathname + url.search, { method: 'POST', secret: null })).status).toBe(200);

    const key = await home.run(['server', 'key']);
    expect(key.code).toBe(1);
    expect(key.stderr).toBe('error: the server has no private key to sign packages (404)\n');
  });
});

// ------------------------------------------------------------------------------------------------

describe('waiting for builds: --listen, --install, logs -s', () => {
  let h: Harness;
  let home: Home;
  const failing = new Set<string>();
  beforeAll(async () => {
    h = await startHarness({
      packages: [
        { base: 'app', pkgver: '1.0', members: [{ name: 'app' }, { name: 'app-docs' }] },
        { base: 'broken', pkgver: '1.0' },
        { base: 'fresh', pkgver: '4.2' },
        { base: 'other', pkgver: '1.0' },
      ],
      behaviour: (base) => (failing.has(base) ? 'failure' : 'success'),
      http: { signer: fakeSigner() },
    });
    home = await (await newHome()).connect(h.url);
    for (const name of ['app', 'broken', 'other']) await home.run(['add', name, '-s']);
    failing.add('broken');
  });
  beforeEach(async () => {
    home = await (await newHome()).connect(h.url);
  });
  afterAll(() => h.close());

  it('build --listen prints the live log chunks and ends on the build state', async () => {
    h.hold('app');
    const running = home.run(['build', 'app', '--listen']);
    await logWhenRunning(h, 'app', 'chunk one\n');
    h.log('app', 'chunk two\n');
    h.release('app');
    const out = await running;
    expect(out.code).toBe(0);
    const log = out.stdout;
    expect(log.indexOf('chunk one\n')).toBeGreaterThanOrEqual(0);
    expect(log.indexOf('chunk two\n')).toBeGreaterThan(log.indexOf('chunk one\n'));
    expect(log).toContain('==> Making package: app\n');
    expect(log).toContain('==> Finished making\n');
    // plain progress lines off a terminal, the end state last
    expect(out.stderr).not.toContain('\r');
    expect(out.stderr).toContain('app: pending\n');
    expect(out.stderr).toMatch(/app: running \(build\)\n/);
    expect(out.stderr.trimEnd().split('\n').at(-1)).toBe('the build of app succeeded (version 1.0)');
    expect(out.ran).toEqual([]);
    const latest = (await h.ask('/package/app/build/latest')).json as { reason: string; state: unknown };
    expect(latest).toMatchObject({ reason: 'manual', state: { state: 'success' } });
  });

  it('build --listen -q prints no log; on a terminal the progress is a spinner', async () => {
    const out = await home.run(['build', 'app', '-l', '-q'], { tty: true });
    expect(out.code).toBe(0);
    expect(out.stdout).toBe('');
    expect(out.stderr).toContain('\r\x1b[K');
    expect(out.stderr).toContain('the build of app succeeded');
  });

  it('a failed build with --listen or --install exits 1 and installs nothing', async () => {
    const listen = await home.run(['build', 'broken', '-l']);
    expect(listen.code).toBe(1);
    expect(listen.stdout).toContain('==> ERROR: A failure occurred in build().\n');
    expect(listen.stderr).toContain('error: the build of broken did not succeed: failure\n');
    const install = await home.run(['build', 'broken', '-i', '-q']);
    expect(install.code).toBe(1);
    expect(install.ran).toEqual([]);
  });

  it('build --install runs the elevator with pacman -Sy and every member', async () => {
    const out = await home.run(['build', 'app', '-i', '-q']);
    expect(out.code).toBe(0);
    expect(out.ran).toEqual([['sudo', 'pacman', '-Sy', 'app', 'app-docs']]);

    // --listen wins over --install, as in the original
    const both = await home.run(['build', 'app', '-i', '-l', '-q']);
    expect(both.code).toBe(0);
    expect(both.ran).toEqual([]);

    const doas = await newHome();
    await doas.writeConfig(`url: ${h.url}\nelevator: doas -u root\n`);
    await doas.writeSecret(SECRET);
    const other = await doas.run(['build', 'app', '-i', '-q'], { execCode: 1 });
    expect(other.ran).toEqual([['doas', '-u', 'root', 'pacman', '-Sy', 'app', 'app-docs']]);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('error: pacman failed (exit code 1)\n');
  });

  it('add --install waits for the initial build of the new package and installs it', async () => {
    const out = await home.run(['add', 'fresh', '--install']);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('added fresh (aur package)\n');
    expect(out.stdout).toContain('==> Making package: fresh\n');
    expect(out.ran).toEqual([['sudo', 'pacman', '-Sy', 'fresh']]);
    const builds = (await h.ask('/package/fresh/build')).json as { reason: string }[];
    expect(builds.map((build) => build.reason)).toEqual(['initial']);
  });

  it('build sends clean, resolve and force as asked, and waits for nothing without -l/-i', async () => {
    const out = await home.run(['build', 'other', 'app', '-c', '-n']);
    expect(out).toMatchObject({ code: 0, stdout: 'building other, app\n' });
    await h.orchestrator.idle();
    // -g: not forced, and the package is up to date: no new build
    const count = ((await h.ask('/package/other/build')).json as unknown[]).length;
    expect((await home.run(['build', 'other', '-g'])).code).toBe(0);
    await h.orchestrator.idle();
    expect(((await h.ask('/package/other/build')).json as unknown[]).length).toBe(count);
    expect((await home.run(['build', 'other'])).code).toBe(0);
    await h.orchestrator.idle();
    expect(((await h.ask('/package/other/build')).json as unknown[]).length).toBe(count + 1);
    // --all is not forced unless -f
    expect((await home.run(['build', '--all'])).stdout).toBe('building all enabled packages\n');
    await h.orchestrator.idle();
    expect(((await h.ask('/package/other/build')).json as unknown[]).length).toBe(count + 1);
    expect((await home.run(['build', '--all', '--force'])).code).toBe(0);
    await h.orchestrator.idle();
    expect(((await h.ask('/package/other/build')).json as unknown[]).length).toBe(count + 2);
  });

  it('build: usage errors exit 2, unknown packages are the 404 of the server', async () => {
    for (const args of [
      ['build'],
      ['build', 'a', '--all'],
      ['build', 'a', 'b', '-l'],
      ['build', '-a', '-i'],
      ['build', 'a', '-f', '-g'],
    ]) {
      const out = await home.run(args);
      expect(out.code, args.join(' ')).toBe(2);
    }
    const unknown = await home.run(['build', 'ghost', '-l']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('error: package with base ghost is not added (404)\n');
  });

  it('info logs -s follows the live logs build after build, as the original, until interrupted', async () => {
    const controller = new AbortController();
    const following = home.start(['info', 'app', 'logs', '--subscribe'], { signal: controller.signal });
    await until(() => following.out.stderr.includes('waiting for a build of app\n'));
    for (const chunk of ['live chunk\n', 'next build\n']) {
      h.hold('app');
      expect((await home.run(['build', 'app'])).code).toBe(0);
      await logWhenRunning(h, 'app', chunk);
      h.release('app');
      await until(() => following.out.stdout.includes(chunk));
      await h.orchestrator.idle();
    }
    await until(() => (following.out.stderr.match(/build of app ended: success/g) ?? []).length === 2);
    // it is still following: it ends when interrupted
    expect(following.out.code).toBe(-1);
    controller.abort();
    const out = await following.done;
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('live chunk\n');
    expect(out.stdout).toContain('==> Finished making\n');
    expect(out.stdout.match(/^### package build is success$/gm)).toHaveLength(2);
    expect(out.stdout).toContain('### package build is running (build)\n');
    expect(out.stdout.indexOf('next build\n')).toBeGreaterThan(out.stdout.indexOf('live chunk\n'));
  });

  it('info logs of a running build shows the log so far and follows it to the end', async () => {
    h.hold('app');
    await home.run(['build', 'app']);
    await logWhenRunning(h, 'app', 'early chunk\n');
    const following = home.start(['info', 'app', 'logs']);
    // the server replays the log so far to a late subscriber
    await until(() => following.out.stdout.includes('early chunk\n'));
    h.log('app', 'late chunk\n');
    h.release('app');
    const out = await following.done;
    expect(out.code).toBe(0);
    expect(out.stdout.indexOf('late chunk\n')).toBeGreaterThan(out.stdout.indexOf('early chunk\n'));
    expect(out.stderr).toContain('build of app ended: success\n');
  });

  it('info logs --linger follows later builds until interrupted', async () => {
    const controller = new AbortController();
    const following = home.start(['info', 'app', 'logs', '-s', '-l'], { signal: controller.signal });
    await until(() => following.out.stderr.includes('waiting for a build of app\n'));
    for (const chunk of ['first build\n', 'second build\n']) {
      h.hold('app');
      expect((await home.run(['build', 'app'])).code).toBe(0);
      await logWhenRunning(h, 'app', chunk);
      h.release('app');
      await until(
        () =>
          following.out.stdout.includes('==> Finished making\n'.repeat(1)) &&
          following.out.stdout.includes(chunk),
      );
      await h.orchestrator.idle();
    }
    await until(() => (following.out.stderr.match(/build of app ended: success/g) ?? []).length === 2);
    controller.abort();
    const out = await following.done;
    expect(out.code).toBe(0);
    expect(out.stdout.indexOf('second build\n')).toBeGreaterThan(out.stdout.indexOf('first build\n'));
  });

  it('server key prints the armoured key; -m only the key', async () => {
    const machine = await home.run(['server', 'key', '-m']);
    expect(machine.code).toBe(0);
    expect(machine.stdout).toBe(await fakeSigner().publicKey());
    const human = await home.run(['server', 'key']);
    expect(human.stdout).toContain('-----BEGIN PGP PUBLIC KEY BLOCK-----');
    expect(human.stdout).toContain('pacman-key --add');
    expect((await home.run(['server', 'info'])).stdout).toMatch(/^signed: +yes$/m);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ------------------------------------------------------------------------------------------------

describe('the built executable', () => {
  const ROOT = path.resolve(import.meta.dirname, '../../..');
  const MAIN = path.join(ROOT, 'packages/cli/dist/main.js');
  let h: Harness;
  beforeAll(async () => {
    const build = await exec(['npx', 'tsc', '-b', 'packages/cli'], ROOT, process.env);
    expect(build.stdout + build.stderr).toBe('');
    h = await startHarness({ packages: [{ base: 'tool', pkgver: '1.0' }] });
  });
  afterAll(() => h.close());

  function exec(
    argv: string[],
    cwd: string,
    env: NodeJS.ProcessEnv,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(argv[0]!, argv.slice(1), { cwd, env, timeout: 30_000 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  it('exits by itself after waiting on the live stream, with the exit code of the build', async () => {
    const home = await newHome();
    await home.writeSecret(SECRET);
    const env = { ...home.env, PATH: process.env.PATH };
    const serene = (...args: string[]) => exec([process.execPath, MAIN, ...args], home.dir, env);
    expect((await serene('-s', h.url, 'add', 'tool', '-s')).code).toBe(0);
    const started = Date.now();
    const out = await serene('-s', h.url, 'build', 'tool', '-l');
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('==> Finished making\n');
    // no timer or socket keeps the process after the build ended
    expect(Date.now() - started).toBeLessThan(15_000);
    const missing = await serene('list');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('error: no server configured');
  });
});
