import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import {
  archValues,
  checkSrcinfo,
  dependsFor,
  memberArch,
  parseSrcinfo,
  type Srcinfo,
  srcinfoNames,
  srcinfoVersion,
} from './srcinfo.js';

/**
 * The fixtures are `makepkg --printsrcinfo` output (pacman 6.0.2) for the PKGBUILD beside each; to
 * regenerate: `runuser -u serene-build -- makepkg --printsrcinfo > .SRCINFO` in a copy of the folder.
 */
function fixture(name: string): Srcinfo {
  return parseSrcinfo(
    readFileSync(new URL(`./__fixtures__/srcinfo/${name}/.SRCINFO`, import.meta.url), 'utf8'),
  );
}

function pkgOf(info: Srcinfo, pkgname: string) {
  const pkg = info.packages.find((p) => p.pkgname === pkgname);
  if (!pkg) throw new Error(`no package ${pkgname}`);
  return pkg;
}

/** A `.SRCINFO` from lines, each tab-indented unless it starts a section or is blank. */
function srcinfo(...lines: string[]): string {
  return lines.map((l) => (l === '' || /^(pkgbase|pkgname) =/.test(l) ? l : `\t${l}`)).join('\n');
}

function parseError(text: string): InputError {
  try {
    parseSrcinfo(text);
  } catch (error) {
    if (error instanceof InputError) return error;
    throw error;
  }
  throw new Error('expected an InputError');
}

