import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type AurEmulator,
  renderPkgbuild,
  renderSrcinfo,
  startAurEmulator,
} from '../../../../test/fixtures/aur/index.js';
import { type GitServer, startGitServer } from '../../../../test/fixtures/git/index.js';
import type { SrcinfoGenerator } from '../contracts/source.js';
import { NotFoundError } from '../errors.js';
import {
  createSourceFactory,
  type SereneSourceFactory,
  type SourceFactoryOptions,
} from './source-factory.js';

let aur: AurEmulator;
let upstream: GitServer;
let tmp: string;
let upstreamHead = '';
const generated: string[] = [];
/** AUR checkouts carry a .SRCINFO: generation must never be needed. */
const generateSrcinfo: SrcinfoGenerator = async (dir) => {
  generated.push(dir);
  throw new Error('no .SRCINFO generation expected for AUR packages');
};

beforeAll(async () => {
  upstream = await startGitServer();
  upstreamHead = (await upstream.createRepo('upstream', { 'main.c': 'int main() {}\n' })).commit ?? '';
  aur = await startAurEmulator({
    packages: [
      { base: 'hello', pkgver: '1.0' },
      {
        base: 'tool-suite',
        pkgver: '2.0',
        members: [{ name: 'tool-suite' }, { name: 'tool-libs' }],
      },
      // no pkgname equals the base: `info` by base finds nothing (as for material-symbols-git)
      {
        base: 'icon-theme',
        pkgver: '5',
        members: [{ name: 'icon-theme-dark' }, { name: 'icon-theme-light' }],
      },
      {
        base: 'upstream-git',
        pkgver: 'r1.abc',
        source: [`upstream::git+${upstream.repoUrl('upstream')}#branch=master`],
        functions: 'pkgver() {\n  echo r1.abc\n}',
      },
      ...Array.from({ length: 30 }, (_, i) => ({ base: `many-${i}`, pkgver: '1' })),
    ],
  });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-aur-source-'));
});
afterAll(async () => {
  await aur?.close();
  await upstream?.close();
  await fs.rm(tmp, { recursive: true, force: true });
});
beforeEach(() => aur.resetStats());

const factoryFor = (options: Partial<SourceFactoryOptions> = {}) =>
  createSourceFactory({
    generateSrcinfo,
    aur: { baseUrl: aur.url },
    githubMirrorUrl: aur.mirrorUrl,
    ...options,
  });
let dirs = 0;
const newDir = () => path.join(tmp, `src-${++dirs}`);

