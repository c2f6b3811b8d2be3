import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderPkgbuild, renderSrcinfo } from '../../../../test/fixtures/aur/index.js';
import { type GitServer, startGitServer } from '../../../../test/fixtures/git/index.js';
import type { SrcinfoGenerator } from '../contracts/source.js';
import { InputError } from '../errors.js';
import { createSourceFactory } from './source-factory.js';
import { createMakepkgSrcinfoGenerator, makepkgSrcinfoUnavailable } from './testing-srcinfo.js';

let server: GitServer;
let tmp: string;
let dirs = 0;
const newDir = () => path.join(tmp, `src-${++dirs}`);

const PKG = { base: 'custom', pkgver: '1.0', depends: ['glibc'] };

beforeAll(async () => {
  server = await startGitServer();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-git-source-'));
});
afterAll(async () => {
  await server?.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

function counting(generate: SrcinfoGenerator) {
  const calls: string[] = [];
  const wrapped: SrcinfoGenerator = (dir, options) => {
    calls.push(dir);
    return generate(dir, options);
  };
  return { generate: wrapped, calls };
}

describe('git source', () => {
  it('clones, takes HEAD as state, pulls on update and writes the original JSON', async () => {
    const { commit } = await server.createRepo('with-srcinfo', {
      PKGBUILD: renderPkgbuild(PKG),
      '.SRCINFO': renderSrcinfo(PKG),
    });
    const generator = counting(async () => {
      throw new Error('not expected');
    });
    const factory = createSourceFactory({ generateSrcinfo: generator.generate });
    const url = server.repoUrl('with-srcinfo');
    const source = await factory.create({ type: 'git', url, devel: false });
    const dir = newDir();
    await source.initialize(dir);
    expect(source.state()).toBe(commit);
    expect(source.describe()).toEqual({ label: 'git repository', url });
    expect(source.toJSON()).toEqual({
      devel: false,
      srcinfo_override: false,
      srcinfo: null,
      devel_revisions: {},
      inner: { type: 'GitSource', repository: url, last_commit: commit },
    });

    const next = { ...PKG, pkgver: '1.1' };
    const second = await server.commit('with-srcinfo', {
      PKGBUILD: renderPkgbuild(next),
      '.SRCINFO': renderSrcinfo(next),
    });
    const restored = factory.restore(source.toJSON());
    await restored.update(dir);
    expect(restored.state()).toBe(second);
    expect(await restored.srcinfo(dir)).toBe(renderSrcinfo(next));
    expect(generator.calls).toEqual([]);
  });

  it('uses the generated .SRCINFO when overridden', async () => {
    await server.createRepo('override', { PKGBUILD: renderPkgbuild(PKG), '.SRCINFO': renderSrcinfo(PKG) });
    const fake = renderSrcinfo({ ...PKG, pkgver: '9.9' });
    const factory = createSourceFactory({ generateSrcinfo: async () => fake });
    const source = await factory.create({ type: 'git', url: server.repoUrl('override'), devel: false });
    source.srcinfoOverride = true;
    const dir = newDir();
    await source.initialize(dir);
    expect(await source.srcinfo(dir)).toBe(fake);
    expect(source.toJSON()).toMatchObject({ srcinfo_override: true, srcinfo: fake });
  });

  it('refuses URLs git would read as options', async () => {
    const factory = createSourceFactory({ generateSrcinfo: async () => '' });
    await expect(
      factory.create({ type: 'git', url: '--upload-pack=x', devel: false }),
    ).rejects.toBeInstanceOf(InputError);
  });

  it('follows the git+ sources of a devel repository', async () => {
    const up = await server.createRepo('lib-upstream', { 'lib.c': '\n' }, { branch: 'trunk' });
    const devel = {
      base: 'lib-git',
      pkgver: 'r1',
      source: [`git+${server.repoUrl('lib-upstream')}#branch=trunk`],
    };
    await server.createRepo('lib-git', { PKGBUILD: renderPkgbuild(devel), '.SRCINFO': renderSrcinfo(devel) });
    const factory = createSourceFactory({ generateSrcinfo: async () => '' });
    const source = await factory.create({ type: 'git', url: server.repoUrl('lib-git'), devel: true });
    const dir = newDir();
    await source.initialize(dir);
    const inner = source.inner.state();
    expect(source.state()).toBe(`${inner}${up.commit}`);
    const moved = await server.commit('lib-upstream', { 'lib.c': 'int x;\n' }, { branch: 'trunk' });
    await source.update(dir);
    expect(source.state()).toBe(`${inner}${moved}`);
  });
});

const noMakepkg = makepkgSrcinfoUnavailable();

describe.skipIf(noMakepkg !== undefined)('git source without .SRCINFO (makepkg as serene-build)', () => {
  it('generates the .SRCINFO once and keeps it while HEAD stays', { timeout: 180_000 }, async () => {
    await server.createRepo('no-srcinfo', { PKGBUILD: renderPkgbuild(PKG), 'fix.patch': '--- a\n+++ b\n' });
    const generator = counting(createMakepkgSrcinfoGenerator());
    const factory = createSourceFactory({ generateSrcinfo: generator.generate });
    const source = await factory.create({ type: 'git', url: server.repoUrl('no-srcinfo'), devel: false });
    const dir = newDir();
    await source.initialize(dir);
    expect(source.generatedSrcinfo).toBe(renderSrcinfo(PKG));
    expect(await source.srcinfo(dir)).toBe(renderSrcinfo(PKG));
    await source.update(dir);
    expect(generator.calls).toEqual([dir]);
    // the generator worked on a copy: the checkout is unchanged and still owned by root
    expect((await fs.stat(path.join(dir, 'PKGBUILD'))).uid).toBe(0);
  });
});
