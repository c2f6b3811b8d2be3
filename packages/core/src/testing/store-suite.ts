import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { emptyGateRecord, type GateRecord } from '../contracts/gate.js';
import type { BuildStats } from '../contracts/runner.js';
import {
  type BuildRecord,
  type BuildState,
  MAKEPKG_FLAGS,
  type PackageRecord,
  packagePages,
  type Store,
} from '../contracts/store.js';

/** Options of {@link testStore}. */
export interface StoreSuiteOptions {
  /**
   * Creates an unopened store over the test's database. Called once before each test; a test may
   * call it again (after closing the first store) to check that data persists.
   */
  create: () => Promise<Store> | Store;
  /** Runs after each test, once the suite closed its stores: drop the test's database. */
  cleanup?: () => Promise<void> | void;
  /** Capabilities the implementation lacks. */
  skip?: {
    /** the data does not survive `close()` (an in-memory store) */
    reopen?: boolean;
  };
  additionalTests?: (context: { store: () => Store }) => void;
}

// --- Fixtures ---

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0, 0);
/** A time `offset` milliseconds after a fixed instant. */
const at = (offset: number): Date => new Date(T0 + offset);

/** A package with defaults as a new package has them (docs/compatibility.md#package-records). */
export function samplePackage(base: string, overrides: Partial<PackageRecord> = {}): PackageRecord {
  return {
    base,
    added: at(0),
    source: {
      devel: false,
      srcinfo_override: false,
      srcinfo: null,
      devel_revisions: {},
      inner: { type: 'AurSource', base },
    },
    srcinfo: null,
    pkgbuild: null,
    enabled: true,
    clean: true,
    private: false,
    dependency: false,
    schedule: null,
    prepare: null,
    flags: [],
    builtState: 'init',
    failedState: null,
    ...overrides,
  };
}

/** A pending build of `base` started at `started`. */
export function sampleBuild(base: string, started: Date, overrides: Partial<BuildRecord> = {}): BuildRecord {
  return {
    package: base,
    started,
    ended: null,
    state: { state: 'pending' },
    reason: 'manual',
    version: null,
    runSuccess: null,
    runStarted: null,
    runEnded: null,
    stats: null,
    ...overrides,
  };
}

const UNICODE =
  'Grüße, 世界! 🚀 ça va? \u{1F469}\u200D\u{1F4BB} e\u0301 \u202Eright-to-left\u202C «»—\t"quoted" \'single\' \\';

const STATES: BuildState[] = [
  { state: 'pending' },
  { state: 'cancelled', info: `missing dependencies: a, b ${UNICODE}` },
  { state: 'cancelled', info: '' },
  { state: 'running', info: 'resolve' },
  { state: 'running', info: 'update' },
  { state: 'running', info: 'build' },
  { state: 'running', info: 'publish' },
  { state: 'running', info: 'clean' },
  { state: 'success' },
  { state: 'failure' },
  { state: 'fatal', info: ['version mismatch on package x, expected 1 but built 2', 'publish'] },
  { state: 'fatal', info: [`error: ${UNICODE}\nsecond line`, 'resolve'] },
];

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/** Expects `promise` to reject with an error of class `name` (checked by name, as the HTTP edge does). */
async function expectError(promise: Promise<unknown>, name: string): Promise<Error> {
  const error = await errorOf(promise);
  expect(error.name, error.message).toBe(name);
  return error;
}

// --- Suite ---

/**
 * The `Store` conformance suite: every implementation runs it. It covers round-trips of every field,
 * ordering and limits, the build lookups the API uses, cascading deletes, logs (huge, unicode,
 * concurrent), retention, transactions and the closed store.
 */
