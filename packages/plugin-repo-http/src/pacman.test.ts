import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createPacmanSandbox, hasProgram, type PacmanSandbox } from '@serene/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './testing/harness.js';

describe.skipIf(!hasProgram('pacman'))('pacman against the server', () => {
  let h: Harness;
  let sandbox: PacmanSandbox;

  beforeAll(async () => {
    h = await startHarness({
      packages: [
        { base: 'alpha', pkgver: '1.0', depends: ['beta-lib'] },
        { base: 'beta', pkgver: '2.0', members: [{ name: 'beta-lib' }, { name: 'beta-tools' }] },
      ],
    });
    const added = await h.ask('/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'aur', name: 'alpha' } },
    });
    expect(added.status).toBe(200);
    await h.orchestrator.idle();
    sandbox = await createPacmanSandbox([{ name: 'serene', server: `${h.url}/x86_64` }]);
  });
  afterAll(async () => {
    await sandbox?.cleanup();
    await h?.close();
  });

  it('syncs the database, skips it when unchanged, and installs packages with their dependencies', async () => {
    const sync = await sandbox.pacman(['-Sy']);
    expect(sync.code, sync.stderr).toBe(0);
    // pacman asks with If-Modified-Since; an unchanged database is not downloaded again
    const before = h.requests.length;
    const again = await sandbox.pacman(['-Sy']);
    expect(again.code, again.stderr).toBe(0);
    const asked = h.requests.slice(before).filter((request) => request.url === '/x86_64/serene.db');
    expect(asked.map((request) => request.status)).toEqual([304]);
    expect(asked[0]?.headers['if-modified-since']).toBeDefined();

    const install = await sandbox.pacman(['-S', 'alpha']);
    expect(install.code, `${install.stdout}\n${install.stderr}`).toBe(0);
    const query = await sandbox.pacman(['-Q']);
    expect(query.stdout).toContain('alpha 1.0-1');
    expect(query.stdout).toContain('beta-lib 2.0-1');
    const cached = await fs.readdir(path.join(sandbox.root, 'var/cache/pacman/pkg'));
    expect(cached).toContain('alpha-1.0-1-any.pkg.tar.gz');
  });

  it('sees an upgrade after a rebuild, and follows the 307 redirect to a package file', async () => {
    await h.aur.bump('alpha');
    const rebuilt = await h.ask('/build', {
      method: 'POST',
      body: { packages: ['alpha'], clean: false, resolve: true, force: false },
    });
    expect(rebuilt.status).toBe(200);
    await h.orchestrator.idle();
    const upgrade = await sandbox.pacman(['-Syu']);
    expect(upgrade.code, `${upgrade.stdout}\n${upgrade.stderr}`).toBe(0);
    expect((await sandbox.pacman(['-Q', 'alpha'])).stdout.trim()).toBe('alpha 1.1-1');

    const followed = await fetch(`${h.url}/x86_64/package/beta-tools`);
    expect(followed.status).toBe(200);
    expect(followed.url).toBe(`${h.url}/x86_64/beta-tools-2.0-1-any.pkg.tar.gz`);
    const file = await fs.readFile(path.join(h.repositoryDir, 'beta-tools-2.0-1-any.pkg.tar.gz'));
    expect(Buffer.from(await followed.arrayBuffer()).equals(file)).toBe(true);
  });
});

describe.skipIf(!hasProgram('pacman'))('pacman against a server of two architectures', () => {
  let h: Harness;
  const sandboxes: PacmanSandbox[] = [];

  beforeAll(async () => {
    h = await startHarness({
      arches: ['aarch64'],
      packages: [
        { base: 'tool', pkgver: '1.0', arch: ['x86_64', 'aarch64'], depends: ['data'] },
        { base: 'data', pkgver: '2.0', arch: ['any'] },
        { base: 'pc-only', pkgver: '3.0', arch: ['x86_64'] },
      ],
    });
    for (const name of ['tool', 'pc-only']) {
      const added = await h.ask('/package/add', {
        method: 'POST',
        body: { replace: false, source: { type: 'aur', name } },
      });
      expect(added.status).toBe(200);
    }
    await h.orchestrator.idle();
  });
  afterAll(async () => {
    for (const sandbox of sandboxes) await sandbox.cleanup();
    await h?.close();
  });

  it('serves each architecture its repository at /<arch>/: the any package in both', async () => {
    for (const [arch, expected] of [
      ['x86_64', ['serene data 2.0-1', 'serene pc-only 3.0-1', 'serene tool 1.0-1']],
      ['aarch64', ['serene data 2.0-1', 'serene tool 1.0-1']],
    ] as const) {
      const sandbox = await createPacmanSandbox([{ name: 'serene', server: `${h.url}/${arch}` }], {
        architecture: arch,
      });
      sandboxes.push(sandbox);
      const sync = await sandbox.pacman(['-Sy']);
      expect(sync.code, sync.stderr).toBe(0);
      expect((await sandbox.pacman(['-Sl', 'serene'])).stdout.trim().split('\n').sort()).toEqual(expected);
      const install = await sandbox.pacman(['-S', 'tool']);
      expect(install.code, `${install.stdout}\n${install.stderr}`).toBe(0);
      expect((await sandbox.pacman(['-Qi', 'tool'])).stdout).toMatch(new RegExp(`Architecture\\s+: ${arch}`));
      expect((await sandbox.pacman(['-Q', 'data'])).stdout.trim()).toBe('data 2.0-1');
    }
    const redirect = await h.ask('/aarch64/package/tool');
    expect(redirect.status).toBe(307);
    expect(redirect.headers.location).toBe('/aarch64/tool-1.0-1-aarch64.pkg.tar.gz');
    expect((await h.ask('/aarch64/package/pc-only')).status).toBe(404);
    expect((await h.ask('/armv7h/package/tool')).status).toBe(400);
    expect((await h.ask('/armv7h/serene.db')).status).toBe(404);
  });
});