describe('parseSrcinfo on makepkg output: split package', () => {
  const info = fixture('split');

  it('reads the base section', () => {
    expect(info.base).toMatchObject({
      pkgbase: 'serene-split',
      pkgver: '1.4.0',
      pkgrel: '3',
      epoch: '2',
      pkgdesc: 'Split package fixture for serene',
      url: 'https://example.org/serene-split',
      arch: ['x86_64', 'aarch64'],
      license: ['MIT', 'Apache-2.0'],
      depends: ['glibc', 'zlib>=1.2'],
      makedepends: ['cmake', 'ninja>=1.10'],
      checkdepends: ['python-pytest'],
      optdepends: ['python: for the helper scripts', 'bash-completion: shell completions'],
      provides: ['serene-split-meta'],
      source: ['https://example.org/serene-split-1.4.0.tar.gz', 'serene.patch'],
      sha256sums: ['4f1a2e3c9d6b7a8f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f', 'SKIP'],
      groups: [],
      backup: [],
    });
    expect(info.base.install).toBeUndefined();
    expect(info.base.archSpecific).toEqual({
      x86_64: {
        source: ['https://example.org/blob-1.4.0-x86_64.bin'],
        depends: ['lib32-glibc'],
        makedepends: ['nasm'],
        sha256sums: ['0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'],
      },
      aarch64: {
        source: ['https://example.org/blob-1.4.0-aarch64.bin'],
        depends: ['libatomic'],
        sha256sums: ['fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210'],
      },
    });
    expect(info.base.fields.depends_x86_64).toEqual(['lib32-glibc']);
    expect(srcinfoVersion(info)).toBe('2:1.4.0-3');
  });

  it('lists the packages in order', () => {
    expect(info.packages.map((p) => p.pkgname)).toEqual([
      'serene-split-core',
      'serene-split-gui',
      'serene-split-doc',
    ]);
    expect(info.packages.every((p) => p.pkgbase === 'serene-split')).toBe(true);
    expect(info.packages.map(srcinfoVersion)).toEqual(['2:1.4.0-3', '2:1.4.0-3', '2:1.4.0-3']);
  });

  it('gives a package without overrides of a key the base values', () => {
    const core = pkgOf(info, 'serene-split-core');
    expect(core.overrides).toEqual(['provides', 'backup']);
    expect(core.pkgdesc).toBe('Split package fixture for serene');
    expect(core.depends).toEqual(['glibc', 'zlib>=1.2']);
    expect(core.provides).toEqual(['libserene.so=1-64', 'serene-core']);
    expect(core.backup).toEqual(['etc/serene/core.conf']);
    expect(core.arch).toEqual(['x86_64', 'aarch64']);
    expect(dependsFor(core, 'x86_64')).toEqual([
      'glibc',
      'zlib>=1.2',
      'lib32-glibc',
      'cmake',
      'ninja>=1.10',
      'nasm',
      'python-pytest',
    ]);
    expect(dependsFor(core, 'aarch64', ['depends'])).toEqual(['glibc', 'zlib>=1.2', 'libatomic']);
  });

  it('replaces overridden lists, per architecture too, and reads unicode', () => {
    const gui = pkgOf(info, 'serene-split-gui');
    expect(gui.pkgdesc).toBe('Graphical front end — ünïcödé ✓ 日本語');
    expect(gui.arch).toEqual(['x86_64']);
    expect(gui.depends).toEqual(['serene-split-core=2:1.4.0-3', 'gtk4>=1:4.10']);
    expect(gui.optdepends).toEqual(['noto-fonts-cjk: CJK glyphs: 漢字']);
    expect(gui.conflicts).toEqual(['serene-gui-git']);
    expect(gui.replaces).toEqual(['serene-gui-legacy']);
    expect(gui.archSpecific.x86_64?.depends).toEqual(['vulkan-icd-loader']);
    // not overridden: still the base's
    expect(gui.archSpecific.x86_64?.makedepends).toEqual(['nasm']);
    expect(gui.provides).toEqual(['serene-split-meta']);
    expect(dependsFor(gui, 'x86_64', ['depends'])).toEqual([
      'serene-split-core=2:1.4.0-3',
      'gtk4>=1:4.10',
      'vulkan-icd-loader',
    ]);
    expect(memberArch(gui, 'x86_64')).toBe('x86_64');
  });

  it('clears lists set to nothing, keeping the base-only makedepends', () => {
    const doc = pkgOf(info, 'serene-split-doc');
    expect(doc.arch).toEqual(['any']);
    expect(doc.depends).toEqual([]);
    expect(doc.optdepends).toEqual([]);
    expect(doc.fields.depends).toEqual([]);
    expect(doc.license).toEqual(['CC-BY-SA-4.0']);
    expect(doc.makedepends).toEqual(['cmake', 'ninja>=1.10']);
    // makepkg appends depends_$CARCH even to an arch=any member (checked with makepkg 6.0.2)
    expect(dependsFor(doc, 'x86_64', ['depends'])).toEqual(['lib32-glibc']);
    expect(memberArch(doc, 'x86_64')).toBe('any');
  });
});

describe('parseSrcinfo on makepkg output: single package', () => {
  const info = fixture('single');

  it('reads every kind of key', () => {
    expect(info.base).toMatchObject({
      pkgbase: 'serene-single',
      pkgver: '0.9.2_beta1',
      pkgrel: '1.1',
      epoch: '0',
      pkgdesc: 'A fixture with odd whitespace and ünïcödé — “quotes”',
      install: 'serene.install',
      changelog: 'ChangeLog',
      arch: ['x86_64', 'i686', 'armv7h'],
      groups: ['serene', 'serene-extra'],
      license: ['GPL-2.0-or-later', 'LicenseRef-custom'],
      depends: ['glibc>=2.38', 'libfoo.so=3-64', 'bar<2.0'],
      optdepends: ['cups: printing support', 'python>=3.10: scripting'],
      provides: ['serene=0.9.2_beta1', 'libserene.so=0-64'],
      conflicts: ['serene<0.5'],
      replaces: ['serene-old'],
      noextract: ['data.zip'],
      options: ['!strip', '!lto', 'debug'],
      backup: ['etc/serene/serene.conf', 'etc/default/serene'],
      validpgpkeys: ['ABCDEF0123456789ABCDEF0123456789ABCDEF01'],
      source: [
        'serene-0.9.2_beta1.tar.gz::https://example.org/dl?version=0.9.2_beta1&format=tar',
        'data.zip',
        'serene.sh',
      ],
      md5sums: ['d41d8cd98f00b204e9800998ecf8427e', 'SKIP', 'SKIP'],
      sha256sums: [],
    });
    expect(info.base.b2sums).toHaveLength(3);
    expect(info.base.archSpecific).toEqual({});
  });

  it('leaves epoch 0 out of the version, as makepkg does', () => {
    expect(srcinfoVersion(info)).toBe('0.9.2_beta1-1.1');
  });

  it('gives the only package everything from the base', () => {
    expect(info.packages).toHaveLength(1);
    const [pkg] = info.packages;
    expect(pkg?.pkgname).toBe('serene-single');
    expect(pkg?.overrides).toEqual([]);
    const { pkgname, pkgbase, overrides, ...fields } = pkg ?? info.packages[0]!;
    const { pkgbase: _, ...baseFields } = info.base;
    expect({ pkgname, pkgbase, overrides }).toEqual({
      pkgname: 'serene-single',
      pkgbase: 'serene-single',
      overrides: [],
    });
    expect(fields).toEqual(baseFields);
  });
});

