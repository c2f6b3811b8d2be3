import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createGpgSigner } from '../signing/gpg-signer.js';
import { createTestGpgHome, type TestGpgHome } from '../testing/gpg.js';
import { createPacmanSandbox, run } from '../testing/pacman.js';
import { testPublisher } from '../testing/publisher-suite.js';
import { writeSyntheticPackage } from '../testing/synthetic-package.js';
import { createFilesystemRepository } from './filesystem-repository.js';

const homes: TestGpgHome[] = [];

testPublisher('filesystem', {
  create: ({ dir, name, signer }) => createFilesystemRepository({ dir, name, signer }),
  async signer() {
    const home = await createTestGpgHome();
    homes.push(home);
    return {
      ...createGpgSigner({ homedir: home.homedir, key: home.fingerprint }),
      dispose: () => home.cleanup(),
    };
  },
});

describe('filesystem repository: start-up janitor', () => {
  it('removes signatures without their package and leftovers of a crash, nothing else', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-janitor-'));
    try {
      const dir = path.join(root, 'repository');
      const repo = createFilesystemRepository({ dir });
      await repo.init();
      const pkg = await writeSyntheticPackage(path.join(root, 'in'), { name: 'kept', version: '1.0-1' });
      await repo.publish([pkg]);
      const keptFile = path.basename(pkg);
      await fs.writeFile(path.join(dir, `${keptFile}.sig`), 'signature of a package that is there');
      await fs.writeFile(path.join(dir, 'gone-1.0-1-x86_64.pkg.tar.zst.sig'), 'orphan');
      await fs.writeFile(path.join(dir, '.tmp.half-1.0-1-x86_64.pkg.tar.zst'), 'half a copy');
      await fs.writeFile(path.join(dir, 'notes.txt.sig'), 'not a package signature: left alone');
      const removed = await repo.removeOrphans();
      expect(removed.sort()).toEqual([
        '.tmp.half-1.0-1-x86_64.pkg.tar.zst',
        'gone-1.0-1-x86_64.pkg.tar.zst.sig',
      ]);
      const left = await fs.readdir(dir);
      expect(left).toContain(keptFile);
      expect(left).toContain(`${keptFile}.sig`);
      expect(left).toContain('notes.txt.sig');
      expect(left).toContain('serene.db.tar.gz');
      expect((await repo.list()).map((entry) => entry.name)).toEqual(['kept']);
      expect(await repo.removeOrphans()).toEqual([]);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});

describe('filesystem repository: bases.json, the record of what each base published', () => {
  it('replaces everything a base published before; remove and lookups use the record; pacman follows', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-bases-'));
    const sandbox = await createPacmanSandbox([
      { name: 'serene', server: `file://${path.join(root, 'repository')}` },
    ]);
    try {
      const dir = path.join(root, 'repository');
      const repo = createFilesystemRepository({ dir });
      await repo.init();
      expect(JSON.parse(await fs.readFile(path.join(dir, 'bases.json'), 'utf8'))).toEqual({});
      const v1 = await Promise.all(
        ['split-a', 'split-b'].map((name) =>
          writeSyntheticPackage(path.join(root, 'v1'), { name, base: 'split', version: '1.0-1' }),
        ),
      );
      const other = await writeSyntheticPackage(path.join(root, 'v1'), { name: 'other', version: '3-1' });
      await repo.publish(v1, { base: 'split' });
      await repo.publish([other], { base: 'other' });
      expect(JSON.parse(await fs.readFile(path.join(dir, 'bases.json'), 'utf8'))).toEqual({
        split: [
          { name: 'split-a', file: 'split-a-1.0-1-x86_64.pkg.tar.gz' },
          { name: 'split-b', file: 'split-b-1.0-1-x86_64.pkg.tar.gz' },
        ],
        other: [{ name: 'other', file: 'other-3-1-x86_64.pkg.tar.gz' }],
      });
      expect(await repo.fileOf?.('split-b')).toBe('split-b-1.0-1-x86_64.pkg.tar.gz');
      expect((await sandbox.pacman(['-Sy'])).code).toBe(0);
      expect((await sandbox.pacman(['-S', 'split-a', 'split-b'])).code).toBe(0);

      // the new version drops split-b: it leaves the database and the folder
      const v2 = await writeSyntheticPackage(path.join(root, 'v2'), {
        name: 'split-a',
        base: 'split',
        version: '2.0-1',
      });
      await repo.publish([v2], { base: 'split' });
      expect((await repo.list()).map((entry) => `${entry.name} ${entry.version}`)).toEqual([
        'other 3-1',
        'split-a 2.0-1',
      ]);
      const files = await fs.readdir(dir);
      expect(files.filter((file) => file.includes('.pkg.tar'))).toEqual(
        expect.arrayContaining(['split-a-2.0-1-x86_64.pkg.tar.gz', 'other-3-1-x86_64.pkg.tar.gz']),
      );
      expect(files.filter((file) => file.startsWith('split-b') || file.startsWith('split-a-1.0'))).toEqual(
        [],
      );
      expect((await repo.bases()).split).toEqual([
        { name: 'split-a', file: 'split-a-2.0-1-x86_64.pkg.tar.gz' },
      ]);
      expect(await repo.fileOf?.('split-b')).toBeUndefined();
      const sync = await sandbox.pacman(['-Syu']);
      expect(sync.code, sync.stderr).toBe(0);
      expect((await sandbox.pacman(['-Q', 'split-a'])).stdout).toMatch(/split-a 2\.0-1/);
      expect((await sandbox.pacman(['-Si', 'split-b'])).code).not.toBe(0);

      // removing the base removes what the record names, even without names given
      expect((await repo.remove([], { base: 'split' })).map((entry) => entry.name)).toEqual(['split-a']);
      expect((await repo.list()).map((entry) => entry.name)).toEqual(['other']);
      expect(await repo.bases()).toEqual({ other: [{ name: 'other', file: 'other-3-1-x86_64.pkg.tar.gz' }] });
      expect((await fs.readdir(dir)).filter((file) => file.startsWith('split'))).toEqual([]);
    } finally {
      await sandbox.cleanup();
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it("takes over the original's repository as it is: repo-add's database and its bases.json", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-bases-'));
    try {
      const dir = path.join(root, 'repository');
      await fs.mkdir(dir, { recursive: true });
      const old = await Promise.all(
        ['duo-x', 'duo-y'].map((name) => writeSyntheticPackage(dir, { name, base: 'duo', version: '1-1' })),
      );
      const added = await run('repo-add', ['serene.db.tar.gz', ...old.map((file) => path.basename(file))], {
        cwd: dir,
      });
      expect(added.code, added.stderr).toBe(0);
      await fs.writeFile(
        path.join(dir, 'bases.json'),
        JSON.stringify({
          duo: old.map((file) => ({ name: path.basename(file).split('-1-1')[0], file: path.basename(file) })),
        }),
      );
      const repo = createFilesystemRepository({ dir });
      await repo.init();
      expect(await repo.fileOf?.('duo-y')).toBe('duo-y-1-1-x86_64.pkg.tar.gz');
      const next = await writeSyntheticPackage(path.join(root, 'in'), {
        name: 'duo-x',
        base: 'duo',
        version: '2-1',
      });
      await repo.publish([next], { base: 'duo' });
      expect((await repo.list()).map((entry) => `${entry.name} ${entry.version}`)).toEqual(['duo-x 2-1']);
      expect((await fs.readdir(dir)).filter((file) => file.startsWith('duo-y'))).toEqual([]);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it('makes the record from the database when there is none (a repository of an earlier serene)', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-bases-'));
    try {
      const dir = path.join(root, 'repository');
      const before = createFilesystemRepository({ dir });
      await before.init();
      const pkgs = await Promise.all(
        ['m-one', 'm-two'].map((name) =>
          writeSyntheticPackage(path.join(root, 'in'), { name, base: 'm', version: '1-1' }),
        ),
      );
      await before.publish(pkgs);
      await fs.rm(path.join(dir, 'bases.json'));
      const after = createFilesystemRepository({ dir });
      await after.init();
      expect(JSON.parse(await fs.readFile(path.join(dir, 'bases.json'), 'utf8'))).toEqual({
        m: [
          { name: 'm-one', file: 'm-one-1-1-x86_64.pkg.tar.gz' },
          { name: 'm-two', file: 'm-two-1-1-x86_64.pkg.tar.gz' },
        ],
      });
      // an unreadable record is made again too, with a warning
      await fs.writeFile(path.join(dir, 'bases.json'), '{"m": 5}');
      expect(await after.fileOf?.('m-two')).toBe('m-two-1-1-x86_64.pkg.tar.gz');
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
