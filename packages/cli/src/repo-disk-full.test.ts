/**
 * `serene repo add`, `remove` and `sign` on a full disk (a real tmpfs, filled to leave a little more
 * room each round, so that each write of the sequence is in turn the one that fails): exit 1 with
 * one line naming the full disk, the repository byte for byte as it was and readable by pacman, no
 * temporary file; with room again, the same command works.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createPacmanSandbox,
  createTestGpgHome,
  hasProgram,
  mountTmpfs,
  type PacmanSandbox,
  type RunOutput,
  run,
  snapshotFiles,
  type Tmpfs,
  tmpfsSupport,
  writeSyntheticPackage,
} from '@serene/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const MAIN = path.join(ROOT, 'packages/cli/dist/main.js');
const STEP = 4096;

const support = tmpfsSupport();
const runs = support.ok || process.env.CI === 'true';
const title = support.ok
  ? 'serene repo on a full disk (a real tmpfs)'
  : `serene repo on a full disk (skipped: ${support.reason})`;

function serene(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<RunOutput> {
  return run(process.execPath, [MAIN, ...args], {
    cwd,
    env: { ...process.env, LC_ALL: 'C', SERENE_DEBUG: '', ...env },
  });
}

describe.skipIf(!runs)(title, () => {
  let tmpfs: Tmpfs;
  let root: string;
  let dir: string;
  let sandbox: PacmanSandbox | undefined;
  let gpg: Awaited<ReturnType<typeof createTestGpgHome>> | undefined;

  beforeAll(async () => {
    const build = await run('npx', ['tsc', '-b', 'packages/cli'], { cwd: ROOT });
    expect(build.code, build.stdout + build.stderr).toBe(0);
    tmpfs = await mountTmpfs(1024);
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-cli-disk-full-'));
    dir = path.join(tmpfs.dir, 'repo');
    const files = await Promise.all(
      Array.from({ length: 12 }, (_, i) => writeSyntheticPackage(dir, { name: `q${i}`, version: '1.0-1' })),
    );
    const add = await serene(
      ['repo', 'add', 'test.db.tar.gz', ...files.map((file) => path.basename(file))],
      dir,
    );
    expect(add.code, add.stderr).toBe(0);
    if (hasProgram('pacman'))
      sandbox = await createPacmanSandbox([{ name: 'test', server: `file://${dir}` }]);
  }, 180_000);
  afterAll(async () => {
    await sandbox?.cleanup();
    await gpg?.cleanup();
    await tmpfs?.unmount();
    if (root) await fs.rm(root, { recursive: true, force: true });
  });

  /** Runs the command with more room each round until it succeeds; checks every failure. */
  async function atEveryFillLevel(args: string[], env: NodeJS.ProcessEnv = {}, step = STEP): Promise<number> {
    const before = await snapshotFiles(dir);
    let failures = 0;
    try {
      for (let room = 0; ; room += step) {
        expect(room, 'a command that never succeeds').toBeLessThan(1 << 20);
        await tmpfs.leave(room);
        const output = await serene(args, dir, env);
        if (output.code === 0) break;
        failures++;
        expect(output.code, output.stderr).toBe(1);
        const lines = output.stderr.trimEnd().split('\n');
        expect(lines, output.stderr).toHaveLength(1);
        expect(lines[0]).toMatch(/^==> ERROR: No space left on the disk to write '.+' \(the disk is full\)$/);
        expect(await snapshotFiles(dir)).toEqual(before);
        if (sandbox) {
          const sync = await sandbox.pacman(['-Syy']);
          expect(sync.code, sync.stderr).toBe(0);
          const files = await sandbox.pacman(['-Fyy']);
          expect(files.code, files.stderr).toBe(0);
        }
      }
    } finally {
      await tmpfs.unfill();
    }
    expect((await fs.readdir(dir)).filter((name) => name.startsWith('.tmp.'))).toEqual([]);
    return failures;
  }

  it('serene repo add', async () => {
    const more = [
      await writeSyntheticPackage(dir, { name: 'newcomer', version: '1.0-1' }),
      await writeSyntheticPackage(dir, { name: 'q4', version: '2.0-1' }),
    ];
    const failures = await atEveryFillLevel([
      'repo',
      'add',
      'test.db.tar.gz',
      ...more.map((file) => path.basename(file)),
    ]);
    expect(failures).toBeGreaterThan(2);
    if (sandbox) {
      expect((await sandbox.pacman(['-Syy'])).code).toBe(0);
      const listed = (await sandbox.pacman(['-Sl', 'test'])).stdout;
      expect(listed).toContain('test newcomer 1.0-1');
      expect(listed).toContain('test q4 2.0-1');
    }
  }, 300_000);

  it('serene repo remove', async () => {
    const failures = await atEveryFillLevel(['repo', 'remove', 'test.db.tar.gz', 'q1', 'q9']);
    expect(failures).toBeGreaterThan(2);
    if (sandbox) {
      expect((await sandbox.pacman(['-Syy'])).code).toBe(0);
      expect((await sandbox.pacman(['-Sl', 'test'])).stdout).not.toContain('test q9 ');
    }
  }, 300_000);

  it.skipIf(!hasProgram('gpg'))(
    'serene repo sign',
    async () => {
      gpg = await createTestGpgHome();
      const keyFile = path.join(root, 'sign_key.asc');
      const exported = await run('gpg', [
        '--batch',
        '--homedir',
        gpg.homedir,
        '--armor',
        '--export-secret-keys',
        gpg.fingerprint,
      ]);
      expect(exported.code, exported.stderr).toBe(0);
      await fs.writeFile(keyFile, exported.stdout);
      // every package signature takes a page: two pages more each round keep the rounds few
      const failures = await atEveryFillLevel(
        ['repo', 'sign', 'test.db.tar.gz', '--key', keyFile],
        {},
        2 * STEP,
      );
      expect(failures).toBeGreaterThan(2);
      expect(await fs.readlink(path.join(dir, 'test.db.sig'))).toBe('test.db.tar.gz.sig');
    },
    300_000,
  );
});