export function testStore(name: string, options: StoreSuiteOptions): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    const extra: Store[] = [];

    /** Another store over the same database, closed after the test. */
    const another = async (): Promise<Store> => {
      const created = await options.create();
      extra.push(created);
      return created;
    };

    beforeEach(async () => {
      store = await options.create();
      await store.open();
    });
    afterEach(async () => {
      await store?.close();
      for (const created of extra.splice(0)) await created.close();
      await options.cleanup?.();
    });

    describe('lifecycle', () => {
      it('has a name; open is idempotent; a new store is empty', async () => {
        expect(typeof store.name).toBe('string');
        expect(store.name.length).toBeGreaterThan(0);
        await store.open();
        await Promise.all([store.open(), store.open()]);
        expect(await store.listPackages()).toEqual([]);
        expect(await store.listLatestBuilds()).toEqual([]);
        expect(await store.countPackages()).toBe(0);
        expect(await store.countLatestBuilds()).toEqual({});
        expect(await store.listUnfinishedBuilds()).toEqual([]);
        expect(await store.listBuilds('nope')).toEqual([]);
        expect(await store.countBuilds('nope')).toBe(0);
        expect(await store.readLog('nope', at(0))).toBeUndefined();
      });

      it('rejects every operation with UnavailableError after close; close is idempotent', async () => {
        await store.insertPackage(samplePackage('alpha'));
        await store.close();
        await store.close();
        await Promise.all([store.close(), store.close()]);
        const calls: [string, () => Promise<unknown>][] = [
          ['listPackages', () => store.listPackages()],
          ['listPackages page', () => store.listPackages({ limit: 1 })],
          ['countPackages', () => store.countPackages()],
          ['getPackage', () => store.getPackage('alpha')],
          ['insertPackage', () => store.insertPackage(samplePackage('beta'))],
          ['putPackage', () => store.putPackage(samplePackage('beta'))],
          ['updatePackage', () => store.updatePackage('alpha', { enabled: false })],
          ['deletePackage', () => store.deletePackage('alpha')],
          ['getGate', () => store.getGate('alpha')],
          ['listGates', () => store.listGates()],
          ['putGate', () => store.putGate(emptyGateRecord('alpha'))],
          ['insertBuild', () => store.insertBuild(sampleBuild('alpha', at(0)))],
          ['updateBuild', () => store.updateBuild('alpha', at(0), { version: '1' })],
          ['listBuilds', () => store.listBuilds('alpha')],
          ['getLatestBuild', () => store.getLatestBuild('alpha')],
          ['listLatestBuilds', () => store.listLatestBuilds()],
          ['listLatestBuilds page', () => store.listLatestBuilds({ limit: 1 })],
          ['countLatestBuilds', () => store.countLatestBuilds()],
          ['listRecentBuilds', () => store.listRecentBuilds(5)],
          ['getBuildByIndex', () => store.getBuildByIndex('alpha', 0)],
          ['getBuild', () => store.getBuild('alpha', at(0))],
          ['countBuilds', () => store.countBuilds('alpha')],
          ['listUnfinishedBuilds', () => store.listUnfinishedBuilds()],
          ['appendLog', () => store.appendLog('alpha', at(0), 'x')],
          ['readLog', () => store.readLog('alpha', at(0))],
          ['pruneBuilds', () => store.pruneBuilds(at(0))],
          ['transaction', () => store.transaction(async () => 1)],
          ['open', () => store.open()],
        ];
        for (const [method, call] of calls) {
          const error = await errorOf(call());
          expect(error.name, `${method}: ${error.message}`).toBe('UnavailableError');
        }
      });

      it('rejects operations with UnavailableError before open', async () => {
        const fresh = await another();
        await expectError(fresh.listPackages(), 'UnavailableError');
        await expectError(fresh.appendLog('alpha', at(0), 'x'), 'UnavailableError');
      });

      it('waits for pending log appends when closing', async () => {
        await store.insertPackage(samplePackage('alpha'));
        await store.insertBuild(sampleBuild('alpha', at(0)));
        const appends = Array.from({ length: 50 }, (_, i) => store.appendLog('alpha', at(0), `${i},`));
        await store.close();
        await Promise.all(appends);
        if (options.skip?.reopen) return;
        const reopened = await another();
        await reopened.open();
        expect(await reopened.readLog('alpha', at(0))).toBe(
          Array.from({ length: 50 }, (_, i) => `${i},`).join(''),
        );
      });

      it.skipIf(options.skip?.reopen)('keeps everything across close and open', async () => {
        const record = samplePackage('alpha', { srcinfo: UNICODE, flags: ['nocheck'] });
        const build = sampleBuild('alpha', at(5), { state: { state: 'success' }, ended: at(10) });
        await store.insertPackage(record);
        await store.insertBuild(build);
        await store.appendLog('alpha', at(5), 'log text\n');
        await store.close();
        const reopened = await another();
        await reopened.open();
        expect(await reopened.getPackage('alpha')).toEqual(record);
        expect(await reopened.listBuilds('alpha')).toEqual([build]);
        expect(await reopened.readLog('alpha', at(5))).toBe('log text\n');
        await reopened.close();
        // migrations ran once; opening again changes nothing
        const again = await another();
        await again.open();
        expect(await again.listPackages()).toEqual([record]);
      });
    });

    describe('packages', () => {
      it('round-trips a package with every field set', async () => {
        const record = samplePackage('alpha-git', {
          added: new Date(Date.UTC(2023, 0, 31, 23, 59, 59, 999)),
          source: {
            devel: true,
            srcinfo_override: true,
            srcinfo: `pkgbase = alpha-git\n\tpkgdesc = ${UNICODE}\n`,
            devel_revisions: { 'https://example.org/a.git': 'abc123', 'https://example.org/b.git': 'def456' },
            inner: { type: 'GitSource', repository: 'https://example.org/a.git', last_commit: 'abc123' },
            numbers: [0, -1, 1.5, 1e21],
            nothing: null,
            nested: { deep: { deeper: [true, false, 'x'] } },
            nul: 'a\u0000b',
          },
          srcinfo: `pkgbase = alpha-git\n\tpkgdesc = ${UNICODE}\n\tpkgver = 1.0\n`,
          pkgbuild: `# ${UNICODE}\npkgname=alpha-git\npkgver=1.0\nbuild() {\n  echo "$pkgname"\n}\n`,
          enabled: true,
          clean: true,
          private: true,
          dependency: true,
          schedule: '0 */5 * * * *',
          prepare: `echo '${UNICODE}'\nexport X=1`,
          flags: [...MAKEPKG_FLAGS],
          builtState: 'abc123def456',
          failedState: 'deadbeef',
        });
        await store.insertPackage(record);
        expect(await store.getPackage('alpha-git')).toEqual(record);
        expect(await store.listPackages()).toEqual([record]);
      });

      it('round-trips a package with nulls, falses and no flags', async () => {
        const record = samplePackage('beta', {
          source: {},
          enabled: false,
          clean: false,
          private: false,
          dependency: false,
          builtState: '',
          schedule: null,
          prepare: null,
          srcinfo: null,
          pkgbuild: null,
          flags: [],
        });
        await store.insertPackage(record);
        expect(await store.getPackage('beta')).toEqual(record);
      });

      it('keeps empty strings apart from null', async () => {
        const record = samplePackage('empty', { srcinfo: '', pkgbuild: '', schedule: '', prepare: '' });
        await store.insertPackage(record);
        expect(await store.getPackage('empty')).toEqual(record);
      });

      it('keeps the millisecond of `added`', async () => {
        const added = new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 1));
        await store.insertPackage(samplePackage('alpha', { added }));
        expect((await store.getPackage('alpha'))?.added.getTime()).toBe(added.getTime());
      });

      it('lists packages ordered by base, in code unit order', async () => {
        const bases = ['zeta', 'alpha', 'Beta', 'beta-git', 'a', 'alpha-bin', 'python-x', '0ad', 'Ωmega'];
        for (const base of bases) await store.insertPackage(samplePackage(base));
        expect((await store.listPackages()).map((record) => record.base)).toEqual([
          '0ad',
          'Beta',
          'a',
          'alpha',
          'alpha-bin',
          'beta-git',
          'python-x',
          'zeta',
          'Ωmega',
        ]);
      });

      it('looks packages up exactly and case-sensitively', async () => {
        await store.insertPackage(samplePackage('Foo'));
        expect(await store.getPackage('foo')).toBeUndefined();
        expect(await store.getPackage('Foo ')).toBeUndefined();
        expect(await store.getPackage('Fo')).toBeUndefined();
        expect(await store.getPackage('F%')).toBeUndefined();
        expect((await store.getPackage('Foo'))?.base).toBe('Foo');
        await store.insertPackage(samplePackage('foo'));
        expect((await store.listPackages()).map((record) => record.base)).toEqual(['Foo', 'foo']);
      });

      it('insertPackage rejects an existing base with ConflictError and keeps the first', async () => {
        const first = samplePackage('alpha', { schedule: 'first' });
        await store.insertPackage(first);
        await expectError(
          store.insertPackage(samplePackage('alpha', { schedule: 'second' })),
          'ConflictError',
        );
        expect(await store.getPackage('alpha')).toEqual(first);
      });

      it('putPackage inserts, then replaces every field and keeps builds and logs', async () => {
        await store.putPackage(samplePackage('alpha'));
        await store.insertBuild(sampleBuild('alpha', at(1)));
        await store.appendLog('alpha', at(1), 'kept');
        const replaced = samplePackage('alpha', {
          added: at(100),
          source: { inner: { type: 'RawSource', pkgbuild: 'x' } },
          srcinfo: 'a',
          pkgbuild: 'b',
          enabled: false,
          clean: false,
          private: true,
          dependency: true,
          schedule: 's',
          prepare: 'p',
          flags: ['nodeps'],
          builtState: 'state',
        });
        await store.putPackage(replaced);
        expect(await store.getPackage('alpha')).toEqual(replaced);
        expect(await store.listPackages()).toEqual([replaced]);
        expect(await store.countBuilds('alpha')).toBe(1);
        expect(await store.readLog('alpha', at(1))).toBe('kept');
      });

      it('updatePackage changes only the given fields', async () => {
        const record = samplePackage('alpha', {
          schedule: 'a',
          prepare: 'b',
          flags: ['nocheck'],
          srcinfo: 'c',
        });
        await store.insertPackage(record);
        await store.insertPackage(samplePackage('other'));
        let expected = record;
        const steps: Partial<PackageRecord>[] = [
          { enabled: false },
          { clean: false },
          { private: true },
          { dependency: true },
          { schedule: null },
          { prepare: `${UNICODE}\n` },
          { flags: ['skippgpcheck', 'cleanbuild'] },
          { flags: [] },
          {
            source: {
              devel: true,
              inner: { type: 'AurSource', base: 'alpha', version: '1:2.0-3', mirror: false },
            },
          },
          { srcinfo: 'pkgbase = alpha', pkgbuild: 'pkgname=alpha', builtState: '1:2.0-3' },
          { srcinfo: null },
          { added: at(42) },
        ];
        for (const changes of steps) {
          await store.updatePackage('alpha', changes);
          expected = { ...expected, ...changes };
          expect(await store.getPackage('alpha'), JSON.stringify(changes)).toEqual(expected);
        }
        await store.updatePackage('alpha', {});
        expect(await store.getPackage('alpha')).toEqual(expected);
        expect(await store.getPackage('other')).toEqual(samplePackage('other'));
      });

      it('updatePackage of an unknown package rejects with NotFoundError', async () => {
        await expectError(store.updatePackage('nope', { enabled: false }), 'NotFoundError');
        await expectError(store.updatePackage('nope', {}), 'NotFoundError');
        expect(await store.listPackages()).toEqual([]);
      });

      it('deletePackage deletes the package with its builds and their logs, and nothing else', async () => {
        await store.insertPackage(samplePackage('alpha'));
        await store.insertPackage(samplePackage('beta'));
        for (const base of ['alpha', 'beta']) {
          for (let i = 0; i < 3; i++) {
            await store.insertBuild(sampleBuild(base, at(i)));
            await store.appendLog(base, at(i), `${base} ${i}`);
          }
        }
        expect(await store.deletePackage('alpha')).toBe(true);
        expect(await store.deletePackage('alpha')).toBe(false);
        expect(await store.deletePackage('nope')).toBe(false);
        expect(await store.getPackage('alpha')).toBeUndefined();
        expect(await store.listBuilds('alpha')).toEqual([]);
        expect(await store.countBuilds('alpha')).toBe(0);
        expect(await store.readLog('alpha', at(0))).toBeUndefined();
        expect(await store.countBuilds('beta')).toBe(3);
        expect(await store.readLog('beta', at(2))).toBe('beta 2');
        // added again, it starts without history
        await store.insertPackage(samplePackage('alpha'));
        expect(await store.listBuilds('alpha')).toEqual([]);
        expect(await store.readLog('alpha', at(0))).toBeUndefined();
        await store.insertBuild(sampleBuild('alpha', at(0)));
        expect(await store.readLog('alpha', at(0))).toBeUndefined();
      });
    });

    describe('pages', () => {
      // Package bases of every character class a base may have (`packageNameProblem`), in code unit
      // order: digits, upper case, lower case, then `+ - . @ _` after a common prefix. A locale's
      // collation (en_US) would order them otherwise (`a` before `A`, punctuation ignored).
      const ORDERED = ['0', 'A', 'a', 'a+b', 'a-b', 'a.b', 'a@b', 'a_b'];

      /** All pages of {@link packagePages} with `size`, as arrays of bases. */
      const pagesOf = async (size: number): Promise<string[][]> => {
        const pages: string[][] = [];
        for await (const page of packagePages(store, size)) pages.push(page.map((record) => record.base));
        return pages;
      };

      it('orders bases that differ in case and punctuation in code unit order, whole and by pages', async () => {
        expect([...ORDERED].sort()).toEqual(ORDERED);
        for (const base of [...ORDERED].reverse()) await store.insertPackage(samplePackage(base));
        expect((await store.listPackages()).map((record) => record.base)).toEqual(ORDERED);
        expect((await pagesOf(1)).flat()).toEqual(ORDERED);
        // each page starts right after the base it is given
        for (const [i, base] of ORDERED.entries()) {
          expect(
            (await store.listPackages({ after: base, limit: 100 })).map((record) => record.base),
          ).toEqual(ORDERED.slice(i + 1));
        }
      });

      it('covers every package exactly once and in order, with pages of 1, 2, 3 and more than all', async () => {
        const bases = [...ORDERED, 'alpha', 'alpha-git', 'beta', 'zeta'].sort();
        // records with every field set: a page reads the same records as the whole list
        for (const [i, base] of bases.entries()) {
          await store.insertPackage(
            samplePackage(base, {
              srcinfo: `pkgbase = ${base}`,
              pkgbuild: UNICODE,
              flags: ['nocheck'],
              enabled: i % 2 === 0,
            }),
          );
        }
        const all = await store.listPackages();
        expect(all.map((record) => record.base)).toEqual(bases);
        for (const size of [1, 2, 3, bases.length, bases.length + 1, 1000]) {
          const pages: PackageRecord[][] = [];
          for await (const page of packagePages(store, size)) pages.push(page);
          expect(pages.flat(), `size ${size}`).toEqual(all);
          // full pages but the last, which is not empty
          expect(
            pages.map((page) => page.length),
            `size ${size}`,
          ).toEqual(
            Array.from({ length: Math.ceil(bases.length / size) }, (_, i) =>
              Math.min(size, bases.length - i * size),
            ),
          );
        }
        expect((await store.listPackages({ limit: 3 })).map((record) => record.base)).toEqual(
          bases.slice(0, 3),
        );
        expect(await store.listPackages({ limit: 0 })).toEqual([]);
        // in a transaction as outside
        expect(
          await store.transaction(async (tx) =>
            (await tx.listPackages({ after: bases[1]!, limit: 2 })).map((r) => r.base),
          ),
        ).toEqual(bases.slice(2, 4));
        expect(await store.transaction((tx) => tx.countPackages())).toBe(bases.length);
      });

      it('starts a page after a base that does not exist at the next one that does', async () => {
        for (const base of ['alpha', 'beta', 'gamma']) await store.insertPackage(samplePackage(base));
        const pageAfter = async (base: string) =>
          (await store.listPackages({ after: base, limit: 10 })).map((record) => record.base);
        expect(await pageAfter('alpha-git')).toEqual(['beta', 'gamma']);
        expect(await pageAfter('b')).toEqual(['beta', 'gamma']);
        expect(await pageAfter('Zulu')).toEqual(['alpha', 'beta', 'gamma']);
        expect(await pageAfter('')).toEqual(['alpha', 'beta', 'gamma']);
        expect(await pageAfter('gamma')).toEqual([]);
        expect(await pageAfter('zzz')).toEqual([]);
      });

      it('reads an empty table as no page; counts packages', async () => {
        expect(await pagesOf(2)).toEqual([]);
        expect(await store.listPackages({ limit: 5 })).toEqual([]);
        expect(await store.listPackages({ after: 'a', limit: 5 })).toEqual([]);
        expect(await store.countPackages()).toBe(0);
        expect(await store.listLatestBuilds({ limit: 2 })).toEqual([]);
        for (const base of ['alpha', 'beta', 'gamma']) await store.insertPackage(samplePackage(base));
        expect(await store.countPackages()).toBe(3);
        await store.deletePackage('beta');
        expect(await store.countPackages()).toBe(2);
        expect(await pagesOf(1)).toEqual([['alpha'], ['gamma']]);
      });

      it('refuses a limit or page size that is not a non-negative integer', async () => {
        for (const limit of [-1, 1.5, Number.NaN]) {
          await expectError(store.listPackages({ limit }), 'InputError');
          await expectError(store.listLatestBuilds({ limit }), 'InputError');
        }
        for (const size of [0, -1, 2.5])
          await expect(packagePages(store, size).next()).rejects.toThrow(RangeError);
      });

      it('reads the newest builds by pages, and those of a page of packages by its range of bases', async () => {
        const bases = ['0', 'A', 'a', 'a+b', 'a-b', 'a.b', 'a@b', 'a_b', 'beta', 'gamma'];
        for (const base of bases) await store.insertPackage(samplePackage(base));
        // every other package has builds, the newest inserted in between the older
        const built = bases.filter((_, i) => i % 2 === 0);
        for (const [i, base] of built.entries()) {
          await store.insertBuild(sampleBuild(base, at(i), { version: `${base} old` }));
          await store.insertBuild(sampleBuild(base, at(100 + i), { version: `${base} new` }));
          await store.insertBuild(sampleBuild(base, at(50 + i), { version: `${base} middle` }));
        }
        const all = await store.listLatestBuilds();
        expect(all.map((build) => build.version)).toEqual(built.map((base) => `${base} new`));
        // by pages of `limit` builds, each after the last package of the one before
        for (const limit of [1, 2, 3, built.length + 1]) {
          const pages: BuildRecord[][] = [];
          let page = await store.listLatestBuilds({ limit });
          while (page.length > 0) {
            pages.push(page);
            page = await store.listLatestBuilds({ after: page[page.length - 1]!.package, limit });
          }
          expect(pages.flat(), `limit ${limit}`).toEqual(all);
          expect(pages.every((page) => page.length <= limit)).toBe(true);
        }
        // the builds of the packages of each page of 3 packages: after its start, through its last base
        let after: string | undefined;
        const byPage: string[] = [];
        for await (const page of packagePages(store, 3)) {
          const through = page[page.length - 1]!.base;
          const builds = await store.listLatestBuilds({ ...(after === undefined ? {} : { after }), through });
          expect(builds.every((build) => page.some((record) => record.base === build.package))).toBe(true);
          byPage.push(...builds.map((build) => build.package));
          after = through;
        }
        expect(byPage).toEqual(built);
        const packagesOf = (builds: BuildRecord[]) => builds.map((build) => build.package);
        expect(packagesOf(await store.listLatestBuilds({ after: 'a', through: 'a@b' }))).toEqual([
          'a-b',
          'a@b',
        ]);
        expect(packagesOf(await store.listLatestBuilds({ after: 'a', through: 'beta', limit: 1 }))).toEqual([
          'a-b',
        ]);
        expect(packagesOf(await store.listLatestBuilds({ through: 'a' }))).toEqual(['0', 'a']);
        expect(packagesOf(await store.listLatestBuilds({ after: 'a-b' }))).toEqual(['a@b', 'beta']);
        expect(packagesOf(await store.listLatestBuilds({}))).toEqual(built);
        expect(await store.listLatestBuilds({ after: 'a', through: 'a' })).toEqual([]);
        expect(await store.listLatestBuilds({ limit: 0 })).toEqual([]);
      });
    });

    describe('update gate', () => {
      it('round-trips a gate record with a held update, replaces it, and deletes it with its package', async () => {
        await store.insertPackage(samplePackage('alpha'));
        expect(await store.getGate('alpha')).toBeUndefined();
        const record: GateRecord = {
          base: 'alpha',
          policy: { coolOffMs: 86_400_000, review: 'diff' },
          inheritsFrom: 'beta',
          trust: {
            maintainer: null,
            coMaintainers: ['bob'],
            submitter: 'carol',
            packagers: ['Dave <d@x.invalid>'],
          },
          accepted: 'a'.repeat(40),
          held: {
            revision: 'b'.repeat(40),
            state: '1.1-1',
            version: '1.1-1',
            baseRevision: 'a'.repeat(40),
            reasons: [
              {
                kind: 'cool-off',
                message: 'changed less than 1 d ago',
                until: new Date('2026-01-02T03:04:05.006Z'),
              },
              { kind: 'diff', message: 'build() changed' },
            ],
            detected: new Date('2026-01-01T00:00:00.123Z'),
            modified: new Date('2026-01-01T03:04:05.000Z'),
            trust: { maintainer: 'eve', coMaintainers: [], packagers: ['Eve <e@x.invalid>'] },
            files: [{ status: 'M', path: 'PKGBUILD' }],
          },
          approved: null,
          rejected: 'c'.repeat(40),
        };
        await store.putGate(record);
        expect(await store.getGate('alpha')).toEqual(record);
        await store.putGate({ ...record, held: null, approved: 'b'.repeat(40) });
        expect((await store.getGate('alpha'))?.held).toBeNull();
        expect((await store.getGate('alpha'))?.approved).toBe('b'.repeat(40));
        await store.insertPackage(samplePackage('aardvark'));
        await store.putGate(emptyGateRecord('aardvark'));
        expect((await store.listGates()).map((gate) => gate.base)).toEqual(['aardvark', 'alpha']);
        expect(await store.listGates({ heldOnly: true })).toEqual([]);
        await store.putGate(record);
        expect(await store.listGates({ heldOnly: true })).toEqual([record]);
        expect((await store.listGates({ heldOnly: false })).map((gate) => gate.base)).toEqual([
          'aardvark',
          'alpha',
        ]);
        await store.deletePackage('alpha');
        expect(await store.getGate('alpha')).toBeUndefined();
        await expectError(store.putGate(emptyGateRecord('nope')), 'NotFoundError');
      });
    });

    describe('builds', () => {
      beforeEach(async () => {
        await store.insertPackage(samplePackage('alpha'));
        await store.insertPackage(samplePackage('beta'));
      });

      it('round-trips a build with every field set', async () => {
        const stats: BuildStats = {
          memoryPeak: 17_179_869_184,
          cpuUser: 9_007_199_254_740_991,
          cpuSystem: 0,
          ioRead: 4_294_967_297,
          ioWritten: 1,
        };
        const build = sampleBuild('alpha', new Date(Date.UTC(2024, 1, 29, 23, 59, 59, 999)), {
          ended: new Date(Date.UTC(2024, 2, 1, 0, 0, 1, 1)),
          state: { state: 'fatal', info: [`could not find .SRCINFO ${UNICODE}`, 'publish'] },
          reason: 'webhook',
          version: `1.2.3.r45.g${UNICODE}`,
          runSuccess: true,
          runStarted: new Date(Date.UTC(2024, 2, 1, 0, 0, 0, 0)),
          runEnded: new Date(Date.UTC(2024, 2, 1, 0, 0, 0, 500)),
          stats,
          arch: 'aarch64',
          engine: 'pi',
        });
        await store.insertBuild(build);
        expect(await store.listBuilds('alpha')).toEqual([build]);
        expect(await store.getBuild('alpha', build.started)).toEqual(build);
      });

      it('round-trips a build with nulls', async () => {
        const build = sampleBuild('alpha', at(0), { runSuccess: false, reason: 'unknown' });
        await store.insertBuild(build);
        expect(await store.getBuild('alpha', at(0))).toEqual(build);
        const nulls = sampleBuild('alpha', at(1));
        await store.insertBuild(nulls);
        expect(await store.getBuild('alpha', at(1))).toEqual(nulls);
      });

      it('keeps the architecture of each build; one recorded without reads back without', async () => {
        await store.insertBuild(sampleBuild('alpha', at(0)));
        await store.insertBuild(sampleBuild('alpha', at(1), { arch: 'x86_64' }));
        await store.insertBuild(sampleBuild('alpha', at(2), { arch: 'aarch64' }));
        await store.updateBuild('alpha', at(2), { state: { state: 'success' } });
        const builds = await store.listBuilds('alpha');
        expect(builds.map((build) => build.arch)).toEqual(['aarch64', 'x86_64', undefined]);
        expect('arch' in builds[2]!).toBe(false);
        // the package's latest build is its newest of any architecture
        expect((await store.getLatestBuild('alpha'))?.arch).toBe('aarch64');
        expect((await store.listLatestBuilds()).map((build) => build.arch)).toEqual(['aarch64']);
        expect((await store.listRecentBuilds(10)).map((build) => build.arch)).toEqual([
          'aarch64',
          'x86_64',
          undefined,
        ]);
      });

      it('keeps the engine a build ran on, set when its run ended; one without reads back without', async () => {
        await store.insertBuild(sampleBuild('alpha', at(0)));
        await store.insertBuild(sampleBuild('alpha', at(1), { arch: 'aarch64' }));
        await store.insertBuild(sampleBuild('alpha', at(2), { engine: 'big' }));
        await store.updateBuild('alpha', at(1), { runSuccess: true, engine: 'pi' });
        // a later change without it keeps it
        await store.updateBuild('alpha', at(1), { state: { state: 'success' } });
        const builds = await store.listBuilds('alpha');
        expect(builds.map((build) => [build.engine, build.arch])).toEqual([
          ['big', undefined],
          ['pi', 'aarch64'],
          [undefined, undefined],
        ]);
        expect('engine' in builds[2]!).toBe(false);
        expect((await store.getBuild('alpha', at(1)))?.engine).toBe('pi');
        expect((await store.listRecentBuilds(10)).map((build) => build.engine)).toEqual([
          'big',
          'pi',
          undefined,
        ]);
      });

      it('lists the recent builds of one package, paged by start time', async () => {
        for (const [base, minute] of [
          ['alpha', 1],
          ['beta', 2],
          ['alpha', 3],
          ['beta', 4],
          ['alpha', 5],
        ] as const) {
          await store.insertBuild(sampleBuild(base, at(minute), { version: `${base}${minute}` }));
        }
        const versions = (builds: BuildRecord[]) => builds.map((build) => build.version);
        expect(versions(await store.listRecentBuilds(10, undefined, 'alpha'))).toEqual([
          'alpha5',
          'alpha3',
          'alpha1',
        ]);
        expect(versions(await store.listRecentBuilds(1, at(5), 'alpha'))).toEqual(['alpha3']);
        expect(versions(await store.listRecentBuilds(10, at(4), 'beta'))).toEqual(['beta2']);
        expect(await store.listRecentBuilds(10, undefined, 'nothing')).toEqual([]);
      });

      it('round-trips partial stats, and stats without any value as null', async () => {
        const partial: BuildStats = {
          memoryPeak: null,
          cpuUser: 12,
          cpuSystem: null,
          ioRead: null,
          ioWritten: 0,
        };
        await store.insertBuild(sampleBuild('alpha', at(0), { stats: partial }));
        expect((await store.getBuild('alpha', at(0)))?.stats).toEqual(partial);
        const empty: BuildStats = {
          memoryPeak: null,
          cpuUser: null,
          cpuSystem: null,
          ioRead: null,
          ioWritten: null,
        };
        await store.insertBuild(sampleBuild('alpha', at(1), { stats: empty }));
        expect((await store.getBuild('alpha', at(1)))?.stats).toBeNull();
      });

      it('round-trips every state and reason, inserted and updated', async () => {
        const reasons = ['webhook', 'manual', 'schedule', 'initial', 'unknown'] as const;
        for (const [i, state] of STATES.entries()) {
          const reason = reasons[i % reasons.length]!;
          await store.insertBuild(sampleBuild('alpha', at(i), { state, reason }));
          expect((await store.getBuild('alpha', at(i)))?.state, JSON.stringify(state)).toEqual(state);
          expect((await store.getBuild('alpha', at(i)))?.reason).toBe(reason);
        }
        await store.insertBuild(sampleBuild('beta', at(0)));
        for (const state of [...STATES, ...[...STATES].reverse()]) {
          await store.updateBuild('beta', at(0), { state });
          expect((await store.getBuild('beta', at(0)))?.state, JSON.stringify(state)).toEqual(state);
        }
      });

      it('insertBuild rejects an unknown package (NotFoundError) and a taken start time (ConflictError)', async () => {
        await expectError(store.insertBuild(sampleBuild('nope', at(0))), 'NotFoundError');
        const first = sampleBuild('alpha', at(0), { reason: 'schedule' });
        await store.insertBuild(first);
        await expectError(
          store.insertBuild(sampleBuild('alpha', at(0), { reason: 'manual' })),
          'ConflictError',
        );
        expect(await store.listBuilds('alpha')).toEqual([first]);
        // the same start time in another package, or one millisecond later, is another build
        await store.insertBuild(sampleBuild('beta', at(0)));
        await store.insertBuild(sampleBuild('alpha', at(1)));
        expect(await store.countBuilds('alpha')).toBe(2);
        expect(await store.countBuilds('nope')).toBe(0);
      });

      it('updateBuild changes only the given fields of that one build', async () => {
        const original = sampleBuild('alpha', at(0));
        await store.insertBuild(original);
        await store.insertBuild(sampleBuild('alpha', at(1)));
        await store.insertBuild(sampleBuild('beta', at(0)));
        let expected = original;
        const stats: BuildStats = { memoryPeak: 1, cpuUser: 2, cpuSystem: 3, ioRead: 4, ioWritten: 5 };
        const steps: Partial<BuildRecord>[] = [
          { state: { state: 'running', info: 'build' } },
          { runStarted: at(10) },
          { runEnded: at(20), runSuccess: true },
          { state: { state: 'running', info: 'publish' }, stats },
          { version: '2.0' },
          { state: { state: 'success' }, ended: at(30) },
          { reason: 'initial' },
          { stats: null, runSuccess: null, runStarted: null, runEnded: null, version: null, ended: null },
        ];
        for (const changes of steps) {
          await store.updateBuild('alpha', at(0), changes);
          expected = { ...expected, ...changes };
          expect(await store.getBuild('alpha', at(0)), JSON.stringify(changes)).toEqual(expected);
        }
        await store.updateBuild('alpha', at(0), {});
        expect(await store.getBuild('alpha', at(0))).toEqual(expected);
        expect(await store.getBuild('alpha', at(1))).toEqual(sampleBuild('alpha', at(1)));
        expect(await store.getBuild('beta', at(0))).toEqual(sampleBuild('beta', at(0)));
      });

      it('updateBuild of an unknown build rejects with NotFoundError', async () => {
        await store.insertBuild(sampleBuild('alpha', at(0)));
        await expectError(store.updateBuild('alpha', at(1), { version: '1' }), 'NotFoundError');
        await expectError(store.updateBuild('beta', at(0), { version: '1' }), 'NotFoundError');
        await expectError(store.updateBuild('nope', at(0), {}), 'NotFoundError');
        expect((await store.getBuild('alpha', at(0)))?.version).toBeNull();
      });

      it('lists builds newest first, with a limit', async () => {
        const offsets = [5, 0, 3_600_000, 1, 86_400_000 * 400, 2, -86_400_000 * 365 * 30];
        for (const offset of offsets) await store.insertBuild(sampleBuild('alpha', at(offset)));
        await store.insertBuild(sampleBuild('beta', at(7)));
        const newestFirst = [...offsets].sort((a, b) => b - a);
        const started = (builds: BuildRecord[]) => builds.map((build) => build.started.getTime() - T0);
        expect(started(await store.listBuilds('alpha'))).toEqual(newestFirst);
        expect(started(await store.listBuilds('alpha', 3))).toEqual(newestFirst.slice(0, 3));
        expect(started(await store.listBuilds('alpha', 1))).toEqual(newestFirst.slice(0, 1));
        expect(await store.listBuilds('alpha', 0)).toEqual([]);
        expect(started(await store.listBuilds('alpha', 100))).toEqual(newestFirst);
        expect(started(await store.listBuilds('beta'))).toEqual([7]);
        expect(await store.listBuilds('nope', 5)).toEqual([]);
        await expectError(store.listBuilds('alpha', -1), 'InputError');
        await expectError(store.listBuilds('alpha', 1.5), 'InputError');
      });

      it('orders builds by time across years, days and milliseconds', async () => {
        const times = [
          new Date(Date.UTC(1970, 0, 1, 0, 0, 0, 0)),
          new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 999)),
          new Date(Date.UTC(2000, 0, 1, 0, 0, 0, 0)),
          new Date(Date.UTC(2024, 8, 9, 10, 11, 12, 13)),
          new Date(Date.UTC(2024, 8, 9, 10, 11, 12, 130)),
          new Date(Date.UTC(2024, 8, 10, 0, 0, 0, 0)),
          new Date(Date.UTC(2100, 0, 1, 0, 0, 0, 0)),
        ];
        for (const time of [...times].reverse()) await store.insertBuild(sampleBuild('alpha', time));
        expect((await store.listBuilds('alpha')).map((build) => build.started)).toEqual([...times].reverse());
        for (const [index, time] of times.entries()) {
          expect((await store.getBuildByIndex('alpha', index))?.started).toEqual(time);
          expect((await store.getBuild('alpha', time))?.started).toEqual(time);
        }
      });

      it('finds the latest build, the n-th from the oldest, and counts them', async () => {
        expect(await store.getLatestBuild('alpha')).toBeUndefined();
        expect(await store.getBuildByIndex('alpha', 0)).toBeUndefined();
        for (const offset of [20, 0, 10, 30]) {
          await store.insertBuild(sampleBuild('alpha', at(offset), { version: String(offset) }));
        }
        await store.insertBuild(sampleBuild('beta', at(100)));
        expect((await store.getLatestBuild('alpha'))?.version).toBe('30');
        expect(await store.countBuilds('alpha')).toBe(4);
        expect(await store.countBuilds('beta')).toBe(1);
        const ids = await Promise.all([0, 1, 2, 3, 4, 1000].map((n) => store.getBuildByIndex('alpha', n)));
        expect(ids.map((build) => build?.version)).toEqual(['0', '10', '20', '30', undefined, undefined]);
        expect(await store.getLatestBuild('nope')).toBeUndefined();
        expect(await store.getBuildByIndex('nope', 0)).toBeUndefined();
        await expectError(store.getBuildByIndex('alpha', -1), 'InputError');
        await expectError(store.getBuildByIndex('alpha', 0.5), 'InputError');
        await expectError(store.getBuildByIndex('alpha', Number.NaN), 'InputError');
      });

      it('finds a build by its exact start time, as a Date or an RFC 3339 string', async () => {
        const started = new Date('2024-05-01T12:34:56.789Z');
        await store.insertBuild(sampleBuild('alpha', started, { version: 'x' }));
        await store.insertBuild(
          sampleBuild('alpha', new Date('2024-05-01T12:34:56.000Z'), { version: 'whole' }),
        );
        const found = async (time: Date | string) => (await store.getBuild('alpha', time))?.version;
        expect(await found(started)).toBe('x');
        expect(await found(new Date(started.getTime()))).toBe('x');
        expect(await found('2024-05-01T12:34:56.789Z')).toBe('x');
        expect(await found('2024-05-01T12:34:56.789000000Z')).toBe('x');
        expect(await found('2024-05-01t12:34:56.789z')).toBe('x');
        expect(await found('2024-05-01 12:34:56.789Z')).toBe('x');
        expect(await found('2024-05-01T14:34:56.789+02:00')).toBe('x');
        expect(await found('2024-05-01T07:04:56.789-05:30')).toBe('x');
        expect(await found('2024-05-01T12:34:56.78900+00:00')).toBe('x');
        // full precision: more digits must match too
        expect(await found('2024-05-01T12:34:56.789000001Z')).toBeUndefined();
        expect(await found('2024-05-01T12:34:56.7891Z')).toBeUndefined();
        expect(await found('2024-05-01T12:34:56.78Z')).toBeUndefined();
        expect(await found(new Date(started.getTime() + 1))).toBeUndefined();
        expect(await found('2024-05-01T12:34:56Z')).toBe('whole');
        expect(await found('2024-05-01T12:34:56.0Z')).toBe('whole');
        expect(await store.getBuild('beta', started)).toBeUndefined();
        for (const bad of [
          'latest',
          '7',
          '',
          '2024-05-01',
          '2024-05-01T12:34:56',
          '2024-13-01T00:00:00Z',
          'x',
        ]) {
          await expectError(store.getBuild('alpha', bad), 'InputError');
        }
      });

      it('lists the newest build of every package that has one', async () => {
        await store.insertPackage(samplePackage('gamma'));
        await store.insertBuild(sampleBuild('beta', at(5), { version: 'b5' }));
        await store.insertBuild(sampleBuild('beta', at(50), { version: 'b50' }));
        await store.insertBuild(sampleBuild('alpha', at(60), { version: 'a60' }));
        await store.insertBuild(sampleBuild('alpha', at(6), { version: 'a6' }));
        await store.insertBuild(sampleBuild('beta', at(1), { version: 'b1' }));
        const latest = await store.listLatestBuilds();
        expect(latest.map((build) => [build.package, build.version])).toEqual([
          ['alpha', 'a60'],
          ['beta', 'b50'],
        ]);
      });

      it('counts the newest builds of the packages by state', async () => {
        await store.insertPackage(samplePackage('gamma'));
        await store.insertPackage(samplePackage('delta'));
        await store.insertPackage(samplePackage('never'));
        await store.insertBuild(sampleBuild('alpha', at(1), { state: { state: 'failure' } }));
        await store.insertBuild(sampleBuild('alpha', at(2), { state: { state: 'success' } }));
        await store.insertBuild(sampleBuild('beta', at(3), { state: { state: 'success' } }));
        await store.insertBuild(sampleBuild('beta', at(1), { state: { state: 'failure' } }));
        await store.insertBuild(sampleBuild('gamma', at(0), { state: { state: 'success' } }));
        await store.insertBuild(sampleBuild('gamma', at(9), { state: { state: 'running', info: 'build' } }));
        await store.insertBuild(
          sampleBuild('delta', at(4), { state: { state: 'fatal', info: ['x', 'build'] } }),
        );
        expect(await store.countLatestBuilds()).toEqual({ success: 2, running: 1, fatal: 1 });
        await store.deletePackage('alpha');
        expect(await store.countLatestBuilds()).toEqual({ success: 1, running: 1, fatal: 1 });
      });

      it('lists the newest builds of all packages together, newest first, a page at a time', async () => {
        await store.insertBuild(sampleBuild('beta', at(5), { version: 'b5' }));
        await store.insertBuild(sampleBuild('alpha', at(60), { version: 'a60' }));
        await store.insertBuild(sampleBuild('alpha', at(6), { version: 'a6' }));
        await store.insertBuild(sampleBuild('beta', at(60), { version: 'b60' }));
        await store.insertBuild(sampleBuild('beta', at(1), { version: 'b1' }));
        const versions = (builds: BuildRecord[]) => builds.map((build) => build.version);
        expect(versions(await store.listRecentBuilds(10))).toEqual(['a60', 'b60', 'a6', 'b5', 'b1']);
        expect(versions(await store.listRecentBuilds(3))).toEqual(['a60', 'b60', 'a6']);
        expect(versions(await store.listRecentBuilds(2, at(6)))).toEqual(['b5', 'b1']);
        expect(await store.listRecentBuilds(0)).toEqual([]);
        await expectError(store.listRecentBuilds(-1), 'InputError');
      });

      it('lists unfinished builds of all packages, oldest first', async () => {
        await store.insertBuild(sampleBuild('alpha', at(0), { state: { state: 'success' } }));
        await store.insertBuild(
          sampleBuild('alpha', at(3), { state: { state: 'running', info: 'publish' } }),
        );
        await store.insertBuild(sampleBuild('beta', at(1), { state: { state: 'pending' } }));
        await store.insertBuild(
          sampleBuild('beta', at(2), { state: { state: 'fatal', info: ['x', 'build'] } }),
        );
        await store.insertBuild(sampleBuild('beta', at(4), { state: { state: 'cancelled', info: 'y' } }));
        await store.insertBuild(sampleBuild('beta', at(5), { state: { state: 'failure' } }));
        await store.insertBuild(sampleBuild('alpha', at(1), { state: { state: 'running', info: 'build' } }));
        const unfinished = await store.listUnfinishedBuilds();
        expect(
          unfinished.map((build) => [build.package, build.started.getTime() - T0, build.state.state]),
        ).toEqual([
          ['alpha', 1, 'running'],
          ['beta', 1, 'pending'],
          ['alpha', 3, 'running'],
        ]);
        // start-up clean-up as the orchestrator does it (docs/compatibility.md#build-states)
        await store.transaction(async (tx) => {
          for (const build of await tx.listUnfinishedBuilds()) {
            const progress = build.state.state === 'running' ? build.state.info : 'resolve';
            await tx.updateBuild(build.package, build.started, {
              state: { state: 'fatal', info: ['serene was restarted', progress] },
              ended: build.started,
            });
          }
        });
        expect(await store.listUnfinishedBuilds()).toEqual([]);
        expect(await store.getBuild('alpha', at(3))).toMatchObject({
          state: { state: 'fatal', info: ['serene was restarted', 'publish'] },
          ended: at(3),
        });
        expect((await store.getBuild('beta', at(1)))?.state).toEqual({
          state: 'fatal',
          info: ['serene was restarted', 'resolve'],
        });
      });
    });

    describe('logs', () => {
      beforeEach(async () => {
        await store.insertPackage(samplePackage('alpha'));
        await store.insertBuild(sampleBuild('alpha', at(0)));
        await store.insertBuild(sampleBuild('alpha', at(1)));
      });

      it('has no log until something is appended; appends concatenate in order', async () => {
        expect(await store.readLog('alpha', at(0))).toBeUndefined();
        await store.appendLog('alpha', at(0), 'one\n');
        expect(await store.readLog('alpha', at(0))).toBe('one\n');
        await store.appendLog('alpha', at(0), 'two');
        await store.appendLog('alpha', at(0), ' and a half\n');
        expect(await store.readLog('alpha', at(0))).toBe('one\ntwo and a half\n');
        expect(await store.readLog('alpha', at(1))).toBeUndefined();
        expect(await store.readLog('alpha', '2024-05-01T12:00:00Z')).toBe('one\ntwo and a half\n');
        expect(await store.readLog('alpha', '2024-05-01T12:00:00.000000001Z')).toBeUndefined();
        expect(await store.readLog('nope', at(0))).toBeUndefined();
        await expectError(store.readLog('alpha', 'not a time'), 'InputError');
      });

      it('an empty chunk creates an empty log', async () => {
        await store.appendLog('alpha', at(1), '');
        expect(await store.readLog('alpha', at(1))).toBe('');
        await store.appendLog('alpha', at(1), '');
        await store.appendLog('alpha', at(1), 'x');
        expect(await store.readLog('alpha', at(1))).toBe('x');
      });

      it('round-trips unicode, control characters and NUL exactly', async () => {
        const chunks = [
          UNICODE,
          '\u0000nul\u0000',
          '\r\n\r\n',
          '\u001b[1;32m==>\u001b[0m Making package\n',
          '\u{10FFFF}\u{1F600}\uFEFF',
          '日本語のログ',
          'x'.repeat(1000),
          '\u0007\u0008\u000b\u000c\u007f\u0080\u009f',
        ];
        for (const chunk of chunks) await store.appendLog('alpha', at(0), chunk);
        expect(await store.readLog('alpha', at(0))).toBe(chunks.join(''));
      });

      it('keeps huge logs, in many chunks and in one', async () => {
        const chunk = `${'0123456789abcdef'.repeat(4095)}é\n`; // 64 KiB with a multibyte character
        const count = 256; // 16 MiB
        for (let i = 0; i < count; i++) await store.appendLog('alpha', at(0), chunk);
        const log = await store.readLog('alpha', at(0));
        expect(log?.length).toBe(chunk.length * count);
        expect(sha256(log ?? '')).toBe(sha256(chunk.repeat(count)));
        const single = `${'ä'.repeat(4 * 1024 * 1024)}end`; // one chunk of 8 MiB of UTF-8
        await store.appendLog('alpha', at(1), single);
        const read = await store.readLog('alpha', at(1));
        expect(read?.length).toBe(single.length);
        expect(sha256(read ?? '')).toBe(sha256(single));
      });

      it('rejects appends to an unknown build with NotFoundError', async () => {
        await expectError(store.appendLog('alpha', at(2), 'x'), 'NotFoundError');
        await expectError(store.appendLog('nope', at(0), 'x'), 'NotFoundError');
        expect(await store.readLog('alpha', at(2))).toBeUndefined();
        // a failed append does not stop the queue of its build
        const [failed, ok] = await Promise.allSettled([
          store.appendLog('nope', at(0), 'x'),
          store.appendLog('alpha', at(0), 'fine'),
        ]);
        expect(failed.status).toBe('rejected');
        expect(ok.status).toBe('fulfilled');
        expect(await store.readLog('alpha', at(0))).toBe('fine');
      });

      it('applies appends to one build in call order without awaiting each', async () => {
        const chunks = Array.from({ length: 300 }, (_, i) => `line ${i}\n`);
        await Promise.all(chunks.map((chunk) => store.appendLog('alpha', at(0), chunk)));
        expect(await store.readLog('alpha', at(0))).toBe(chunks.join(''));
      });

      it('keeps concurrent appends to logs of different builds apart', async () => {
        await store.insertPackage(samplePackage('beta'));
        const builds: [string, Date][] = [];
        for (let i = 0; i < 4; i++) {
          await store.insertBuild(sampleBuild('beta', at(i)));
          builds.push(['beta', at(i)]);
        }
        builds.push(['alpha', at(0)], ['alpha', at(1)]);
        const expected = builds.map(([base, started]) =>
          Array.from({ length: 60 }, (_, i) => `${base}@${started.getTime() - T0}:${i} ${UNICODE}\n`),
        );
        const appends: Promise<void>[] = [];
        for (let i = 0; i < 60; i++) {
          for (const [index, [base, started]] of builds.entries()) {
            appends.push(store.appendLog(base, started, expected[index]![i]!));
          }
        }
        // reads in between see a prefix of each log
        const midway = await store.readLog('beta', at(0));
        await Promise.all(appends);
        expect(expected[0]!.join('').startsWith(midway ?? '')).toBe(true);
        for (const [index, [base, started]] of builds.entries()) {
          expect(await store.readLog(base, started)).toBe(expected[index]!.join(''));
        }
      });

      it('is readable while the build runs, and after it ended', async () => {
        await store.updateBuild('alpha', at(0), { state: { state: 'running', info: 'build' } });
        await store.appendLog('alpha', at(0), 'compiling\n');
        expect(await store.readLog('alpha', at(0))).toBe('compiling\n');
        await store.appendLog('alpha', at(0), 'done\n');
        await store.updateBuild('alpha', at(0), { state: { state: 'success' }, ended: at(9) });
        expect(await store.readLog('alpha', at(0))).toBe('compiling\ndone\n');
      });
    });

    describe('retention', () => {
      const DAY = 86_400_000;

      beforeEach(async () => {
        for (const base of ['alpha', 'beta', 'gamma']) await store.insertPackage(samplePackage(base));
      });

      it('deletes finished builds started before the cutoff with their logs, keeping each latest', async () => {
        // alpha: four old finished builds and a new one
        const alpha = [0, 1, 2, 3].map((day) => at(day * DAY));
        for (const started of alpha) {
          await store.insertBuild(sampleBuild('alpha', started, { state: { state: 'success' } }));
          await store.appendLog('alpha', started, `log ${started.toISOString()}`);
        }
        await store.insertBuild(sampleBuild('alpha', at(40 * DAY), { state: { state: 'failure' } }));
        await store.appendLog('alpha', at(40 * DAY), 'newest');
        // beta: only old builds, the newest of which is kept
        await store.insertBuild(sampleBuild('beta', at(0), { state: { state: 'cancelled', info: 'x' } }));
        await store.insertBuild(
          sampleBuild('beta', at(DAY), { state: { state: 'fatal', info: ['y', 'build'] } }),
        );
        await store.appendLog('beta', at(DAY), 'beta latest');
        // gamma: an old build still running and an old pending one are kept, a finished one is not
        await store.insertBuild(sampleBuild('gamma', at(0), { state: { state: 'running', info: 'build' } }));
        await store.insertBuild(sampleBuild('gamma', at(1), { state: { state: 'pending' } }));
        await store.insertBuild(sampleBuild('gamma', at(2), { state: { state: 'success' } }));
        await store.insertBuild(sampleBuild('gamma', at(3 * DAY), { state: { state: 'success' } }));

        const cutoff = at(2 * DAY);
        expect(await store.pruneBuilds(cutoff)).toBe(2 + 1 + 1);
        const times = async (base: string) =>
          (await store.listBuilds(base)).map((build) => (build.started.getTime() - T0) / DAY);
        expect(await times('alpha')).toEqual([40, 3, 2]);
        expect(await times('beta')).toEqual([1]);
        expect(await times('gamma')).toEqual([3, 1 / DAY, 0]);
        expect(await store.readLog('alpha', alpha[0]!)).toBeUndefined();
        expect(await store.readLog('alpha', alpha[1]!)).toBeUndefined();
        expect(await store.readLog('alpha', alpha[2]!)).toBe(`log ${alpha[2]!.toISOString()}`);
        expect(await store.readLog('alpha', at(40 * DAY))).toBe('newest');
        expect(await store.readLog('beta', at(DAY))).toBe('beta latest');
        // build ids count from the oldest remaining build
        expect((await store.getBuildByIndex('alpha', 0))?.started).toEqual(alpha[2]);
        expect(await store.pruneBuilds(cutoff)).toBe(0);
      });

      it('keeps a build started exactly at the cutoff, and everything when nothing is older', async () => {
        await store.insertBuild(sampleBuild('alpha', at(0), { state: { state: 'success' } }));
        await store.insertBuild(sampleBuild('alpha', at(DAY), { state: { state: 'success' } }));
        expect(await store.pruneBuilds(at(0))).toBe(0);
        expect(await store.pruneBuilds(new Date(0))).toBe(0);
        expect(await store.countBuilds('alpha')).toBe(2);
        expect(await store.pruneBuilds(at(1))).toBe(1);
        expect(await store.countBuilds('alpha')).toBe(1);
      });

      it('keeps the only build of a package however old', async () => {
        await store.insertBuild(
          sampleBuild('alpha', new Date(Date.UTC(1990, 0, 1)), { state: { state: 'success' } }),
        );
        expect(await store.pruneBuilds(at(365 * DAY))).toBe(0);
        expect(await store.countBuilds('alpha')).toBe(1);
      });
    });

    describe('transactions', () => {
      it('commits the work and resolves with its result', async () => {
        const result = await store.transaction(async (tx) => {
          await tx.insertPackage(samplePackage('alpha'));
          await tx.insertBuild(sampleBuild('alpha', at(0)));
          await tx.appendLog('alpha', at(0), 'in tx');
          expect(await tx.getPackage('alpha')).toEqual(samplePackage('alpha'));
          expect(await tx.readLog('alpha', at(0))).toBe('in tx');
          return 42;
        });
        expect(result).toBe(42);
        expect(await store.getPackage('alpha')).toEqual(samplePackage('alpha'));
        expect(await store.readLog('alpha', at(0))).toBe('in tx');
      });

      it('rolls everything back when the work throws, and passes the error on', async () => {
        await store.insertPackage(samplePackage('kept', { schedule: 'before' }));
        await store.insertBuild(sampleBuild('kept', at(0)));
        await store.appendLog('kept', at(0), 'before');
        class Boom extends Error {}
        const error = await errorOf(
          store.transaction(async (tx) => {
            await tx.insertPackage(samplePackage('alpha'));
            await tx.insertBuild(sampleBuild('alpha', at(0)));
            await tx.appendLog('alpha', at(0), 'gone');
            await tx.updatePackage('kept', { schedule: 'after' });
            await tx.updateBuild('kept', at(0), { state: { state: 'success' } });
            await tx.appendLog('kept', at(0), ' after');
            await tx.insertBuild(sampleBuild('kept', at(1)));
            expect(await tx.deletePackage('kept')).toBe(true);
            throw new Boom('boom');
          }),
        );
        expect(error).toBeInstanceOf(Boom);
        expect(error.message).toBe('boom');
        expect(await store.getPackage('alpha')).toBeUndefined();
        expect(await store.getPackage('kept')).toEqual(samplePackage('kept', { schedule: 'before' }));
        expect(await store.listBuilds('kept')).toEqual([sampleBuild('kept', at(0))]);
        expect(await store.readLog('kept', at(0))).toBe('before');
      });

      it('rolls back when a store error happens inside, and passes that error on', async () => {
        await store.insertPackage(samplePackage('alpha'));
        const error = await errorOf(
          store.transaction(async (tx) => {
            await tx.insertPackage(samplePackage('beta'));
            await tx.insertPackage(samplePackage('alpha'));
          }),
        );
        expect(error.name).toBe('ConflictError');
        expect((await store.listPackages()).map((record) => record.base)).toEqual(['alpha']);
      });

      it('commits appends the work did not await', async () => {
        await store.insertPackage(samplePackage('alpha'));
        await store.insertBuild(sampleBuild('alpha', at(0)));
        await store.transaction(async (tx) => {
          for (let i = 0; i < 20; i++) void tx.appendLog('alpha', at(0), `${i};`);
        });
        expect(await store.readLog('alpha', at(0))).toBe(
          Array.from({ length: 20 }, (_, i) => `${i};`).join(''),
        );
      });

      it('nests: an inner transaction that fails rolls back only its own part', async () => {
        await store.transaction(async (tx) => {
          await tx.insertPackage(samplePackage('outer'));
          const inner = await errorOf(
            tx.transaction(async (nested) => {
              await nested.insertPackage(samplePackage('inner'));
              throw new Error('inner');
            }),
          );
          expect(inner.message).toBe('inner');
          expect(await tx.getPackage('inner')).toBeUndefined();
          await tx.transaction(async (nested) => {
            await nested.insertPackage(samplePackage('inner-ok'));
          });
        });
        expect((await store.listPackages()).map((record) => record.base)).toEqual(['inner-ok', 'outer']);
      });

      it('runs concurrent transactions and plain operations without losing writes', async () => {
        await store.insertPackage(samplePackage('alpha'));
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            i % 2 === 0
              ? store.transaction(async (tx) => {
                  await tx.insertBuild(sampleBuild('alpha', at(i)));
                  await tx.updateBuild('alpha', at(i), { version: String(i) });
                  return i;
                })
              : store.insertBuild(sampleBuild('alpha', at(i), { version: String(i) })).then(() => i),
          ),
        );
        expect(results).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        expect((await store.listBuilds('alpha')).map((build) => build.version)).toEqual([
          '9',
          '8',
          '7',
          '6',
          '5',
          '4',
          '3',
          '2',
          '1',
          '0',
        ]);
      });

      it('does not let a rolled back transaction block later work', async () => {
        await expectError(
          store.transaction(async (tx) => {
            await tx.insertBuild(sampleBuild('nope', at(0)));
          }),
          'NotFoundError',
        );
        await store.insertPackage(samplePackage('alpha'));
        expect(await store.transaction(async (tx) => (await tx.listPackages()).length)).toBe(1);
      });
    });

    options.additionalTests?.({ store: () => store });
  });
}