describe('adding AUR packages', () => {
  let factory: SereneSourceFactory;
  beforeAll(() => {
    factory = factoryFor();
  });

  it('resolves a pkgname to its pkgbase', async () => {
    const source = await factory.create({ type: 'aur', name: 'tool-libs' });
    expect(source.inner.base).toBe('tool-suite');
    expect(source.devel).toBe(false);
    expect((await factory.create({ type: 'aur', name: 'upstream-git' })).devel).toBe(true);
  });

  it('creates sources for bases the dependency walk found, without a lookup', async () => {
    aur.resetStats();
    const source = factory.createAur('icon-theme');
    expect(source.inner.base).toBe('icon-theme');
    expect(factory.createAur('upstream-git').devel).toBe(true);
    expect(aur.stats.rpcRequests).toBe(0);
  });

  it('answers an unknown name with a NotFoundError', async () => {
    const error = await factory.create({ type: 'aur', name: 'no-such-package' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toBe(`aur package 'no-such-package' does not exist`);
  });
});

describe('AUR source', () => {
  let factory: SereneSourceFactory;
  beforeAll(() => {
    factory = factoryFor();
  });

  it('clones the base, takes the RPC version as state and writes the original JSON', async () => {
    const dir = newDir();
    const source = await factory.create({ type: 'aur', name: 'hello' });
    await source.initialize(dir);
    expect(source.state()).toBe('1.0-1');
    expect(source.toJSON()).toEqual({
      devel: false,
      srcinfo_override: false,
      srcinfo: null,
      devel_revisions: {},
      inner: { type: 'AurSource', base: 'hello', version: '1.0-1', mirror: false },
    });
    expect(source.describe()).toEqual({ label: 'aur package', url: `${aur.url}/pkgbase/hello` });
    expect(await source.srcinfo(dir)).toBe(renderSrcinfo(aur.get('hello')!));
    expect(await source.pkgbuild(dir)).toBe(renderPkgbuild(aur.get('hello')!));
    expect(generated).toEqual([]);
  });

  it('checks for updates with the RPC only, and pulls when the version changed', async () => {
    const dir = newDir();
    const source = await factory.create({ type: 'aur', name: 'hello' });
    await source.initialize(dir);
    aur.resetStats();
    await source.update(dir);
    expect(aur.stats).toMatchObject({ rpcRequests: 1, gitRequests: 0 });
    expect(source.state()).toBe('1.0-1');

    const version = await aur.bump('hello');
    const restored = factory.restore(JSON.stringify(source.toJSON()));
    await restored.update(dir);
    expect(restored.state()).toBe(version);
    expect(aur.stats.gitRequests).toBeGreaterThan(0);
    expect(await restored.srcinfo(dir)).toContain(`pkgver = ${aur.get('hello')?.pkgver}`);
  });

  it('takes the .SRCINFO version when the RPC does not know the base, and always pulls', async () => {
    const dir = newDir();
    const source = await factory.create({ type: 'aur', name: 'icon-theme-dark' });
    expect(source.inner.base).toBe('icon-theme');
    await source.initialize(dir);
    expect(source.state()).toBe('5-1');
    aur.resetStats();
    await source.update(dir);
    expect(aur.stats.gitRequests).toBeGreaterThan(0);
    await aur.bump('icon-theme', { pkgver: '6' });
    await source.update(dir);
    expect(source.state()).toBe('6-1');
  });

  it('re-initializes a missing folder', async () => {
    const dir = newDir();
    const source = await factory.create({ type: 'aur', name: 'hello' });
    await source.initialize(dir);
    await fs.rm(dir, { recursive: true });
    await source.update(dir);
    expect(await source.pkgbuild(dir)).toContain('pkgname=hello');
  });

  it('checks 30 packages with one RPC request when updated together', async () => {
    const sources = Array.from({ length: 30 }, (_, i) =>
      factory.restore({
        devel: false,
        srcinfo_override: false,
        srcinfo: null,
        devel_revisions: {},
        inner: { type: 'AurSource', base: `many-${i}`, version: '1-1', mirror: false },
      }),
    );
    // checkouts as an earlier initialize left them (only their .SRCINFO matters here)
    await Promise.all(
      sources.map(async (_, i) => {
        await fs.mkdir(path.join(tmp, `many-${i}`), { recursive: true });
        await fs.writeFile(path.join(tmp, `many-${i}`, '.SRCINFO'), renderSrcinfo(aur.get(`many-${i}`)!));
      }),
    );
    aur.resetStats();
    await Promise.all(sources.map((source, i) => source.update(path.join(tmp, `many-${i}`))));
    expect(aur.stats).toMatchObject({ rpcRequests: 1, rpcNames: 30, gitRequests: 0 });
  });
});

describe('devel AUR source', () => {
  let factory: SereneSourceFactory;
  beforeAll(() => {
    factory = factoryFor();
  });

  it('adds the upstream commits of git+ sources to the state', async () => {
    const dir = newDir();
    const source = await factory.create({ type: 'aur', name: 'upstream-git' });
    await source.initialize(dir);
    const key = `${upstream.repoUrl('upstream')}#branch=master`;
    expect(source.develRevisions).toEqual({ [key]: upstreamHead });
    expect(source.state()).toBe(`r1.abc-1${upstreamHead}`);

    // upstream moves, the AUR package does not: the state changes without an AUR pull
    const moved = await upstream.commit('upstream', { 'main.c': 'int main() { return 1; }\n' });
    aur.resetStats();
    await source.update(dir);
    expect(source.state()).toBe(`r1.abc-1${moved}`);
    expect(aur.stats.gitRequests).toBe(0);
    expect(JSON.parse(JSON.stringify(source.toJSON())).devel_revisions).toEqual({ [key]: moved });
  });
});

describe('GitHub mirror mode', () => {
  it('checks the mirror for the base when not resolving with the RPC', async () => {
    const factory = factoryFor({ githubMirror: true, resolveAdding: false });
    expect((await factory.create({ type: 'aur', name: 'tool-suite' })).inner.base).toBe('tool-suite');
    // a pkgname is not a branch of the mirror
    await expect(factory.create({ type: 'aur', name: 'tool-libs' })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('clones the base branch, versions from the .SRCINFO and never asks the RPC', async () => {
    const factory = factoryFor({ githubMirror: true, resolveAdding: false });
    const dir = newDir();
    const source = await factory.create({ type: 'aur', name: 'tool-suite' });
    await source.initialize(dir);
    expect(source.describe().label).toBe('aur package, github mirror');
    expect(source.toJSON().inner).toEqual({
      type: 'AurSource',
      base: 'tool-suite',
      version: '2.0-1',
      mirror: true,
    });
    await aur.bump('tool-suite', { pkgver: '2.1' });
    await source.update(dir);
    expect(source.state()).toBe('2.1-1');
    expect(aur.stats.rpcRequests).toBe(0);
  });

  it('re-creates a source in the other mode when the setting changed', async () => {
    const dir = newDir();
    const plain = await factoryFor().create({ type: 'aur', name: 'hello' });
    await plain.initialize(dir);
    const mirrored = factoryFor({ githubMirror: true }).restore(plain.toJSON());
    await mirrored.update(dir);
    expect(mirrored.toJSON().inner).toMatchObject({ base: 'hello', mirror: true });
    expect(mirrored.state()).toBe(plain.state());
    const back = factoryFor({ githubMirror: false }).restore(mirrored.toJSON());
    await back.update(dir);
    expect(back.toJSON().inner).toMatchObject({ mirror: false });
  });
});
