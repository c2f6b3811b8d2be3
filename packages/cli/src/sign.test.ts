import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createPacmanSandbox,
  createTestGpgHome,
  hasProgram,
  type RunOutput,
  run,
  verifyWithGpg,
  writeSyntheticPackage,
} from '@serene/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import type { CliIo } from './io.js';

/** The command, run in this process (runCli) with its output captured. */
async function serene(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<RunOutput> {
  const output: RunOutput = { code: -1, stdout: '', stderr: '' };
  const io: CliIo = {
    stdout: (text) => {
      output.stdout += text;
    },
    stderr: (text) => {
      output.stderr += text;
    },
    cwd,
    env: { ...process.env, LC_ALL: 'C', ...env },
  };
  output.code = await runCli(args, io);
  return output;
}

// reason: needs gpg (to make the key and verify) and pacman; `npm test` installs both
describe.skipIf(!hasProgram('gpg') || !hasProgram('pacman'))('serene repo sign', () => {
  let root: string;
  let repo: string;
  let keyFile: string;
  let publicKey: string;
  let gpg: Awaited<ReturnType<typeof createTestGpgHome>>;

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-cli-sign-'));
    repo = path.join(root, 'repo');
    await fs.mkdir(repo);
    gpg = await createTestGpgHome({ passphrase: 'open sesame' });
    keyFile = path.join(root, 'sign_key.asc');
    const exported = await run('gpg', [
      '--batch',
      '--homedir',
      gpg.homedir,
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      'open sesame',
      '--armor',
      '--export-secret-keys',
      gpg.fingerprint,
    ]);
    expect(exported.code, exported.stderr).toBe(0);
    await fs.writeFile(keyFile, exported.stdout);
    publicKey = (
      await run('gpg', ['--batch', '--homedir', gpg.homedir, '--armor', '--export', gpg.fingerprint])
    ).stdout;
  });
  afterAll(async () => {
    await gpg?.cleanup();
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  it('signs an unsigned repository so that pacman with SigLevel Required installs from it', async () => {
    const files = [
      await writeSyntheticPackage(repo, { name: 'alpha', version: '1.0-1' }),
      await writeSyntheticPackage(repo, { name: 'beta', version: '2.0-1', arch: 'any' }),
    ];
    const added = await serene(
      ['repo', 'add', 'test.db.tar.gz', ...files.map((f) => path.basename(f))],
      repo,
    );
    expect(added.code, added.stderr).toBe(0);

    const wrong = await serene(['repo', 'sign', 'test.db.tar.gz', '--key', keyFile], repo, {
      SIGN_KEY_PASSWORD: 'nope',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/password/i);
    await expect(fs.access(`${files[0]}.sig`)).rejects.toThrow();

    const signed = await serene(['repo', 'sign', 'test.db.tar.gz', '--key', keyFile], repo, {
      SIGN_KEY_PASSWORD: 'open sesame',
    });
    expect(signed.code, signed.stderr).toBe(0);
    for (const file of files) expect(await verifyWithGpg(publicKey, file, `${file}.sig`)).toBe(true);
    for (const archive of ['test.db', 'test.files']) {
      expect(
        await verifyWithGpg(
          publicKey,
          path.join(repo, `${archive}.tar.gz`),
          path.join(repo, `${archive}.sig`),
        ),
      ).toBe(true);
    }

    const sandbox = await createPacmanSandbox([
      { name: 'test', server: `file://${repo}`, sigLevel: 'Required DatabaseRequired' },
    ]);
    try {
      expect((await sandbox.pacmanKey(['--init'])).code).toBe(0);
      await fs.writeFile(path.join(root, 'public.asc'), publicKey);
      expect((await sandbox.pacmanKey(['--add', path.join(root, 'public.asc')])).code).toBe(0);
      expect((await sandbox.pacmanKey(['--lsign-key', gpg.fingerprint])).code).toBe(0);
      const sync = await sandbox.pacman(['-Sy']);
      expect(sync.code, sync.stderr).toBe(0);
      const install = await sandbox.pacman(['-S', '--noscriptlet', 'alpha', 'beta']);
      expect(install.code, install.stderr + install.stdout).toBe(0);
    } finally {
      await sandbox.cleanup();
    }
  });

  it('refuses a missing key file and a path that is not a database', async () => {
    const missing = await serene(
      ['repo', 'sign', 'test.db.tar.gz', '--key', path.join(root, 'nope.asc')],
      repo,
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.asc/);
    const notDb = await serene(['repo', 'sign', 'test.db', '--key', keyFile], repo, {
      SIGN_KEY_PASSWORD: 'open sesame',
    });
    expect(notDb.code).toBe(1);
    expect(notDb.stderr).toMatch(/not an existing NAME\.db\.tar\.gz/);
  });
});
