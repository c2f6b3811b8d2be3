import { describe, expect, it } from 'vitest';
import { parseSrcinfo } from '../pacman/srcinfo.js';
import { resolveSession, type SessionPackage, sessionPackageOf } from './resolve.js';

/** A session package of one member, with its depends and provides. */
function pkg(base: string, pkgver: string, depends: string[] = [], provides: string[] = []): SessionPackage {
  const lines = [`pkgbase = ${base}`, `\tpkgver = ${pkgver}`, '\tpkgrel = 1', '\tarch = any'];
  for (const dep of depends) lines.push(`\tdepends = ${dep}`);
  for (const provision of provides) lines.push(`\tprovides = ${provision}`);
  lines.push('', `pkgname = ${base}`, '');
  return sessionPackageOf(base, parseSrcinfo(lines.join('\n')), ['x86_64']);
}

const context = {
  arch: 'x86_64',
  sync: [
    { name: 'glibc', version: '2.40-1', provides: [] },
    { name: 'sh-impl', version: '1-1', provides: ['sh=5.2'] },
  ],
  repository: [{ name: 'published', version: '3.0-1', provides: ['libpublished.so=3-64'] }],
  added: new Set(['never-built']),
};

describe('sessionPackageOf', () => {
  it('keeps the providers and, per architecture, the depends of every member once', () => {
    const srcinfo = parseSrcinfo(
      [
        'pkgbase = split',
        '\tpkgver = 2.0',
        '\tpkgrel = 3',
        '\tepoch = 1',
        '\tarch = x86_64',
        '\tarch = aarch64',
        '\tmakedepends = cmake',
        '\tdepends = glibc',
        '\tdepends_aarch64 = libarm',
        '',
        'pkgname = split-a',
        '\tprovides = liba.so=1-64',
        '',
        'pkgname = split-b',
        '\tdepends = glibc',
        '\tdepends = split-a',
        '',
      ].join('\n'),
    );
    const pkg = sessionPackageOf('split', srcinfo, ['x86_64', 'aarch64']);
    expect(pkg.providers).toEqual([
      { name: 'split-a', version: '1:2.0-3', provides: ['liba.so=1-64'] },
      { name: 'split-b', version: '1:2.0-3', provides: [] },
    ]);
    expect([...pkg.depends.x86_64!].sort()).toEqual(['cmake', 'glibc', 'split-a']);
    expect([...pkg.depends.aarch64!].sort()).toEqual(['cmake', 'glibc', 'libarm', 'split-a']);
    expect(pkg.depends.i686).toBeUndefined();
  });
});

describe('resolveSession', () => {
  it('finds each dependency in the session (by name or provides, version-aware, first in order), the repository or sync', async () => {
    const resolutions = await resolveSession(
      [
        pkg('app', '1.0', ['glibc', 'sh>=5', 'libfoo>=2', 'published', 'libpublished.so']),
        pkg('foo-old', '1.0', [], ['libfoo=1']),
        pkg('foo-new', '2.5', [], ['libfoo=2.5']),
        pkg('foo-newer', '3.0', [], ['libfoo=3.0']),
        pkg('self', '1.0', ['self']),
        pkg('needs-app', '1.0', ['app>=2']),
      ],
      context,
    );
    const byBase = new Map(resolutions.map((r) => [r.base, r]));
    expect(byBase.get('app')).toEqual({ base: 'app', cancelled: false, dependsOn: new Set(['foo-new']) });
    expect(byBase.get('foo-old')).toEqual({ base: 'foo-old', cancelled: false, dependsOn: new Set() });
    // a package's own members satisfy it
    expect(byBase.get('self')).toEqual({ base: 'self', cancelled: false, dependsOn: new Set() });
    // app is 1.0: `app>=2` is not satisfied by it, nor anywhere else
    expect(byBase.get('needs-app')).toEqual({
      base: 'needs-app',
      cancelled: true,
      message: 'missing dependencies: app',
    });
  });

  it('tells a dependency that is added but never built from a missing one, and cancels what needs a cancelled package', async () => {
    const resolutions = await resolveSession(
      [pkg('a', '1', ['never-built']), pkg('b', '1', ['a']), pkg('c', '1', ['nowhere', 'glibc<2'])],
      context,
    );
    expect(resolutions).toEqual([
      {
        base: 'a',
        cancelled: true,
        message: 'dependency never-built is added but has never built successfully',
      },
      { base: 'b', cancelled: true, message: 'dependencies are added but have been cancelled: a' },
      { base: 'c', cancelled: true, message: 'missing dependencies: nowhere, glibc' },
    ]);
  });

  it('names a cycle from where the session first reaches it, packages outside it before it included', async () => {
    const resolutions = await resolveSession(
      [
        pkg('leaf', '1'),
        pkg('outside', '1', ['b', 'leaf']),
        pkg('a', '1', ['b']),
        pkg('b', '1', ['c']),
        pkg('c', '1', ['a']),
        pkg('self', '1', ['self']),
        pkg('fine', '1', ['leaf']),
      ],
      context,
    );
    const messages = Object.fromEntries(
      resolutions.map((r) => [r.base, r.cancelled ? r.message : [...r.dependsOn].join(' ')]),
    );
    expect(messages).toEqual({
      leaf: '',
      outside: 'dependencies are added but have been cancelled: b',
      // reached from `outside` through b, as a search from every package in order reaches it
      a: 'dependencies form a cycle: b -> c -> a -> b',
      b: 'dependencies form a cycle: b -> c -> a -> b',
      c: 'dependencies form a cycle: b -> c -> a -> b',
      // a package that depends on itself is skipped as its own provider, not a cycle
      self: '',
      fine: 'leaf',
    });
  });

  it('resolves a session of 20,000 packages with dependencies between them in seconds, not minutes', async () => {
    const packages: SessionPackage[] = [];
    for (let i = 0; i < 20_000; i++) {
      const head = i - (i % 10);
      packages.push(
        pkg(`p-${i}`, '1.0', i === head ? ['glibc', 'sh'] : ['glibc', `p-${head}>=1`], [`lib-${i}.so=1-64`]),
      );
    }
    const sync = Array.from({ length: 15_000 }, (_, i) => ({
      name: `sync-${i}`,
      version: '1-1',
      provides: [],
    }));
    const begin = performance.now();
    const resolutions = await resolveSession(packages, { ...context, sync: [...sync, ...context.sync] });
    const elapsed = performance.now() - begin;
    expect(resolutions.filter((r) => r.cancelled)).toEqual([]);
    expect(resolutions[15]).toEqual({ base: 'p-15', cancelled: false, dependsOn: new Set(['p-10']) });
    // a scan of every session package and sync entry per dependency took minutes here
    expect(elapsed).toBeLessThan(5_000);
  });
});