describe('parseSrcinfo on makepkg output: VCS package', () => {
  const info = fixture('vcs');

  it('keeps # inside values', () => {
    expect(info.base.pkgdesc).toBe('Tracks the main branch # not a comment');
    expect(info.base.url).toBe('https://example.org/vcs#readme');
    expect(info.base.source).toEqual(['serene-vcs::git+https://example.org/serene.git#branch=main']);
    expect(info.base.epoch).toBeUndefined();
    expect(srcinfoVersion(info)).toBe('r123.abc1234-2');
  });

  it('builds arch=any members as any', () => {
    const [pkg] = info.packages;
    expect(pkg && memberArch(pkg, 'x86_64')).toBe('any');
    expect(pkg && dependsFor(pkg, 'x86_64')).toEqual(['nodejs>=20', 'npm', 'git', 'shellcheck']);
    expect(pkg && dependsFor(pkg, 'x86_64', ['checkdepends', 'depends'])).toEqual([
      'shellcheck',
      'nodejs>=20',
      'npm',
    ]);
  });
});

describe('parseSrcinfo edge cases', () => {
  const minimal = ['pkgbase = foo', 'pkgver = 1', 'pkgrel = 1', 'arch = any', '', 'pkgname = foo'];

  it('ignores comments, blank lines and indentation, and accepts CRLF and a BOM', () => {
    const text = `\uFEFF# Generated by makepkg 6.0.2\r\n\r\npkgbase = foo\r\n  # a comment\r\npkgver=1\r\n\t\tpkgrel   =   2  \r\n   \r\npkgname = foo\r\n`;
    const info = parseSrcinfo(text);
    expect(info.base).toMatchObject({ pkgbase: 'foo', pkgver: '1', pkgrel: '2' });
    expect(info.packages.map((p) => p.pkgname)).toEqual(['foo']);
  });

  it('keeps everything after the first = in the value', () => {
    const info = parseSrcinfo(srcinfo(...minimal.slice(0, 3), 'pkgdesc = a = b == c', 'pkgname = foo'));
    expect(info.base.pkgdesc).toBe('a = b == c');
  });

  it('lets a later single-valued line win, and accumulates multi-valued lines', () => {
    const info = parseSrcinfo(
      srcinfo(
        'pkgbase = foo',
        'pkgver = 1',
        'pkgver = 2',
        'pkgrel = 1',
        'arch = x86_64',
        'arch = aarch64',
        'pkgname = foo',
      ),
    );
    expect(info.base.pkgver).toBe('2');
    expect(info.base.fields.pkgver).toEqual(['1', '2']);
    expect(info.base.arch).toEqual(['x86_64', 'aarch64']);
  });

  it('replaces a list on its first line in a package section, then accumulates', () => {
    const info = parseSrcinfo(
      srcinfo(
        'pkgbase = foo',
        'pkgver = 1',
        'pkgrel = 1',
        'depends = a',
        'depends = b',
        'depends_x86_64 = c',
        'depends_aarch64 = d',
        'makedepends = m',
        '',
        'pkgname = foo-one',
        'depends = x',
        'depends = y',
        'depends_x86_64 = z',
        'makedepends = n',
        'checkdepends = t',
        '',
        'pkgname = foo-two',
      ),
    );
    const [one, two] = info.packages;
    expect(one?.depends).toEqual(['x', 'y']);
    expect(one?.archSpecific).toEqual({ x86_64: { depends: ['z'] }, aarch64: { depends: ['d'] } });
    expect(one?.makedepends).toEqual(['n']);
    expect(one?.overrides).toEqual(['depends', 'depends_x86_64', 'makedepends', 'checkdepends']);
    expect(one && dependsFor(one, 'aarch64')).toEqual(['x', 'y', 'd', 'n', 't']);
    expect(two?.depends).toEqual(['a', 'b']);
    expect(two && dependsFor(two, 'x86_64')).toEqual(['a', 'b', 'c', 'm']);
    expect(two && dependsFor(two, 'riscv64')).toEqual(['a', 'b', 'm']);
  });

  it('clears a single-valued key set to nothing in a package section', () => {
    const info = parseSrcinfo(
      srcinfo(
        'pkgbase = foo',
        'pkgver = 1',
        'pkgrel = 1',
        'pkgdesc = base',
        'install = foo.install',
        'pkgname = foo',
        'pkgdesc = ',
        'install =',
      ),
    );
    expect(info.base.pkgdesc).toBe('base');
    expect(info.packages[0]?.pkgdesc).toBeUndefined();
    expect(info.packages[0]?.install).toBeUndefined();
    expect(info.packages[0]?.pkgver).toBe('1');
  });

  it('keeps unknown keys in fields, and __proto__ as a plain key', () => {
    const info = parseSrcinfo(
      srcinfo(
        ...minimal.slice(0, 4),
        'futurekey = 1',
        'futurekey = 2',
        '__proto__ = x',
        'groups_x86_64 = g',
        'pkgname = foo',
      ),
    );
    expect(info.base.fields.futurekey).toEqual(['1', '2']);
    expect(Object.getOwnPropertyDescriptor(info.base.fields, '__proto__')?.value).toEqual(['x']);
    expect(Object.getPrototypeOf(info.base.fields)).toBeNull();
    // groups has no per-architecture form in makepkg
    expect(info.base.archSpecific).toEqual({});
    expect(info.base.fields.groups_x86_64).toEqual(['g']);
    expect(info.packages[0]?.fields.futurekey).toEqual(['1', '2']);
  });

  it('takes the longest key for an architecture suffix', () => {
    const info = parseSrcinfo(
      srcinfo(
        ...minimal.slice(0, 3),
        'makedepends_x86_64 = a',
        'checkdepends_x86_64 = b',
        'sha512sums_arm = c',
        'depends_ = d',
        'pkgname = foo',
      ),
    );
    expect(info.base.archSpecific).toEqual({
      x86_64: { makedepends: ['a'], checkdepends: ['b'] },
      arm: { sha512sums: ['c'] },
    });
    expect(info.base.fields.depends_).toEqual(['d']);
  });

  it('gives each package its own copies of the lists', () => {
    const info = parseSrcinfo(srcinfo(...minimal.slice(0, 3), 'depends = a', 'pkgname = x', 'pkgname = y'));
    info.packages[0]?.depends.push('changed');
    expect(info.base.depends).toEqual(['a']);
    expect(info.packages[1]?.depends).toEqual(['a']);
  });

  it.each<[string, string, RegExp]>([
    ['empty input', '', /no pkgbase line/],
    ['only comments', '# nothing\n\n', /no pkgbase line/],
    [
      'a key before pkgbase',
      '# header\npkgver = 1\npkgbase = foo',
      /line 2: 'pkgver' before the pkgbase line/,
    ],
    ['pkgname before pkgbase', '\npkgname = foo\npkgbase = foo', /line 2: 'pkgname' before the pkgbase line/],
    [
      'a line without =',
      srcinfo(...minimal.slice(0, 3), 'depends glibc', 'pkgname = foo'),
      /line 4: expected 'key = value'/,
    ],
    [
      'an invalid key',
      srcinfo(...minimal.slice(0, 3), 'bad key = 1', 'pkgname = foo'),
      /line 4: invalid key 'bad key'/,
    ],
    ['an empty key', srcinfo(...minimal.slice(0, 3), '= 1', 'pkgname = foo'), /line 4: invalid key ''/],
    [
      'a second pkgbase',
      srcinfo(...minimal, 'pkgbase = bar'),
      /line 7: a second pkgbase line \(the first is on line 1\)/,
    ],
    ['an empty pkgbase', 'pkgbase = \npkgver = 1', /line 1: pkgbase has no value/],
    ['an empty pkgname', srcinfo(...minimal.slice(0, 3), 'pkgname ='), /line 4: pkgname has no value/],
    ['a repeated package', srcinfo(...minimal, 'pkgname = foo'), /line 7: package 'foo' appears twice/],
    ['no package section', srcinfo(...minimal.slice(0, 4)), /line 1: pkgbase 'foo' has no pkgname section/],
    ['no pkgver', srcinfo('pkgbase = foo', 'pkgrel = 1', 'pkgname = foo'), /line 1: pkgbase has no pkgver/],
    ['no pkgrel', srcinfo('pkgbase = foo', 'pkgver = 1', 'pkgname = foo'), /line 1: pkgbase has no pkgrel/],
    ['a cleared pkgver', srcinfo(...minimal, 'pkgver = '), /line 6: package 'foo' has no pkgver/],
  ])('rejects %s with InputError', (_, text, message) => {
    expect(parseError(text).message).toMatch(message);
  });
});

