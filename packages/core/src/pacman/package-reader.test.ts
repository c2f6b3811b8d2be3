import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidPackageError } from '../errors.js';
import { buildFixture } from '../testing/makepkg.js';
import { hasProgram } from '../testing/pacman.js';
import { bsdtarDisplayName, readPackage, readPkginfoOnly } from './package-reader.js';
import { parsePkginfo } from './pkginfo.js';

/** Runs a shell command; resolves with its stdout as bytes, rejects on failure. */
function sh(script: string, args: string[] = [], env: Record<string, string> = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(
      'sh',
      ['-c', script, 'sh', ...args],
      { encoding: 'buffer', maxBuffer: 256 << 20, env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${script}: ${error.message}\n${stderr.toString()}`));
        else resolve(stdout);
      },
    );
  });
}

/** `bsdtar --exclude='^.*' -tf pkg | LC_ALL=C sort -u`, as repo-add lists a package (UTF-8 locale). */
async function bsdtarFiles(file: string): Promise<string[]> {
  const out = await sh(`bsdtar --exclude='^.*' -tf "$1" | LC_ALL=C sort -u`, [file], { LC_ALL: 'C.UTF-8' });
  const lines = out.toString('utf8').split('\n');
  lines.pop();
  return lines;
}

async function checksum(tool: 'md5sum' | 'sha256sum', file: string): Promise<string> {
  return (await sh(`${tool} < "$1"`, [file])).toString().split(' ')[0]!;
}

/** Compares everything readPackage says about a file with what the real tools say. */
async function expectLikeTheTools(file: string): Promise<void> {
  const pkg = await readPackage(file);
  expect(pkg.path).toBe(path.resolve(file));
  expect(pkg.filename).toBe(path.basename(file));
  expect(pkg.files).toEqual(await bsdtarFiles(file));
  expect(pkg.csize).toBe((await fs.stat(file)).size);
  expect(pkg.md5).toBe(await checksum('md5sum', file));
  expect(pkg.sha256).toBe(await checksum('sha256sum', file));
  const pkginfo = (await sh('bsdtar -xOqf "$1" .PKGINFO', [file])).toString('utf8');
  expect(pkg.pkginfo).toEqual(parsePkginfo(pkginfo));
}

const MB = 1024 * 1024;

const tools = ['makepkg', 'bsdtar', 'zstd', 'xz', 'gzip', 'md5sum', 'sha256sum'];
const missing = tools.filter((tool) => !hasProgram(tool));

// reason: these tests compare with Debian's makepkg and libarchive tools; `npm test` installs them
describe.skipIf(missing.length > 0)(`readPackage (missing tools: ${missing.join(', ') || 'none'})`, () => {
  let dir: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-reader-'));
  });

  afterAll(async () => {
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  describe('packages built by makepkg', () => {
    const built: Record<string, string[]> = {};
    const all = () => Object.values(built).flat();

    beforeAll(async () => {
      // One real makepkg build per PKGEXT, cached across runs (see testing/makepkg.ts).
      const exts = ['.pkg.tar.zst', '.pkg.tar.xz', '.pkg.tar.gz', '.pkg.tar'] as const;
      const results = await Promise.all(
        exts.map((pkgext) => buildFixture('split', { dir: path.join(dir, `split${pkgext}`), pkgext })),
      );
      for (const [i, pkgext] of exts.entries()) built[pkgext] = results[i]!;
      built.minimal = await buildFixture('minimal', { dir: path.join(dir, 'minimal') });
    }, 1_800_000);

    it('says what bsdtar, md5sum, sha256sum and stat say, in every compression', async () => {
      expect(all()).toHaveLength(9);
      for (const file of all()) await expectLikeTheTools(file);
    });

    it('reads the fixtures as written', async () => {
      const [core, doc] = await Promise.all(built['.pkg.tar.zst']!.map((file) => readPackage(file)));
      expect(core!.filename).toBe('serene-fixture-core-1:2.3.4-5-x86_64.pkg.tar.zst');
      expect(core!.pkginfo).toMatchObject({
        pkgname: 'serene-fixture-core',
        pkgbase: 'serene-fixture',
        pkgver: '1:2.3.4-5',
        pkgdesc: 'Sérène core — ünïcode test package ✓ 日本語',
        url: 'https://example.invalid/serene',
        builddate: '1700000000',
        packager: 'Serene Tests <tests@serene.invalid>',
        arch: 'x86_64',
        license: ['MIT', 'custom:Serene Test License'],
        group: ['serene-tests', 'serene-all'],
        depend: ['glibc>=2.30', 'zlib', 'sh'],
        optdepend: ['python: for the helper scripts', 'perl>=5.30: legacy tools'],
        provides: ['serene-core-api=2', 'libserene.so=1-64'],
        conflict: ['serene-old<1.0', 'serene-core-git'],
        replaces: ['serene-legacy<=0.9'],
        backup: ['etc/serene/core.conf'],
        makedepend: ['make>=4'],
        checkdepend: ['bats'],
      });
      expect(core!.files.length).toBeGreaterThan(300);
      expect(core!.files).toEqual(expect.arrayContaining(['etc/', 'usr/bin/serene-link']));
      expect(core!.files).toEqual(
        expect.arrayContaining([
          'usr/share/serene-fixture/data/hardlink.txt',
          'usr/share/serene-fixture/names/.hidden-but-listed',
          'usr/share/serene-fixture/names/with space.txt',
          'usr/share/serene-fixture/names/ünïcödé — 日本.txt',
          'usr/share/serene-fixture/names/back\\\\slash.txt',
        ]),
      );
      expect(core!.files.some((file) => file.startsWith('.'))).toBe(false);
      expect(doc!.pkginfo).toMatchObject({
        pkgname: 'serene-fixture-doc',
        arch: 'any',
        depend: ['serene-fixture-core=1:2.3.4-5'],
        license: ['CC-BY-4.0'],
        optdepend: [],
        backup: [],
      });
      const minimal = await readPackage(built.minimal![0]!);
      expect(minimal.pkginfo).toMatchObject({ pkgdesc: 'a minimal package', url: undefined, arch: 'any' });
    });

    it('tells the compression by magic bytes, not by the file name', async () => {
      const xz = built['.pkg.tar.xz']![0]!;
      const disguised = path.join(dir, 'disguised.pkg.tar.zst');
      await fs.copyFile(xz, disguised);
      const [a, b] = await Promise.all([readPackage(xz), readPackage(disguised)]);
      expect(b.files).toEqual(a.files);
      expect(b.pkginfo).toEqual(a.pkginfo);
      expect(b.sha256).toBe(a.sha256);
    });

    it('stops after .PKGINFO with files: false but still hashes the whole file', async () => {
      for (const file of all()) {
        const full = await readPackage(file);
        const quick = await readPackage(file, { files: false });
        expect(quick).toEqual({ ...full, files: [] });
        expect(await readPkginfoOnly(file)).toEqual(full.pkginfo);
      }
    });

    it('reads many packages at once (the xz decoder is shared)', async () => {
      const files = all();
      const expected = await Promise.all(files.map((file) => readPackage(file)));
      const again = await Promise.all(
        [...files, ...files, ...files].map((file, i) => (i % 2 ? readPkginfoOnly(file) : readPackage(file))),
      );
      for (const [i, result] of again.entries()) {
        const want = expected[i % files.length]!;
        expect(result).toEqual(i % 2 ? want.pkginfo : want);
      }
    });
  });

  describe('tar dialects and odd names', () => {
    const archives: string[] = [];

    beforeAll(async () => {
      const tree = path.join(dir, 'tree');
      const d = path.join(tree, 'usr/share/odd');
      await fs.mkdir(d, { recursive: true });
      await fs.writeFile(path.join(tree, '.PKGINFO'), 'pkgname = odd\npkgver = 1-1\n');
      await fs.writeFile(path.join(tree, '.MTREE'), 'not really\n');
      const names = [
        'with space',
        'é',
        '日本語',
        'back\\slash',
        'tab\there',
        'new\nline',
        'bell\x07',
        'del\x7f',
        'c1\u0085x',
        'nbsp\u00a0x',
        'zero\u200bwidth',
        'line\u2028sep',
        'emoji😀',
        'private\ue000use',
        `${'long-name-'.repeat(12)}end`,
        '.hidden',
      ];
      for (const name of names) await fs.writeFile(path.join(d, name), name);
      // invalid UTF-8, and a valid character after it (bsdtar escapes everything after the bad byte)
      await fs.writeFile(
        Buffer.concat([Buffer.from(`${d}/bad`), Buffer.from([0xff, 0xfe]), Buffer.from('é')]),
        'x',
      );
      const deep = path.join(d, `${'deep-folder-'.repeat(9)}x`, `${'deeper-'.repeat(16)}y`);
      await fs.mkdir(deep, { recursive: true });
      await fs.writeFile(path.join(deep, `${'file-'.repeat(25)}z`), 'deep');
      await fs.link(path.join(d, 'é'), path.join(d, 'hardlink'));
      await fs.symlink('é', path.join(d, 'symlink'));

      const formats = ['pax', 'ustar', 'gnutar', 'v7'];
      for (const format of formats) {
        const file = path.join(dir, `odd-${format}.pkg.tar`);
        // as makepkg runs it: LANG=C, so non-ASCII names go into pax headers as hdrcharset=BINARY
        await sh(
          `cd "$1" && LANG=C bsdtar --format=${format} -cf "$2" .PKGINFO .MTREE usr 2>/dev/null || true`,
          [tree, file],
        );
        archives.push(file);
      }
      const dotSlash = path.join(dir, 'odd-dot-slash.pkg.tar');
      await sh('cd "$1" && bsdtar -cf "$2" ./.PKGINFO ./usr', [tree, dotSlash]);
      archives.push(dotSlash);
      const pax = path.join(dir, 'odd-pax.pkg.tar');
      const compressors: [string, string][] = [
        ['zst', 'zstd -q -19 -c'],
        ['xz', 'xz -c'],
        ['gz', 'gzip -c'],
        ...(hasProgram('bzip2') ? ([['bz2', 'bzip2 -c']] as [string, string][]) : []),
      ];
      for (const [ext, command] of compressors) {
        const file = `${pax}.${ext}`;
        await sh(`${command} < "$1" > "$2"`, [pax, file]);
        archives.push(file);
      }
      // a multi-frame zstd stream (as pzstd writes): two frames, split inside the tar
      const multi = `${pax}.multi.zst`;
      await sh('head -c 3000 "$1" | zstd -q -c > "$2" && tail -c +3001 "$1" | zstd -q -c >> "$2"', [
        pax,
        multi,
      ]);
      archives.push(multi);
    });

    it('lists every dialect and name exactly as bsdtar does', async () => {
      expect(archives.length).toBeGreaterThanOrEqual(9);
      for (const file of archives) {
        const pkg = await readPackage(file);
        expect(pkg.files, file).toEqual(await bsdtarFiles(file));
        expect(pkg.pkginfo.pkgname).toBe('odd');
      }
    });

    it('escapes names as bsdtar prints them', () => {
      const name = (text: string | number[]) =>
        bsdtarDisplayName(typeof text === 'string' ? Buffer.from(text) : Uint8Array.from(text));
      expect(name('usr/bin/plain')).toBe('usr/bin/plain');
      expect(name('a\\b\tc\nd\x07')).toBe('a\\\\b\\tc\\nd\\a');
      expect(name('é日本😀\u00a0')).toBe('é日本😀\u00a0');
      expect(name('x\u0085y\u2028z')).toBe('x\\302\\205y\\342\\200\\250z');
      expect(name([0x61, 0xff, 0xc3, 0xa9])).toBe('a\\377\\303\\251');
      expect(name([0xed, 0xa0, 0x80])).toBe('\\355\\240\\200'); // a surrogate is not valid UTF-8
    });
  });

  describe('bad input', () => {
    let real: string;

    beforeAll(async () => {
      [real] = await buildFixture('minimal', { dir: path.join(dir, 'bad-base') });
    }, 1_800_000);

    async function expectInvalid(file: string, message: RegExp, pkginfoTooBroken = true): Promise<void> {
      const error = await readPackage(file).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error, file).toBeInstanceOf(InvalidPackageError);
      expect((error as Error).message).toContain(file);
      expect((error as Error).message).toMatch(message);
      // readPkginfoOnly stops at .PKGINFO: damage past it goes unseen
      if (pkginfoTooBroken) await expect(readPkginfoOnly(file)).rejects.toBeInstanceOf(InvalidPackageError);
    }

    async function write(name: string, data: Uint8Array | string): Promise<string> {
      const file = path.join(dir, name);
      await fs.writeFile(file, data);
      return file;
    }

    it('refuses what is not a package, without hanging or leaking file descriptors', async () => {
      const fds = (await fs.readdir('/proc/self/fd')).length;
      const bytes = await fs.readFile(real);
      const tarOf = async (name: string, files: Record<string, string>) => {
        const tree = await fs.mkdtemp(path.join(dir, 'tree-'));
        for (const [file, text] of Object.entries(files)) await fs.writeFile(path.join(tree, file), text);
        const out = path.join(dir, name);
        await sh('cd "$1" && bsdtar -cf "$2" $(ls -A)', [tree, out]);
        return out;
      };
      const plain = Buffer.from(await sh('zstd -dc < "$1"', [real]));
      const random = Buffer.alloc(256 * 1024);
      for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;
      const zstdHeader = (descriptor: number, window: number) =>
        Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, descriptor, window]), random.subarray(0, 4096)]);

      await expectInvalid(
        await write('text.pkg.tar.zst', 'just some text\n'.repeat(100)),
        /not a tar archive/,
      );
      await expectInvalid(await write('short.pkg.tar', 'hi\n'), /not a tar archive/);
      await expectInvalid(await write('empty.pkg.tar.zst', ''), /empty file/);
      await expectInvalid(
        await write('half.pkg.tar.zst', bytes.subarray(0, bytes.length >> 1)),
        /truncated/,
        false,
      );
      for (const cut of [5, 20, 100, 300, bytes.length - 20, bytes.length - 1]) {
        await expectInvalid(
          await write(`cut-${cut}.pkg.tar.zst`, bytes.subarray(0, cut)),
          /truncated|corrupt/,
          false,
        );
      }
      await expectInvalid(
        await write('random.pkg.tar.zst', Buffer.concat([bytes.subarray(0, 4), random])),
        /zstd/,
      );
      await expectInvalid(await write('window.pkg.tar.zst', zstdHeader(0x00, 0xa8)), /window/); // 2^31
      await expectInvalid(await write('half.pkg.tar', plain.subarray(0, 1000)), /truncated/);
      const corrupt = Buffer.from(plain);
      const firstSize = Number.parseInt(plain.subarray(124, 136).toString('latin1'), 8);
      const second = 512 + Math.ceil(firstSize / 512) * 512;
      corrupt[second] = corrupt[second]! ^ 0xff; // the second header's name: its checksum fails
      await expectInvalid(await write('damaged.pkg.tar', corrupt), /damaged tar archive/);
      const xz = await sh('xz -c < "$1"', [await write('plain.tar', plain)]);
      await expectInvalid(await write('half.pkg.tar.xz', xz.subarray(0, xz.length >> 1)), /xz/);
      await expectInvalid(
        await write('random.pkg.tar.xz', Buffer.concat([xz.subarray(0, 12), random])),
        /xz/,
      );
      const gz = await sh('gzip -c < "$1"', [path.join(dir, 'plain.tar')]);
      await expectInvalid(await write('half.pkg.tar.gz', gz.subarray(0, gz.length >> 1)), /gzip|truncated/);
      await expectInvalid(
        await write('random.pkg.tar.gz', Buffer.concat([gz.subarray(0, 10), random])),
        /gzip/,
      );
      await expectInvalid(
        await tarOf('no-pkginfo.pkg.tar', { README: 'no metadata here\n' }),
        /no \.PKGINFO/,
      );
      await expectInvalid(await tarOf('no-name.pkg.tar', { '.PKGINFO': 'pkgver = 1-1\n' }), /no pkgname/);
      await expectInvalid(
        await tarOf('bad-name.pkg.tar', { '.PKGINFO': 'pkgname = ../x\npkgver = 1-1\n' }),
        /invalid pkgname/,
      );
      await expectInvalid(await write('only-end.pkg.tar', Buffer.alloc(1024)), /not a package/);
      await expectInvalid(dir, /not a regular file|EISDIR/);
      await expectInvalid(path.join(dir, 'does-not-exist.pkg.tar.zst'), /no such file/);

      await sleep(50);
      expect((await fs.readdir('/proc/self/fd')).length).toBeLessThanOrEqual(fds);
    }, 120_000);

    it('refuses a large corrupt package read by the zstd program', async () => {
      const big = Buffer.alloc(3 * MB);
      for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
      big.set([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58], 0);
      const file = await write('big-random.pkg.tar.zst', big);
      await expectInvalid(file, /zstd/);
    });
  });
});
