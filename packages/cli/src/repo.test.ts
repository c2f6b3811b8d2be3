import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createPacmanSandbox,
  hasProgram,
  type RunOutput,
  run,
  writeSyntheticPackage,
} from '@serene/core/testing';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import type { CliIo } from './io.js';

// These tests run the command in this process (runCli, with its output captured), as the
// executable does; the last one runs the built executable itself, for its exit codes.
const ROOT = path.resolve(import.meta.dirname, '../../..');
const MAIN = path.join(ROOT, 'packages/cli/dist/main.js');
const ENV = { ...process.env, LC_ALL: 'C', LANG: 'C', SERENE_DEBUG: '' };

let root: string;
let repo: string;
let pkgs: string;
let work: string;

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-cli-repo-'));
  repo = path.join(root, 'repo');
  pkgs = path.join(root, 'pkgs');
  work = path.join(root, 'work');
  for (const dir of [repo, pkgs, work]) await fs.mkdir(dir);
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function serene(args: readonly string[], cwd = work, env: NodeJS.ProcessEnv = ENV): Promise<RunOutput> {
  const output: RunOutput = { code: -1, stdout: '', stderr: '' };
  const io: CliIo = {
    stdout: (text) => {
      output.stdout += text;
    },
    stderr: (text) => {
      output.stderr += text;
    },
    cwd,
    env,
  };
  output.code = await runCli(args, io);
  return output;
}

/** `NAME-VERSION` directories of a database archive, as bsdtar lists them. */
async function entriesOf(archive: string): Promise<string[]> {
  const listing = await run('bsdtar', ['-tf', archive]);
  expect(listing.code).toBe(0);
  return listing.stdout
    .split('\n')
    .filter((line) => /^[^/]+\/$/.test(line))
    .map((line) => line.slice(0, -1))
    .sort();
}

/** Every file of a folder (links as their targets), to show that a failed call changed nothing. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const name of (await fs.readdir(dir)).sort()) {
    const file = path.join(dir, name);
    const stat = await fs.lstat(file);
    if (stat.isSymbolicLink()) result.set(name, `-> ${await fs.readlink(file)}`);
    else if (stat.isFile()) result.set(name, (await fs.readFile(file)).toString('base64'));
    else result.set(name, 'directory');
  }
  return result;
}

const pkg = (name: string, version = '1.0-1', extra: { depends?: string[] } = {}) =>
  writeSyntheticPackage(pkgs, { name, version, ...extra });

/** Asserts a clean failure: exit 1, one `==> ERROR:` line matching `message`, no stack trace. */
function expectCleanError(output: RunOutput, message: RegExp): void {
  expect(output.code, output.stderr).toBe(1);
  const lines = output.stderr.trimEnd().split('\n');
  expect(lines, output.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^==> ERROR: /);
  expect(lines[0]).toMatch(message);
  expect(output.stderr).not.toMatch(/^\s+at /m);
}

