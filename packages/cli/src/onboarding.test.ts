import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Signer } from '@serene/core';
import {
  createPacmanSandbox,
  createTestGpgHome,
  hasProgram,
  type PacmanSandbox,
  run,
  type TestGpgHome,
} from '@serene/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, SECRET, startHarness } from '../../plugin-repo-http/src/testing/harness.js';
import { runCli } from './cli.js';
import { versionWarning } from './client.js';
import type { CliIo } from './io.js';

// The onboarding and `host signatures` against a real server (the HTTP harness) whose `GET /key` is a
// real public key: on a terminal (a pty made by `script`, the built executable, real sudo, tee and
// pacman-key on a pacman.conf and keyring of a temp folder), and off a terminal (in-process).
const ROOT = path.resolve(import.meta.dirname, '../../..');
const MAIN = path.join(ROOT, 'packages/cli/dist/main.js');

const missing = ['gpg', 'pacman-key', 'script', 'sudo', 'tee'].filter((program) => !hasProgram(program));

let gpg: TestGpgHome;
let h: Harness;
let publicKey: string;

/** A signer whose only use here is its public key (`GET /key`, `signed: true`). */
function keyOnlySigner(): Signer {
  return {
    name: 'test',
    sign: async () => {
      throw new Error('not used');
    },
    publicKey: async () => publicKey,
    fingerprint: async () => gpg.fingerprint,
  };
}

/** A home folder: XDG folders of its own. */
async function newHome(): Promise<{ dir: string; env: NodeJS.ProcessEnv }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-cli-onboard-'));
  return {
    dir,
    env: {
      HOME: dir,
      XDG_CONFIG_HOME: path.join(dir, 'config'),
      XDG_DATA_HOME: path.join(dir, 'data'),
      XDG_CACHE_HOME: path.join(dir, 'cache'),
    },
  };
}

/** Runs the command in-process with recorded output. */
async function inProcess(
  args: string[],
  env: NodeJS.ProcessEnv,
  options: { tty?: boolean; answers?: string[] } = {},
): Promise<{ code: number; stdout: string; stderr: string; ran: { args: string[]; input?: string }[] }> {
  const out = { code: -1, stdout: '', stderr: '', ran: [] as { args: string[]; input?: string }[] };
  const answers = [...(options.answers ?? [])];
  const io: CliIo = {
    stdout: (text) => {
      out.stdout += text;
    },
    stderr: (text) => {
      out.stderr += text;
    },
    cwd: os.tmpdir(),
    env,
    stdinIsTTY: options.tty ?? false,
    prompt: options.tty
      ? async (question) => {
          out.stdout += question;
          return answers.shift() ?? '';
        }
      : undefined,
    exec: async (command, commandArgs, execOptions) => {
      out.ran.push({ args: [command, ...commandArgs], input: execOptions?.input });
      return 0;
    },
  };
  out.code = await runCli(args, io, { pollMs: 100 });
  return out;
}

