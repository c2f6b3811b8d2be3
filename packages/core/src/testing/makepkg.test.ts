import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUILD_USER,
  buildFixtureSet,
  buildPackage,
  ensureBuildUser,
  FIXTURES,
  pkgbuilds,
} from './makepkg.js';
import { hasProgram } from './pacman.js';

function run(program: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(program, args, { encoding: 'utf8', maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** `.PKGINFO` of a package as `key -> values`, read by bsdtar (not by our reader). */
async function pkginfoOf(file: string): Promise<Map<string, string[]>> {
  const { stdout, code, stderr } = await run('bsdtar', ['-xOf', file, '.PKGINFO']);
  expect(code, stderr).toBe(0);
  const fields = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const match = /^(\w+) = (.*)$/.exec(line);
    if (!match) continue;
    fields.set(match[1]!, [...(fields.get(match[1]!) ?? []), match[2]!]);
  }
  return fields;
}

const isRoot = process.getuid?.() === 0;
const missing = ['makepkg', 'bsdtar', 'fakeroot', ...(isRoot ? ['runuser'] : [])].filter(
  (tool) => !hasProgram(tool),
);

// reason: these tests run Debian's makepkg; `npm test` installs it
describe.skipIf(missing.length > 0)(`testing/makepkg (missing: ${missing.join(', ') || 'none'})`, () => {
  let dir: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-makepkg-test-'));
  });

  afterAll(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('has a build user (created once, as root)', async () => {
    const user = await ensureBuildUser();
    expect(await ensureBuildUser()).toBe(user);
    if (isRoot) {
      expect(user).toBe(BUILD_USER);
      const id = await run('id', ['-u', user]);
      expect(id.code).toBe(0);
      expect(Number(id.stdout.trim())).toBeGreaterThan(0);
    } else {
      expect(user).toBe(os.userInfo().username);
    }
  });

  describe('the fixture set', () => {
    let files: string[];

    beforeAll(async () => {
      files = await buildFixtureSet(path.join(dir, 'set'));
    }, 1_800_000);

    it('is built into the folder asked for, one file per package', async () => {
      expect(files.map((file) => path.basename(file))).toEqual(
        Object.values(FIXTURES)
          .flatMap((fixture) => fixture.packages)
          .map((name) => `${name}.pkg.tar.zst`)
          .sort(),
      );
      for (const file of files) {
        expect(path.dirname(file)).toBe(path.join(dir, 'set'));
        expect((await fs.stat(file)).size).toBeGreaterThan(0);
      }
      expect(pkgbuilds.split).toBe(FIXTURES.split.pkgbuild);
      // again: from the cache, as fresh copies
      const again = await buildFixtureSet(path.join(dir, 'again'));
      expect(again.map((file) => path.basename(file))).toEqual(files.map((file) => path.basename(file)));
    });

    it('covers split packages, epochs, arch any and x86_64, and every list field', async () => {
      const [core, doc, minimal] = await Promise.all(files.map(pkginfoOf));
      expect(core!.get('pkgname')).toEqual(['serene-fixture-core']);
      expect(core!.get('pkgbase')).toEqual(['serene-fixture']);
      expect(core!.get('pkgver')).toEqual(['1:2.3.4-5']);
      expect(core!.get('arch')).toEqual(['x86_64']);
      expect(core!.get('pkgdesc')).toEqual(['Sérène core — ünïcode test package ✓ 日本語']);
      expect(core!.get('builddate')).toEqual(['1700000000']);
      expect(core!.get('packager')).toEqual(['Serene Tests <tests@serene.invalid>']);
      expect(core!.get('depend')).toEqual(['glibc>=2.30', 'zlib', 'sh']);
      expect(core!.get('optdepend')).toEqual(['python: for the helper scripts', 'perl>=5.30: legacy tools']);
      expect(core!.get('provides')).toEqual(['serene-core-api=2', 'libserene.so=1-64']);
      expect(core!.get('conflict')).toEqual(['serene-old<1.0', 'serene-core-git']);
      expect(core!.get('replaces')).toEqual(['serene-legacy<=0.9']);
      expect(core!.get('group')).toEqual(['serene-tests', 'serene-all']);
      expect(core!.get('backup')).toEqual(['etc/serene/core.conf']);
      expect(core!.get('license')).toEqual(['MIT', 'custom:Serene Test License']);
      expect(doc!.get('pkgbase')).toEqual(['serene-fixture']);
      expect(doc!.get('arch')).toEqual(['any']);
      expect(doc!.get('depend')).toEqual(['serene-fixture-core=1:2.3.4-5']);
      expect(doc!.get('optdepend')).toBeUndefined();
      expect(minimal!.get('arch')).toEqual(['any']);
      expect(minimal!.get('pkgver')).toEqual(['0.1-1']);
    });

    it('has an install scriptlet, hundreds of files, links and odd names', async () => {
      const list = await run('bsdtar', ['-tvf', files[0]!]);
      expect(list.code, list.stderr).toBe(0);
      const lines = list.stdout.trim().split('\n');
      const names = (await run('bsdtar', ['-tf', files[0]!])).stdout.trim().split('\n');
      expect(names).toContain('.INSTALL');
      expect(names.length).toBeGreaterThan(300);
      expect(names).toContain('usr/share/serene-fixture/names/with space.txt');
      expect(lines.some((line) => line.includes('usr/bin/serene-link -> serene'))).toBe(true);
      expect(lines.some((line) => line.includes('hardlink.txt link to'))).toBe(true);
      const install = await run('bsdtar', ['-xOf', files[0]!, '.INSTALL']);
      expect(install.stdout).toContain('post_install()');
    });
  });

  it('builds any PKGBUILD with the PKGEXT and environment asked for', async () => {
    const pkgbuild = [
      'pkgname=serene-custom',
      'pkgver=3',
      'pkgrel=2',
      "arch=('any')",
      'package() { install -Dm644 local.txt "$pkgdir/usr/share/serene-custom/local.txt"; }',
      '',
    ].join('\n');
    const out = path.join(dir, 'custom');
    const built = await buildPackage({
      pkgbuild: pkgbuild.replace('package()', "source=('local.txt')\nsha256sums=('SKIP')\npackage()"),
      dir: out,
      extraFiles: { 'local.txt': 'from beside the PKGBUILD\n' },
      pkgext: '.pkg.tar.gz',
      env: { PACKAGER: 'Somebody Else <else@serene.invalid>' },
    });
    expect(built).toEqual([path.join(out, 'serene-custom-3-2-any.pkg.tar.gz')]);
    const info = await pkginfoOf(built[0]!);
    expect(info.get('packager')).toEqual(['Somebody Else <else@serene.invalid>']);
    const local = await run('bsdtar', ['-xOf', built[0]!, 'usr/share/serene-custom/local.txt']);
    expect(local.stdout).toBe('from beside the PKGBUILD\n');
  }, 900_000);

  it("rejects with makepkg's complaint when a PKGBUILD is wrong", async () => {
    await expect(
      buildPackage({ pkgbuild: "pkgname=bad\npkgver=1-1\npkgrel=1\narch=('any')\npackage() { :; }\n", dir }),
    ).rejects.toThrow(/makepkg failed[\s\S]*pkgver/);
  }, 900_000);
});
