import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderPkgbuild, renderSrcinfo } from '../../../../test/fixtures/aur/index.js';
import { type GitServer, startGitServer } from '../../../../test/fixtures/git/index.js';
import { rawSourceState } from './raw-source.js';
import { createSourceFactory } from './source-factory.js';
import { createMakepkgSrcinfoGenerator, makepkgSrcinfoUnavailable } from './testing-srcinfo.js';

let tmp: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-raw-source-'));
});
afterAll(async () => fs.rm(tmp, { recursive: true, force: true }));

describe('raw source', () => {
  it('has base64(sha256(PKGBUILD)) as state, as the original', () => {
    // computed with `printf 'pkgname=x\npkgver=1\n' | openssl dgst -sha256 -binary | base64`
    expect(rawSourceState('pkgname=x\npkgver=1\n')).toBe('Yo8GQuoPvp6BOIRSj0LyL1o2x3aJov/sVaiDGvLnSvo=');
  });

  it('writes its PKGBUILD into the folder with mode 0666 and never reads a .SRCINFO from it', async () => {
    const pkg = { base: 'raw', pkgver: '1' };
    const factory = createSourceFactory({ generateSrcinfo: async () => renderSrcinfo(pkg) });
    const source = await factory.create({ type: 'raw', pkgbuild: renderPkgbuild(pkg), devel: false });
    const dir = path.join(tmp, 'plain');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, '.SRCINFO'), 'pkgbase = stale\n');
    await source.initialize(dir);
    const stat = await fs.stat(path.join(dir, 'PKGBUILD'));
    expect(stat.mode & 0o777).toBe(0o666);
    expect(await fs.readFile(path.join(dir, 'PKGBUILD'), 'utf8')).toBe(renderPkgbuild(pkg));
    expect(await source.srcinfo(dir)).toBe(renderSrcinfo(pkg));
    expect(source.describe()).toEqual({ label: 'raw pkgbuild', url: null });
    // an update with the PKGBUILD already in place leaves the file as it is; one that differs in
    // content or mode is written again
    const file = path.join(dir, 'PKGBUILD');
    const before = await fs.stat(file);
    await source.update(dir);
    expect((await fs.stat(file)).ino).toBe(before.ino);
    await fs.chmod(file, 0o644);
    await source.update(dir);
    const rewritten = await fs.stat(file);
    expect(rewritten.mode & 0o777).toBe(0o666);
    expect(rewritten.ino).not.toBe(before.ino);
    await fs.writeFile(file, 'edited behind our back\n');
    await fs.chmod(file, 0o666);
    await source.update(dir);
    expect(await fs.readFile(file, 'utf8')).toBe(renderPkgbuild(pkg));
    expect(source.toJSON()).toEqual({
      devel: false,
      srcinfo_override: false,
      srcinfo: renderSrcinfo(pkg),
      devel_revisions: {},
      inner: { type: 'RawSource', pkgbuild: renderPkgbuild(pkg) },
    });
  });
});

const noMakepkg = makepkgSrcinfoUnavailable();

describe.skipIf(noMakepkg !== undefined)('devel raw source (makepkg as serene-build)', () => {
  let server: GitServer;
  beforeAll(async () => {
    server = await startGitServer();
  });
  afterAll(async () => server?.close());

  it('generates the .SRCINFO and follows its git+ sources', { timeout: 180_000 }, async () => {
    const { commit } = await server.createRepo('app', { 'app.c': '\n' }, { branch: 'main' });
    const pkg = {
      base: 'app-git',
      pkgver: 'r0',
      arch: ['x86_64'],
      source: [`app::git+${server.repoUrl('app')}#branch=main`],
      functions: 'pkgver() {\n  echo r1\n}',
    };
    const factory = createSourceFactory({ generateSrcinfo: createMakepkgSrcinfoGenerator(), arch: 'x86_64' });
    const source = await factory.create({ type: 'raw', pkgbuild: renderPkgbuild(pkg), devel: true });
    const dir = path.join(tmp, 'devel');
    await source.initialize(dir);
    expect(source.generatedSrcinfo).toBe(renderSrcinfo(pkg));
    const key = `${server.repoUrl('app')}#branch=main`;
    expect(source.develRevisions).toEqual({ [key]: commit });
    expect(source.state()).toBe(`${rawSourceState(renderPkgbuild(pkg))}${commit}`);
  });
});