describe.skipIf(missing.length > 0 && process.env.CI !== 'true')(
  `onboarding and host signatures${missing.length > 0 ? ` (skipped: no ${missing.join(', ')})` : ''}`,
  () => {
    let sandbox: PacmanSandbox;

    beforeAll(async () => {
      const build = await run('npx', ['tsc', '-b', 'packages/cli'], { cwd: ROOT });
      expect(build.code, build.stdout + build.stderr).toBe(0);
      gpg = await createTestGpgHome({ uid: 'serene server <server@serene.invalid>' });
      publicKey = (
        await run('gpg', ['--batch', '--homedir', gpg.homedir, '--armor', '--export', gpg.fingerprint])
      ).stdout;
      h = await startHarness({ http: { signer: keyOnlySigner(), allowReads: true } });
      sandbox = await createPacmanSandbox([]);
      expect((await sandbox.pacmanKey(['--init'])).code).toBe(0);
    });
    afterAll(async () => {
      await h?.close();
      await sandbox?.cleanup();
      await gpg?.cleanup();
    });

    it('on a terminal: appends the repository to pacman.conf and imports and locally signs the key through sudo', async () => {
      const home = await newHome();
      const before = await fs.readFile(sandbox.config, 'utf8');
      // the answers, each given when its question shows on the terminal
      const script: [RegExp, string][] = [
        [/Url of your serene server/, h.url],
        [/configure pacman now\? \[Y\/n\]/, ''],
        [/Check the signatures \(recommended\)\? \[Y\/n\]/, 'y'],
        [/Append this to .* as root\? \[Y\/n\]/, 'y'],
        [/Import the key with `pacman-key --add` as root\? \[Y\/n\]/, 'yes'],
        [/Sign it locally with `pacman-key --lsign-key [0-9A-F]{40}` as root\? \[Y\/n\]/, 'Y'],
      ];
      const command = `${process.execPath} ${MAIN} list`;
      const child = spawn('script', ['-qec', command, '/dev/null'], {
        env: { ...process.env, ...home.env, SERENE_PACMAN_CONF: sandbox.config, LC_ALL: 'C' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let screen = '';
      let step = 0;
      child.stdout.on('data', (chunk: Buffer) => {
        screen += chunk.toString('utf8');
        const next = script[step];
        if (next?.[0].test(screen.slice(screen.lastIndexOf('\n', screen.length - 2) + 1))) {
          step++;
          child.stdin.write(`${next[1]}\n`);
        }
      });
      const code = await new Promise<number>((resolve) => child.on('close', (exit) => resolve(exit ?? -1)));
      try {
        expect(step, screen).toBe(script.length);
        // then the command the user ran goes on (this server lets everyone read)
        expect(code, screen).toBe(0);
        expect(screen).toContain('no packages are added yet');
        // pacman.conf: what was there, then the block (signed: no SigLevel line)
        expect(await fs.readFile(sandbox.config, 'utf8')).toBe(
          `${before}\n[serene]\nServer = ${h.url}/x86_64\n`,
        );
        // the key is in pacman's keyring, and trusted (signed by its local master key)
        const listed = await run('gpg', [
          '--homedir',
          sandbox.gpgdir,
          '--with-colons',
          '--list-keys',
          gpg.fingerprint,
        ]);
        expect(listed.code, listed.stderr).toBe(0);
        expect(listed.stdout).toMatch(/^pub:f:/m);
        expect(screen).toMatch(/running sudo pacman-key --config \S+ --lsign-key [0-9A-F]{40}/);
        // pacman itself reads the changed configuration
        const conf = await run('pacman-conf', ['--config', sandbox.config, '--repo-list']);
        expect(conf.stdout.trim().split('\n')).toContain('serene');
      } finally {
        await fs.writeFile(sandbox.config, before);
        await fs.rm(home.dir, { recursive: true, force: true });
      }
    });

    it('on a terminal, an existing [serene] section is left alone and nothing runs as root', async () => {
      const home = await newHome();
      const conf = path.join(home.dir, 'pacman.conf');
      await fs.writeFile(conf, '[options]\n\n[serene]\nServer = https://elsewhere/x86_64\n');
      const out = await inProcess(
        ['list'],
        { ...home.env, SERENE_PACMAN_CONF: conf },
        {
          tty: true,
          answers: [h.url, 'y'],
        },
      );
      expect(out.stdout).toContain('already has a [serene] section');
      expect(out.ran).toEqual([]);
      await fs.rm(home.dir, { recursive: true, force: true });
    });

    it('host signatures off a terminal prints the commands, with the key of the server', async () => {
      const home = await newHome();
      await fs.mkdir(path.join(home.dir, 'config'));
      await fs.writeFile(path.join(home.dir, 'config/serene.yml'), `url: ${h.url}\nelevator: doas\n`);
      await fs.mkdir(path.join(home.dir, 'data/serene'), { recursive: true });
      await fs.writeFile(path.join(home.dir, 'data/serene/secret.txt'), SECRET);
      const out = await inProcess(['host', 'signatures'], home.env);
      expect(out.code, out.stderr).toBe(0);
      expect(out.ran).toEqual([]);
      expect(out.stdout).toBe(
        [
          `The server signs its packages with the key ${gpg.fingerprint}. To have pacman trust it, run:`,
          '  serene server key -m | doas pacman-key --add -',
          `  doas pacman-key --lsign-key ${gpg.fingerprint}`,
          '',
        ].join('\n'),
      );
      // on a terminal: the elevator of serene.yml runs pacman-key, with the key on its input
      const asked = await inProcess(['host', 'signatures'], home.env, { tty: true, answers: ['', ''] });
      expect(asked.code, asked.stderr).toBe(0);
      expect(asked.ran).toEqual([
        { args: ['doas', 'pacman-key', '--add', '-'], input: publicKey },
        { args: ['doas', 'pacman-key', '--lsign-key', gpg.fingerprint], input: undefined },
      ]);
      // declining the import runs nothing and fails
      const declined = await inProcess(['host', 'signatures'], home.env, { tty: true, answers: ['n'] });
      expect(declined.code).toBe(1);
      expect(declined.ran).toEqual([]);
      await fs.rm(home.dir, { recursive: true, force: true });
    });
  },
);

describe('onboarding on a server of several architectures', () => {
  let multi: Harness;
  let closed: Harness;
  beforeAll(async () => {
    multi = await startHarness({ arches: ['aarch64'], http: { allowReads: true } });
    // reads need a secret: the new machine's is not authorized yet, GET /server answers 401
    closed = await startHarness({ arches: ['aarch64'] });
  });
  afterAll(async () => {
    await multi?.close();
    await closed?.close();
  });

  /** Onboards a machine whose pacman.conf says `Architecture = arch`; what was appended, and the output. */
  const onboard = async (server: Harness, arch: string) => {
    const home = await newHome();
    const conf = path.join(home.dir, 'pacman.conf');
    await fs.writeFile(
      conf,
      `[options]\nArchitecture = ${arch}\n\n[core]\nServer = https://mirror.invalid/$repo/os/$arch\n`,
    );
    // the url, configure pacman, continue without https nor signatures, append
    const out = await inProcess(
      ['list'],
      { ...home.env, SERENE_PACMAN_CONF: conf },
      { tty: true, answers: [server.url, 'y', 'y', 'y'] },
    );
    const appended = out.ran.find((entry) => entry.args[1] === 'tee')?.input;
    return { out, conf, appended, home };
  };

  it('offers a machine of another served architecture the repository at $arch, asked by GET /server or not', async () => {
    for (const server of [multi, closed]) {
      const { out, conf, appended, home } = await onboard(server, 'aarch64');
      try {
        expect(out.stdout).not.toContain('cannot use them');
        expect(out.ran.map((entry) => entry.args)).toEqual([['sudo', 'tee', '-a', conf]]);
        expect(appended).toBe(`\n[serene]\nSigLevel = Never\nServer = ${server.url}/$arch\n`);
        if (hasProgram('pacman-conf')) {
          // pacman of that machine reads its architecture's repository
          await fs.appendFile(conf, appended ?? '');
          const read = await run('pacman-conf', ['--config', conf, '--repo', 'serene', 'Server']);
          expect(read.stdout.trim()).toBe(`${server.url}/aarch64`);
        }
        // the repository pacman is sent to answers
        expect((await fetch(`${server.url}/aarch64/serene.db`, { method: 'HEAD' })).status).toBe(200);
      } finally {
        await fs.rm(home.dir, { recursive: true, force: true });
      }
    }
  });

  it('the primary architecture gets $arch too; an architecture not served is told so and nothing runs', async () => {
    const primary = await onboard(multi, 'x86_64');
    expect(primary.appended).toBe(`\n[serene]\nSigLevel = Never\nServer = ${multi.url}/$arch\n`);
    for (const server of [multi, closed]) {
      const { out, home } = await onboard(server, 'riscv64');
      expect(out.stdout).toContain(
        server === multi
          ? 'The server builds packages for x86_64, aarch64, but this machine is riscv64: pacman here cannot use them.'
          : 'The server builds packages for x86_64, but this machine is riscv64: pacman here cannot use them.',
      );
      expect(out.ran).toEqual([]);
      await fs.rm(home.dir, { recursive: true, force: true });
    }
    await fs.rm(primary.home.dir, { recursive: true, force: true });
  });

  it('server info lists the architectures and whether this machine can install', async () => {
    const home = await newHome();
    const conf = path.join(home.dir, 'pacman.conf');
    await fs.writeFile(conf, '[options]\nArchitecture = aarch64\n');
    const info = await inProcess(['--server', multi.url, 'server', 'info'], {
      ...home.env,
      SERENE_PACMAN_CONF: conf,
    });
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/^architectures: +x86_64, aarch64$/m);
    expect(info.stdout).toContain(`[serene] Server = ${multi.url}/$arch`);
    expect(info.stdout).toMatch(/^this machine: +aarch64 \(can install its packages\)$/m);
    await fs.rm(home.dir, { recursive: true, force: true });
  });
});

describe('versions', () => {
  it('the rule: the same major.minor as the API this client speaks (v0.4)', () => {
    expect(versionWarning('v0.4.3')).toBeUndefined();
    expect(versionWarning('v0.4.0')).toBeUndefined();
    expect(versionWarning('0.4.9')).toBeUndefined();
    expect(versionWarning('v0.5.0')).toMatch(/newer than this CLI knows \(v0\.4\): update the serene CLI/);
    expect(versionWarning('v1.0.0')).toMatch(/newer/);
    expect(versionWarning('v0.3.2')).toMatch(/older than this CLI \(v0\.4\): update the server/);
    expect(versionWarning('untagged')).toMatch(/does not say which API it speaks/);
    expect(versionWarning('')).toMatch(/does not say/);
  });

  it('list and info warn about a server that does not fit; server info shows it', async () => {
    const newer = await startHarness({ http: { version: 'v0.5.1' } });
    try {
      const home = await newHome();
      await fs.mkdir(path.join(home.dir, 'config'));
      await fs.writeFile(path.join(home.dir, 'config/serene.yml'), `url: ${newer.url}\n`);
      await fs.mkdir(path.join(home.dir, 'data/serene'), { recursive: true });
      await fs.writeFile(path.join(home.dir, 'data/serene/secret.txt'), SECRET);
      const list = await inProcess(['list'], home.env);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stderr).toContain(
        'warn: the server (v0.5.1) is newer than this CLI knows (v0.4): update the serene CLI\n',
      );
      const info = await inProcess(['server', 'info'], home.env);
      expect(info.stdout).toMatch(
        /^this client: +serene \S+, speaks the API of v0\.4\.3 \(the server \(v0\.5\.1\) is newer/m,
      );
      await fs.rm(home.dir, { recursive: true, force: true });
    } finally {
      await newer.close();
    }
    // the harness's usual server (v0.4.3, as ours reports): no warning
    const usual = await startHarness({ http: { allowReads: true } });
    try {
      const home = await newHome();
      const fits = await inProcess(['--server', usual.url, 'list'], { ...home.env });
      expect(fits.code, fits.stderr).toBe(0);
      expect(fits.stderr).not.toMatch(/warn:/);
      // a server without a key: host signatures says so and fails
      const unsigned = await inProcess(['--server', usual.url, 'host', 'signatures'], { ...home.env });
      expect(unsigned.code).toBe(1);
      expect(unsigned.stderr).toBe('error: the server does not sign its packages (it has no key)\n');
      await fs.rm(home.dir, { recursive: true, force: true });
    } finally {
      await usual.close();
    }
  });
});