describe('srcinfo helpers', () => {
  it('srcinfoVersion adds a non-zero epoch', () => {
    expect(srcinfoVersion({ pkgver: '1.0', pkgrel: '1' })).toBe('1.0-1');
    expect(srcinfoVersion({ pkgver: '1.0', pkgrel: '1', epoch: '0' })).toBe('1.0-1');
    expect(srcinfoVersion({ pkgver: '1.0', pkgrel: '1', epoch: '00' })).toBe('1.0-1');
    expect(srcinfoVersion({ pkgver: '1.0', pkgrel: '1', epoch: '' })).toBe('1.0-1');
    expect(srcinfoVersion({ pkgver: '1.0', pkgrel: '2', epoch: '3' })).toBe('3:1.0-2');
    expect(srcinfoVersion({ pkgver: '1.0', pkgrel: '2', epoch: '10' })).toBe('10:1.0-2');
  });

  it('memberArch is the arch if listed, else any', () => {
    expect(memberArch({ arch: ['x86_64', 'aarch64'] }, 'aarch64')).toBe('aarch64');
    expect(memberArch({ arch: ['any'] }, 'x86_64')).toBe('any');
    expect(memberArch({ arch: ['x86_64', 'any'] }, 'x86_64')).toBe('x86_64');
    expect(memberArch({ arch: ['x86_64'] }, 'aarch64')).toBe('any');
  });

  it('archValues appends the per-architecture sources and checksums', () => {
    const info = fixture('split');
    expect(archValues(info.base, 'source', 'x86_64')).toEqual([
      'https://example.org/serene-split-1.4.0.tar.gz',
      'serene.patch',
      'https://example.org/blob-1.4.0-x86_64.bin',
    ]);
    expect(archValues(info.base, 'sha256sums', 'aarch64')).toHaveLength(3);
    expect(archValues(info.base, 'source', 'i686')).toHaveLength(2);
  });
});

