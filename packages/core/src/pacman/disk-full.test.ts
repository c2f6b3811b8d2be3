/**
 * A full disk loses nothing: every write of a publish, a remove and a re-sign is in turn the one
 * that meets a full filesystem (a real tmpfs, filled to leave a little more room each time); each
 * failure names the full disk and leaves the repository byte for byte as it was, readable by
 * pacman, with no temporary file; with room again, the same change works.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGpgSigner } from '../signing/gpg-signer.js';
import { createTestGpgHome, type TestGpgHome } from '../testing/gpg.js';
import { createPacmanSandbox, hasProgram, type PacmanSandbox } from '../testing/pacman.js';
import { writeSyntheticPackage } from '../testing/synthetic-package.js';
import { mountTmpfs, snapshotFiles, type Tmpfs, tmpfsSupport } from '../testing/tmpfs.js';
import { createFilesystemRepository, type FilesystemRepository } from './filesystem-repository.js';

const support = tmpfsSupport();
const runs = support.ok || process.env.CI === 'true';
const title = support.ok
  ? 'a full disk (a real tmpfs) loses nothing'
  : `a full disk loses nothing (skipped: ${support.reason})`;
/** tmpfs allocates whole pages: one more page of room each round reaches the next write */
const STEP = 4096;

let tmpfs: Tmpfs;
let outside: string;
const homes: TestGpgHome[] = [];

beforeAll(async () => {
  if (!runs) return;
  tmpfs = await mountTmpfs(2048);
  outside = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-disk-full-'));
});
afterAll(async () => {
  if (!runs) return;
  for (const home of homes) await home.cleanup();
  await tmpfs?.unmount();
  await fs.rm(outside, { recursive: true, force: true });
});

async function signer() {
  const home = await createTestGpgHome();
  homes.push(home);
  return createGpgSigner({ homedir: home.homedir, key: home.fingerprint });
}

/** What a failed write was writing, by the path the error names. */
function kindOf(file: string): string {
  const name = path.basename(file);
  if (/\.pkg\.tar(\.\w+)?$/.test(name)) return 'package';
  if (/\.pkg\.tar(\.\w+)?\.sig$/.test(name)) return 'package signature';
  if (name.endsWith('.lck')) return 'lock';
  if (name.endsWith('.db.tar.gz') || name.endsWith('.files.tar.gz')) return 'archive';
  if (name.endsWith('.tar.gz.sig')) return 'archive signature';
  if (name.endsWith('.serene-index')) return 'index';
  return name;
}

/**
 * Runs `change` with 0, 4 KiB, 8 KiB, ... of room until it succeeds, checking after every failure
 * that it names the full disk and changed nothing (and that pacman still reads the repository).
 * Returns the kinds of file whose write failed.
 */
async function atEveryFillLevel(
  dir: string,
  sandbox: PacmanSandbox | undefined,
  change: () => Promise<unknown>,
  step = STEP,
): Promise<Set<string>> {
  const before = await snapshotFiles(dir);
  const failed = new Set<string>();
  try {
    for (let room = 0; ; room += step) {
      expect(room, 'a change that never succeeds').toBeLessThan(1 << 20);
      await tmpfs.leave(room);
      const error = (await change().then(
        () => undefined,
        (failure: unknown) => failure,
      )) as (Error & { code?: string; path?: string }) | undefined;
      if (!error) break;
      expect(error.name, String(error.stack)).toBe('DiskFullError');
      expect(error.code).toBe('SERENE_ERR_DISK_FULL');
      expect(error.message).toMatch(/the disk is full/);
      failed.add(kindOf(error.path!));
      // byte for byte as it was, and no temporary file
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
  expect([...(await fs.readdir(dir))].filter((name) => name.startsWith('.tmp.'))).toEqual([]);
  return failed;
}

describe.skipIf(!runs)(title, () => {
  let dir: string;
  let repo: FilesystemRepository;
  let sandbox: PacmanSandbox | undefined;
  const pkgs = () => path.join(outside, 'pkgs');

  beforeAll(async () => {
    dir = path.join(tmpfs.dir, 'repository');
    repo = createFilesystemRepository({ dir, name: 'test', signer: await signer() });
    await repo.init();
    const files = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        writeSyntheticPackage(pkgs(), { name: `p${String(i).padStart(2, '0')}`, version: '1.0-1' }),
      ),
    );
    await repo.publish(files);
    if (hasProgram('pacman'))
      sandbox = await createPacmanSandbox([{ name: 'test', server: `file://${dir}` }]);
  }, 120_000);
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('a publish (a new package, a new version, a rebuild of the same version) at every fill level', async () => {
    const next = [
      await writeSyntheticPackage(path.join(outside, 'next'), { name: 'fresh', version: '1.0-1' }),
      await writeSyntheticPackage(path.join(outside, 'next'), { name: 'p07', version: '2.0-1' }),
      // same name and version as published, other bytes: the file in place is replaced
      await writeSyntheticPackage(path.join(outside, 'next'), {
        name: 'p11',
        version: '1.0-1',
        description: 'rebuilt',
      }),
    ];
    const failed = await atEveryFillLevel(dir, sandbox, () => repo.publish(next));
    expect([...failed].sort()).toEqual(
      ['archive', 'archive signature', 'index', 'lock', 'package', 'package signature'].sort(),
    );
    const entries = await repo.list();
    expect(entries.map((entry) => `${entry.name}-${entry.version}`)).toContain('fresh-1.0-1');
    expect(entries.map((entry) => `${entry.name}-${entry.version}`)).toContain('p07-2.0-1');
    expect(await fs.readFile(path.join(dir, path.basename(next[2]!)))).toEqual(await fs.readFile(next[2]!));
    if (sandbox) {
      expect((await sandbox.pacman(['-Syy'])).code).toBe(0);
      const listed = await sandbox.pacman(['-Sl', 'test']);
      expect(listed.stdout).toContain('test fresh 1.0-1');
      expect(listed.stdout).toContain('test p07 2.0-1');
      expect((await sandbox.pacman(['-Fyy'])).code).toBe(0);
      // the packages in place are the ones the database describes (checksums and sizes)
      const download = await sandbox.pacman(['-Sw', 'fresh', 'p07', 'p11']);
      expect(download.code, download.stderr).toBe(0);
    }
  }, 600_000);

  it('a remove at every fill level', async () => {
    const failed = await atEveryFillLevel(dir, sandbox, () => repo.remove(['p03', 'p17']));
    expect(failed.has('archive')).toBe(true);
    expect(failed.has('index')).toBe(true);
    expect((await repo.list()).map((entry) => entry.name)).not.toContain('p03');
    if (sandbox) {
      expect((await sandbox.pacman(['-Syy'])).code).toBe(0);
      expect((await sandbox.pacman(['-Sl', 'test'])).stdout).not.toContain('test p17 ');
    }
  }, 600_000);

  it('signing everything again with another key at every fill level', async () => {
    const other = createFilesystemRepository({ dir, name: 'test', signer: await signer() });
    // every package signature takes a page: two pages more each round keep the rounds few
    const failed = await atEveryFillLevel(dir, sandbox, () => other.resign!(), 2 * STEP);
    expect(failed.has('package signature')).toBe(true);
    expect(failed.has('archive signature')).toBe(true);
    if (sandbox) expect((await sandbox.pacman(['-Syy'])).code).toBe(0);
  }, 600_000);
});
