import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AurEmulator, startAurEmulator } from '../../../../test/fixtures/aur/index.js';
import { NotFoundError } from '../errors.js';
import type { Dependency } from '../pacman/depend.js';
import { createAurClient } from './aur-client.js';
import { resolveAurDependencies } from './aur-dependencies.js';
import { createSourceFactory } from './source-factory.js';

let aur: AurEmulator;

beforeAll(async () => {
  aur = await startAurEmulator({
    packages: [
      {
        base: 'app',
        pkgver: '1.0',
        depends: ['glibc', 'libA', 'virtual-db', 'app-data', 'our-lib>=2'],
        makedepends: ['cmake', 'builder'],
        checkdepends: ['testlib>=2'],
        members: [{ name: 'app' }, { name: 'app-data', depends: [] }],
      },
      { base: 'libA', pkgver: '1', depends: ['libB', 'glibc'] },
      { base: 'libB', pkgver: '1', depends: ['libA>=1', 'missing-thing'] },
      { base: 'builder', pkgver: '1', depends: ['libB'] },
      { base: 'db-impl', pkgver: '3', provides: ['virtual-db'], numVotes: 10 },
      { base: 'db-other', pkgver: '3', provides: ['virtual-db'], numVotes: 2 },
      { base: 'testlib', pkgver: '1' },
      { base: 'testlib-ng', pkgver: '5', provides: ['testlib=2.5'] },
      { base: 'standalone', pkgver: '1', depends: ['glibc'] },
    ],
  });
});
afterAll(async () => aur?.close());
beforeEach(() => aur.resetStats());

/** Our "sync databases and own repository": glibc, cmake, our-lib 2.1. */
function repos() {
  const asked: string[] = [];
  const isSatisfied = (raw: string, dep: Dependency) => {
    asked.push(raw);
    if (dep.name === 'our-lib') return dep.op === '>=' && dep.version === '2';
    return ['glibc', 'cmake'].includes(dep.name);
  };
  return { asked, isSatisfied };
}

describe('AUR dependency walker', () => {
  it('returns the AUR bases to add (target first) and what nobody satisfies', async () => {
    const client = createAurClient({ baseUrl: aur.url });
    const { asked, isSatisfied } = repos();
    const result = await resolveAurDependencies(client, 'app', { isSatisfied });
    expect(result.target.Name).toBe('app');
    expect(result.bases).toEqual(['app', 'libA', 'builder', 'db-impl', 'testlib-ng', 'libB']);
    expect(result.packages.map((p) => p.Name)).toEqual([
      'app',
      'libA',
      'app-data',
      'builder',
      'db-impl',
      'testlib-ng',
      'libB',
    ]);
    expect(result.missing).toEqual(['missing-thing']);
    // every dependency string is asked about once; those settled by chosen AUR packages not at all
    expect(asked.sort()).toEqual(
      [
        'app-data',
        'builder',
        'cmake',
        'glibc',
        'libA',
        'libB',
        'missing-thing',
        'our-lib>=2',
        'testlib>=2',
        'virtual-db',
      ].sort(),
    );
    // one info request per level, plus the provider searches and their details
    expect(aur.stats.rpcRequests).toBe(8);
  });

  it('adds only the target when everything else is satisfied', async () => {
    const client = createAurClient({ baseUrl: aur.url });
    const result = await resolveAurDependencies(client, 'standalone', repos());
    expect(result).toMatchObject({ bases: ['standalone'], missing: [] });
    expect(aur.stats.rpcRequests).toBe(1);
  });

  it('reports providers as missing when provider search is off', async () => {
    const client = createAurClient({ baseUrl: aur.url });
    const result = await resolveAurDependencies(client, 'app', { ...repos(), searchProviders: false });
    expect(result.missing.sort()).toEqual(['missing-thing', 'testlib>=2', 'virtual-db']);
    expect(result.bases).not.toContain('db-impl');
  });

  it('answers an unknown target with a NotFoundError', async () => {
    const client = createAurClient({ baseUrl: aur.url });
    const error = await resolveAurDependencies(client, 'nope', repos()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toBe(`aur package 'nope' does not exist`);
  });
});

describe('AUR dependencies through the source factory', () => {
  it('plans the AUR packages of an AUR target and of a package from elsewhere', async () => {
    const factory = createSourceFactory({ generateSrcinfo: async () => '', aur: { baseUrl: aur.url } });
    const satisfied = new Set(['glibc', 'cmake', 'our-lib>=2']);
    const isSatisfied = (dep: string) => satisfied.has(dep);
    expect(await factory.resolveAurDependencies({ name: 'builder' }, { isSatisfied })).toEqual({
      bases: ['builder', 'libB', 'libA'],
      missing: ['missing-thing'],
    });
    // a git or raw package: the dependencies of its .SRCINFO
    expect(
      await factory.resolveAurDependencies(
        { dependencies: ['glibc', 'virtual-db', 'standalone>=1'] },
        { isSatisfied },
      ),
    ).toEqual({ bases: ['standalone', 'db-impl'], missing: [] });
  });

  it('resolves nothing through the AUR when AUR_RESOLVE_ADDING is off', async () => {
    const factory = createSourceFactory({
      generateSrcinfo: async () => '',
      aur: { baseUrl: aur.url },
      resolveAdding: false,
    });
    expect(await factory.resolveAurDependencies({ name: 'app' }, { isSatisfied: () => false })).toBeNull();
    expect(aur.stats.rpcRequests).toBe(0);
  });
});