describe('srcinfoNames', () => {
  it('gives the pkgbase, pkgver and pkgnames parseSrcinfo gives, for every fixture', () => {
    for (const name of readdirSync(new URL('./__fixtures__/srcinfo/', import.meta.url))) {
      const text = readFileSync(new URL(`./__fixtures__/srcinfo/${name}/.SRCINFO`, import.meta.url), 'utf8');
      const parsed = parseSrcinfo(text);
      expect(srcinfoNames(text)).toEqual({
        pkgbase: parsed.base.pkgbase,
        pkgver: parsed.base.pkgver,
        pkgnames: parsed.packages.map((pkg) => pkg.pkgname),
      });
    }
  });

  it('throws an InputError for a broken structure or a missing pkgver, as parseSrcinfo', () => {
    for (const text of [
      '',
      srcinfo('pkgname = a'),
      srcinfo('pkgbase = a', 'pkgver = 1', 'pkgrel = 1'),
      srcinfo('pkgbase = a', 'pkgrel = 1', '', 'pkgname = a'),
      srcinfo('pkgbase = a', 'pkgver = 1', 'pkgrel = 1', '', 'pkgname = a', '', 'pkgname = a'),
    ]) {
      expect(() => parseSrcinfo(text)).toThrow(InputError);
      expect(() => srcinfoNames(text)).toThrow(InputError);
    }
  });
});

