// examples/custom-tooling: a signed repository from a folder of packages with @serene/core alone,
// checked with gpg and real pacman (SigLevel = Required, the key trusted as a user would).
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createPacmanSandbox,
  createTestGpgHome,
  hasProgram,
  run,
  writeSyntheticPackage,
} from '@serene/core/testing';
import { describe, expect, it } from 'vitest';
import { buildRepository } from './build-repo.js';

const missing = ['gpg', 'pacman', 'pacman-key'].filter((tool) => !hasProgram(tool));

describe.skipIf(missing.length > 0)(
  `custom tooling: build-repo (missing: ${missing.join(', ') || 'none'})`,
  () => {
    it('makes a signed repository that pacman installs from with SigLevel = Required, and updates it', async () => {
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-tooling-'));
      const gpg = await createTestGpgHome();
      try {
        const packages = path.join(root, 'packages');
        const repo = path.join(root, 'repo');
        await writeSyntheticPackage(packages, {
          name: 'tool-a',
          version: '1.0-1',
          files: { 'usr/share/tool-a/x': 'a\n' },
        });
        await writeSyntheticPackage(packages, { name: 'tool-b', version: '2.0-1', depends: ['tool-a'] });
        await fs.writeFile(path.join(packages, 'notes.txt'), 'not a package: ignored');
        const first = await buildRepository({
          packagesDir: packages,
          repositoryDir: repo,
          name: 'tools',
          gpg: { homedir: gpg.homedir, key: gpg.fingerprint },
        });
        expect(first.listed.sort()).toEqual(['tool-a 1.0-1', 'tool-b 2.0-1']);
        for (const file of first.published) {
          expect(await gpg.verify(path.join(repo, file), path.join(repo, `${file}.sig`))).toBe(true);
        }
        expect(
          await gpg.verify(path.join(repo, 'tools.db.tar.gz'), path.join(repo, 'tools.db.tar.gz.sig')),
        ).toBe(true);

        const strict = 'Required DatabaseRequired';
        const sandbox = await createPacmanSandbox(
          [{ name: 'tools', server: `file://${repo}`, sigLevel: strict }],
          {
            sigLevel: strict,
          },
        );
        try {
          expect((await sandbox.pacmanKey(['--init'])).code).toBe(0);
          const exported = await run('gpg', [
            '--homedir',
            gpg.homedir,
            '--armor',
            '--export',
            gpg.fingerprint,
          ]);
          const keyFile = path.join(root, 'key.asc');
          await fs.writeFile(keyFile, exported.stdout);
          expect((await sandbox.pacmanKey(['--add', keyFile])).code).toBe(0);
          expect((await sandbox.pacmanKey(['--lsign-key', gpg.fingerprint])).code).toBe(0);
          expect((await sandbox.pacman(['-Sy'])).code).toBe(0);
          const install = await sandbox.pacman(['-S', '--noconfirm', 'tool-b']);
          expect(install.code, install.stderr).toBe(0);
          expect((await sandbox.pacman(['-Q'])).stdout).toMatch(/tool-a 1\.0-1\ntool-b 2\.0-1/);

          // a new version in the folder replaces the old one
          await fs.rm(packages, { recursive: true });
          await writeSyntheticPackage(packages, { name: 'tool-a', version: '1.1-1' });
          const second = await buildRepository({
            packagesDir: packages,
            repositoryDir: repo,
            name: 'tools',
            gpg: { homedir: gpg.homedir, key: gpg.fingerprint },
          });
          expect(second.listed.sort()).toEqual(['tool-a 1.1-1', 'tool-b 2.0-1']);
          expect((await sandbox.pacman(['-Syu', '--noconfirm'])).code).toBe(0);
          expect((await sandbox.pacman(['-Q', 'tool-a'])).stdout.trim()).toBe('tool-a 1.1-1');
        } finally {
          await sandbox.cleanup();
        }
      } finally {
        await gpg.cleanup();
        await fs.rm(root, { recursive: true, force: true });
      }
    });
  },
);