describe('serene repo add / remove', () => {
  it('adds and removes with paths relative to the working folder, and reports as repo-add', async () => {
    await pkg('alpha');
    await pkg('beta', '2.0-1', { depends: ['alpha'] });
    const added = await serene([
      'repo',
      'add',
      '../repo/test.db.tar.gz',
      '../pkgs/alpha-1.0-1-x86_64.pkg.tar.gz',
      '../pkgs/beta-2.0-1-x86_64.pkg.tar.gz',
    ]);
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toBe(
      [
        "==> Adding package '../pkgs/alpha-1.0-1-x86_64.pkg.tar.gz'",
        "==> Adding package '../pkgs/beta-2.0-1-x86_64.pkg.tar.gz'",
        "==> Creating updated database file '../repo/test.db.tar.gz'",
        '',
      ].join('\n'),
    );
    expect(await entriesOf(path.join(repo, 'test.db.tar.gz'))).toEqual(['alpha-1.0-1', 'beta-2.0-1']);
    expect(await entriesOf(path.join(repo, 'test.files.tar.gz'))).toEqual(['alpha-1.0-1', 'beta-2.0-1']);
    expect(await fs.readlink(path.join(repo, 'test.db'))).toBe('test.db.tar.gz');
    expect(await fs.readlink(path.join(repo, 'test.files'))).toBe('test.files.tar.gz');
    // nothing is left in the working folder, and no lock
    expect(await fs.readdir(work)).toEqual([]);
    expect(await fs.readdir(repo)).not.toContain('test.db.tar.gz.lck');

    // a second version replaces the first
    await pkg('alpha', '1.1-1');
    const updated = await serene([
      'repo',
      'add',
      '../repo/test.db.tar.gz',
      '../pkgs/alpha-1.1-1-x86_64.pkg.tar.gz',
    ]);
    expect(updated.code).toBe(0);
    expect(updated.stdout).toContain("==> Adding package '../pkgs/alpha-1.1-1-x86_64.pkg.tar.gz'");
    expect(updated.stdout).toContain("  -> Removing existing entry 'alpha-1.0-1'...");
    expect(await entriesOf(path.join(repo, 'test.db.tar.gz'))).toEqual(['alpha-1.1-1', 'beta-2.0-1']);
    // without -R the old file stays
    await fs.access(path.join(pkgs, 'alpha-1.0-1-x86_64.pkg.tar.gz'));

    const removed = await serene(['repo', 'remove', '../repo/test.db.tar.gz', 'alpha']);
    expect(removed.stderr).toBe('');
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe(
      [
        "==> Searching for package 'alpha'...",
        "  -> Removing existing entry 'alpha-1.1-1'...",
        "==> Creating updated database file '../repo/test.db.tar.gz'",
        '',
      ].join('\n'),
    );
    expect(await entriesOf(path.join(repo, 'test.db.tar.gz'))).toEqual(['beta-2.0-1']);
    expect(await entriesOf(path.join(repo, 'test.files.tar.gz'))).toEqual(['beta-2.0-1']);
    // package files stay, as with repo-remove
    await fs.access(path.join(pkgs, 'alpha-1.1-1-x86_64.pkg.tar.gz'));
  });

  it('takes absolute paths too, and creates an empty database when given no packages', async () => {
    const db = path.join(repo, 'empty.db.tar.gz');
    const output = await serene(['repo', 'add', db]);
    expect(output.code).toBe(0);
    expect(output.stdout).toBe(`==> Creating updated database file '${db}'\n`);
    expect(await entriesOf(db)).toEqual([]);
    const again = await serene(['repo', 'add', db]);
    expect(again.code).toBe(0);
  });

  it('-R deletes the replaced package file and its signature', async () => {
    const old = await pkg('alpha', '1.0-1');
    await fs.writeFile(`${old}.sig`, Buffer.from([0x89, 0x01, 0x02]));
    const db = path.join(repo, 'test.db.tar.gz');
    expect((await serene(['repo', 'add', db, old])).code).toBe(0);
    const next = await pkg('alpha', '1.1-1');
    const output = await serene(['repo', 'add', '-R', db, next], pkgs);
    expect(output.stderr).toBe('');
    expect(output.code).toBe(0);
    expect(output.stdout).toContain("  -> Removing old package file 'alpha-1.0-1-x86_64.pkg.tar.gz'");
    expect(output.stdout).toContain("  -> Removing old package file 'alpha-1.0-1-x86_64.pkg.tar.gz.sig'");
    expect((await fs.readdir(pkgs)).sort()).toEqual(['alpha-1.1-1-x86_64.pkg.tar.gz']);
    expect(await entriesOf(db)).toEqual(['alpha-1.1-1']);
  });

  it('-n skips versions already present and -p skips downgrades, leaving the database as it was', async () => {
    const db = path.join(repo, 'test.db.tar.gz');
    const alpha = await pkg('alpha', '2.0-1');
    expect((await serene(['repo', 'add', db, alpha])).code).toBe(0);
    const before = await snapshot(repo);

    const again = await serene(['repo', 'add', '--new', db, alpha]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(
      /^==> WARNING: Skipping '.*alpha-2\.0-1-x86_64\.pkg\.tar\.gz': .*alpha-2\.0-1/,
    );
    expect(again.stdout).toContain('No packages added');
    expect(await snapshot(repo)).toEqual(before);

    const older = await pkg('alpha', '1.5-1');
    const downgrade = await serene(['repo', 'add', '-p', db, older]);
    expect(downgrade.code).toBe(0);
    expect(downgrade.stderr).toMatch(/^==> WARNING: Skipping .*newer version.*2\.0-1/);
    expect(await snapshot(repo)).toEqual(before);

    // -n adds what is new next to what it skips
    const beta = await pkg('beta');
    const mixed = await serene(['repo', 'add', '-n', db, alpha, beta]);
    expect(mixed.code).toBe(0);
    expect(mixed.stdout).toContain(`==> Adding package '${beta}'`);
    expect(await entriesOf(db)).toEqual(['alpha-2.0-1', 'beta-1.0-1']);
  });

  it('-q prints nothing on success, but still prints warnings', async () => {
    const db = path.join(repo, 'test.db.tar.gz');
    const alpha = await pkg('alpha');
    const quiet = await serene(['repo', 'add', '-q', db, alpha]);
    expect(quiet).toEqual({ code: 0, stdout: '', stderr: '' });
    const skipped = await serene(['repo', 'add', '-qn', db, alpha]);
    expect(skipped.code).toBe(0);
    expect(skipped.stdout).toBe('');
    expect(skipped.stderr).toMatch(/WARNING/);
    const removed = await serene(['repo', 'remove', '--quiet', db, 'alpha']);
    expect(removed).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  describe('bad input: a one-line error, exit 1, and the database as it was', () => {
    let db: string;
    let before: Map<string, string>;

    beforeEach(async () => {
      db = path.join(repo, 'test.db.tar.gz');
      expect((await serene(['repo', 'add', db, await pkg('alpha'), await pkg('beta')])).code).toBe(0);
      before = await snapshot(repo);
    });
    afterEach(async () => {
      expect(await snapshot(repo)).toEqual(before);
    });

    it('a file that is not a package', async () => {
      await fs.writeFile(path.join(pkgs, 'notes.pkg.tar.gz'), 'just some text\n');
      const output = await serene(['repo', 'add', '../repo/test.db.tar.gz', '../pkgs/notes.pkg.tar.gz']);
      expectCleanError(output, /notes\.pkg\.tar\.gz/);
    });

    it('a corrupt (truncated) archive', async () => {
      const good = await pkg('gamma', '1.0-1', { depends: ['alpha'] });
      const bytes = await fs.readFile(good);
      const broken = path.join(pkgs, 'broken-1.0-1-x86_64.pkg.tar.gz');
      await fs.writeFile(broken, bytes.subarray(0, Math.floor(bytes.length / 2)));
      expectCleanError(await serene(['repo', 'add', db, broken]), /broken-1\.0-1-x86_64\.pkg\.tar\.gz/);
      // a corrupted byte in the middle
      const flipped = Buffer.from(bytes);
      for (let i = 20; i < flipped.length - 8; i += 7) flipped[i] = flipped[i]! ^ 0x5a;
      await fs.writeFile(broken, flipped);
      expectCleanError(await serene(['repo', 'add', db, broken]), /broken-1\.0-1-x86_64\.pkg\.tar\.gz/);
    });

    it('an archive without .PKGINFO', async () => {
      const content = path.join(root, 'content');
      await fs.mkdir(path.join(content, 'usr/bin'), { recursive: true });
      await fs.writeFile(path.join(content, 'usr/bin/tool'), '#!/bin/sh\n');
      const file = path.join(pkgs, 'noinfo-1.0-1-x86_64.pkg.tar.gz');
      expect((await run('bsdtar', ['-czf', file, '-C', content, 'usr'])).code).toBe(0);
      expectCleanError(await serene(['repo', 'add', db, file]), /noinfo-1\.0-1-x86_64\.pkg\.tar\.gz/);
    });

    it('a missing file, even next to good ones', async () => {
      const good = await pkg('gamma');
      const output = await serene(['repo', 'add', db, good, '../pkgs/missing-1.0-1-x86_64.pkg.tar.gz']);
      expectCleanError(output, /missing-1\.0-1-x86_64\.pkg\.tar\.gz.*not found|not found.*missing-1\.0-1/i);
    });

    it('an unknown name to remove', async () => {
      const output = await serene(['repo', 'remove', db, 'alpha', 'nosuchpkg']);
      expectCleanError(output, /nosuchpkg.*not found|not found.*nosuchpkg/i);
    });

    it('a database file that is not a database', async () => {
      const other = path.join(root, 'other');
      await fs.mkdir(other);
      await fs.writeFile(path.join(other, 'bad.db.tar.gz'), 'this is not a database\n');
      // a valid gzip tar that is a package, not a database
      await fs.copyFile(await pkg('gamma'), path.join(other, 'pkg.db.tar.gz'));
      const snapshotOther = await snapshot(other);
      for (const name of ['bad', 'pkg']) {
        const file = path.join(other, `${name}.db.tar.gz`);
        expectCleanError(
          await serene(['repo', 'add', file, await pkg('delta')]),
          new RegExp(`${name}\\.db\\.tar\\.gz`),
        );
        expectCleanError(
          await serene(['repo', 'remove', file, 'gamma']),
          new RegExp(`${name}\\.db\\.tar\\.gz`),
        );
      }
      expect(await snapshot(other)).toEqual(snapshotOther);
    });

    it('a database path with a wrong extension', async () => {
      for (const name of ['test.db', 'test.db.tar.zst', 'test.tar.gz', '.db.tar.gz']) {
        const output = await serene(['repo', 'add', path.join(repo, name), await pkg('gamma')]);
        expectCleanError(output, /extension/);
        expect(output.stderr).toContain(name);
      }
      expectCleanError(await serene(['repo', 'remove', path.join(repo, 'test.db'), 'alpha']), /extension/);
    });

    it('a missing folder, or a missing database to remove from', async () => {
      expectCleanError(
        await serene(['repo', 'add', '../nope/test.db.tar.gz', await pkg('gamma')]),
        /nope.*does not exist/,
      );
      expectCleanError(
        await serene(['repo', 'remove', '../nope/test.db.tar.gz', 'alpha']),
        /nope.*does not exist/,
      );
      expectCleanError(
        await serene(['repo', 'remove', '../repo/other.db.tar.gz', 'alpha']),
        /other\.db\.tar\.gz/,
      );
    });

    it('no stack trace even with SERENE_DEBUG=1', async () => {
      const output = await serene(['repo', 'remove', db, 'nosuchpkg'], work, { ...ENV, SERENE_DEBUG: '1' });
      expect(output.code).toBe(1);
      expect(output.stderr).toMatch(/^==> ERROR: .*nosuchpkg/);
      expect(output.stderr).not.toMatch(/^\s+at /m);
    });
  });

  describe('usage', () => {
    it('an unknown command prints usage and exits 2', async () => {
      const output = await serene(['frobnicate']);
      expect(output.code).toBe(2);
      expect(output.stderr).toMatch(/unknown command 'frobnicate'/);
      expect(output.stderr).toMatch(/Usage: serene/);
    });

    it('bad or missing arguments exit 2, help and version exit 0', async () => {
      const cases: [string[], number][] = [
        [[], 2],
        [['repo'], 2],
        [['repo', 'add'], 2],
        [['repo', 'remove'], 2],
        // as repo-remove: the database alone is no usage error, a missing one is exit 1
        [['repo', 'remove', 'x.db.tar.gz'], 1],
        [['repo', 'add', '--frobnicate', 'x.db.tar.gz'], 2],
        [['repo', 'frob'], 2],
        [['--help'], 0],
        [['repo', 'add', '--help'], 0],
        [['--version'], 0],
      ];
      for (const [args, code] of cases) {
        const output = await serene(args);
        expect(output.code, args.join(' ')).toBe(code);
        if (code === 2) expect(output.stderr, args.join(' ')).toMatch(/Usage: serene/);
        if (code === 1) expect(output.stderr, args.join(' ')).toMatch(/was not found/);
      }
      expect((await serene(['repo', 'add', '--help'])).stdout).toMatch(/--prevent-downgrade/);
      // nothing was created by the usage errors
      expect(await fs.readdir(work)).toEqual([]);
    });
  });

  describe.skipIf(!hasProgram('pacman'))('pacman reads the result', () => {
    it('pacman -Sy, -Sl and -Fl', async () => {
      await pkg('alpha', '1:1.0-2', { depends: ['glibc'] });
      await pkg('beta', '0.9-1');
      const files = (await fs.readdir(pkgs)).map((name) => path.join('..', 'pkgs', name));
      expect((await serene(['repo', 'add', '../repo/test.db.tar.gz', ...files])).code).toBe(0);
      const sandbox = await createPacmanSandbox([{ name: 'test', server: `file://${repo}` }]);
      try {
        const sync = await sandbox.pacman(['-Sy']);
        expect(sync.code, sync.stderr).toBe(0);
        const list = await sandbox.pacman(['-Sl', 'test']);
        expect(list.code, list.stderr).toBe(0);
        expect(list.stdout.trim().split('\n')).toEqual(['test alpha 1:1.0-2', 'test beta 0.9-1']);
        const info = await sandbox.pacman(['-Si', 'test/alpha']);
        expect(info.stdout).toMatch(/Depends On\s+: glibc/);
        const filesSync = await sandbox.pacman(['-Fy']);
        expect(filesSync.code, filesSync.stderr).toBe(0);
        const fileList = await sandbox.pacman(['-Fl', 'test/beta']);
        expect(fileList.stdout).toContain('beta usr/share/beta/README');

        // after a remove, pacman sees it gone
        expect((await serene(['repo', 'remove', '../repo/test.db.tar.gz', 'alpha'])).code).toBe(0);
        expect((await sandbox.pacman(['-Sy'])).code).toBe(0);
        expect((await sandbox.pacman(['-Sl', 'test'])).stdout.trim()).toBe('test beta 0.9-1');
      } finally {
        await sandbox.cleanup();
      }
    });
  });

  describe.skipIf(!hasProgram('repo-add'))('interop with repo-add and repo-remove', () => {
    const repoTool = (tool: string, args: string[]) => run(tool, args, { cwd: work, env: ENV });

    it('repo-add, then serene, then repo-add on the same database', async () => {
      const db = '../repo/test.db.tar.gz';
      const [alpha, beta, gamma] = await Promise.all([pkg('alpha'), pkg('beta'), pkg('gamma')]);
      const first = await repoTool('repo-add', [db, alpha]);
      expect(first.code, first.stderr).toBe(0);
      const second = await serene(['repo', 'add', db, beta]);
      expect(second.code, second.stderr).toBe(0);
      expect(await entriesOf(path.join(repo, 'test.db.tar.gz'))).toEqual(['alpha-1.0-1', 'beta-1.0-1']);
      expect(await entriesOf(path.join(repo, 'test.files.tar.gz'))).toEqual(['alpha-1.0-1', 'beta-1.0-1']);
      const third = await repoTool('repo-add', [db, gamma]);
      expect(third.code, third.stderr).toBe(0);
      // repo-add kept serene's entries, and serene reads repo-add's output again
      expect(await entriesOf(path.join(repo, 'test.db.tar.gz'))).toEqual([
        'alpha-1.0-1',
        'beta-1.0-1',
        'gamma-1.0-1',
      ]);
      const removed = await serene(['repo', 'remove', db, 'alpha']);
      expect(removed.code, removed.stderr).toBe(0);
      expect(await entriesOf(path.join(repo, 'test.db.tar.gz'))).toEqual(['beta-1.0-1', 'gamma-1.0-1']);
      expect(await entriesOf(path.join(repo, 'test.files.tar.gz'))).toEqual(['beta-1.0-1', 'gamma-1.0-1']);
    });

    it('serene, then repo-add and repo-remove, then serene', async () => {
      const db = '../repo/test.db.tar.gz';
      const [alpha, beta, gamma] = await Promise.all([pkg('alpha'), pkg('beta'), pkg('gamma')]);
      expect((await serene(['repo', 'add', db, alpha, beta])).code).toBe(0);
      const added = await repoTool('repo-add', [db, gamma]);
      expect(added.code, added.stderr).toBe(0);
      const removed = await repoTool('repo-remove', [db, 'alpha']);
      expect(removed.code, removed.stderr).toBe(0);
      expect(await entriesOf(path.join(repo, 'test.db.tar.gz'))).toEqual(['beta-1.0-1', 'gamma-1.0-1']);
      const alpha2 = await pkg('alpha', '2.0-1');
      const again = await serene(['repo', 'add', db, alpha2]);
      expect(again.code, again.stderr).toBe(0);
      expect(await entriesOf(path.join(repo, 'test.db.tar.gz'))).toEqual([
        'alpha-2.0-1',
        'beta-1.0-1',
        'gamma-1.0-1',
      ]);
      expect(await entriesOf(path.join(repo, 'test.files.tar.gz'))).toEqual([
        'alpha-2.0-1',
        'beta-1.0-1',
        'gamma-1.0-1',
      ]);
      // and pacman reads the mixed result
      const sandbox = await createPacmanSandbox([{ name: 'test', server: `file://${repo}` }]);
      try {
        expect((await sandbox.pacman(['-Sy'])).code).toBe(0);
        expect((await sandbox.pacman(['-Sl', 'test'])).stdout.trim().split('\n')).toEqual([
          'test alpha 2.0-1',
          'test beta 1.0-1',
          'test gamma 1.0-1',
        ]);
      } finally {
        await sandbox.cleanup();
      }
    });

    it('the entries serene writes are the ones repo-add writes', async () => {
      const alpha = await pkg('alpha', '1.0-1', { depends: ['glibc', 'zlib>=1.2'] });
      const ours = path.join(root, 'ours');
      const theirs = path.join(root, 'theirs');
      await fs.mkdir(ours);
      await fs.mkdir(theirs);
      expect((await serene(['repo', 'add', path.join(ours, 'test.db.tar.gz'), alpha])).code).toBe(0);
      expect((await repoTool('repo-add', [path.join(theirs, 'test.db.tar.gz'), alpha])).code).toBe(0);
      for (const kind of ['db', 'files']) {
        for (const member of ['desc', ...(kind === 'files' ? ['files'] : [])]) {
          const read = (dir: string) =>
            run('bsdtar', ['-xOf', path.join(dir, `test.${kind}.tar.gz`), `alpha-1.0-1/${member}`]);
          expect((await read(ours)).stdout).toBe((await read(theirs)).stdout);
        }
      }
    });
  });
});

describe('the executable', () => {
  beforeAll(async () => {
    const build = await run('npx', ['tsc', '-b', 'packages/cli'], { cwd: ROOT });
    expect(build.stdout + build.stderr).toBe('');
    expect(build.code).toBe(0);
  });

  it('exits with the code of the command: 0 for --version, 2 for a usage error', async () => {
    const version = await run(process.execPath, [MAIN, '--version'], { cwd: work, env: ENV });
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
    const usage = await run(process.execPath, [MAIN, 'repo', 'add'], { cwd: work, env: ENV });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/Usage: serene/);
  });
});