describe('checkSrcinfo', () => {
  /** What parseSrcinfo says of a text: `ok`, or its error message. */
  const verdict = (check: (text: string) => unknown, text: string): string => {
    try {
      check(text);
      return 'ok';
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      return error.message;
    }
  };

  it('accepts what parseSrcinfo accepts and refuses the rest with the same message', () => {
    const texts = [
      ...readdirSync(new URL('./__fixtures__/srcinfo/', import.meta.url)).map((name) =>
        readFileSync(new URL(`./__fixtures__/srcinfo/${name}/.SRCINFO`, import.meta.url), 'utf8'),
      ),
      '',
      '# only a comment',
      srcinfo('pkgname = a'),
      srcinfo('pkgbase = a', 'pkgver = 1', 'pkgrel = 1'),
      srcinfo('pkgbase = a', 'pkgrel = 1', '', 'pkgname = a'),
      srcinfo('pkgbase = a', 'pkgver = 1', '', 'pkgname = a'),
      srcinfo('pkgbase = a', 'pkgver = 1', 'pkgrel = 1', '', 'pkgname = a', '', 'pkgname = a'),
      srcinfo('pkgbase = a', 'pkgver = 1', 'pkgrel = 1', '', 'pkgname = a', 'pkgver = '),
      srcinfo('pkgbase = a', 'pkgver = 1', 'pkgrel = 1', '', 'pkgname = a', '', 'pkgname = b', 'pkgrel = '),
      srcinfo('pkgbase = a', 'pkgver = 1', '', 'pkgname = a', 'pkgrel = 2'),
      srcinfo('pkgbase = a', 'pkgver = 1', 'pkgrel = 1', 'not a key value line', '', 'pkgname = a'),
      srcinfo('pkgbase = a', 'bad key = 1', '', 'pkgname = a'),
      srcinfo('depends = x', 'pkgbase = a'),
      srcinfo('pkgbase = a', 'pkgver = 1', 'pkgrel = 1', 'pkgbase = b', '', 'pkgname = a'),
    ];
    const verdicts = texts.map((text) => verdict(checkSrcinfo, text));
    expect(verdicts).toEqual(texts.map((text) => verdict(parseSrcinfo, text)));
    // the cases cover both answers and several messages
    expect(verdicts.filter((v) => v === 'ok').length).toBeGreaterThanOrEqual(3);
    expect(new Set(verdicts.filter((v) => v !== 'ok')).size).toBeGreaterThan(8);
  });
});
