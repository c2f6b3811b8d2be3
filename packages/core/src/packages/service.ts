import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createPause } from '../concurrency.js';
import type { Publisher } from '../contracts/publisher.js';
import type { EngineStatus, Runner } from '../contracts/runner.js';
import type { Source, SourceFactory, SourceSpec } from '../contracts/source.js';
import {
  type BuildRecord,
  type BuildTime,
  MAKEPKG_FLAGS,
  type MakepkgFlag,
  type PackageChanges,
  type PackageRecord,
  packagePages,
  type Store,
} from '../contracts/store.js';
import {
  ConflictError,
  formatErrorChain,
  InputError,
  NotFoundError,
  NotRunningError,
  SereneError,
} from '../errors.js';
import type { GatePolicyView, HeldUpdateView, UpdateGate } from '../gate/gate.js';
import { parseCoolOff, parseReviewMode } from '../gate/policy.js';
import { createNoopLogger, type Logger } from '../logger.js';
import {
  BUILD_DEFAULTS,
  type BuildInFlight,
  type BuildOrchestrator,
  type RunSettings,
} from '../orchestration/orchestrator.js';
import { providersOf } from '../orchestration/resolve.js';
import { findSatisfier, type Provider, parseDependency } from '../pacman/depend.js';
import { packageNameProblem } from '../pacman/names.js';
import { dependsFor, parseSrcinfo, type Srcinfo, srcinfoNames } from '../pacman/srcinfo.js';

/** What the service needs of a scheduler (docs/compatibility.md#scheduling). */
export interface PackageScheduling {
  /** Puts a package on its schedule, moves it, or (undefined) takes it off. */
  reschedule(
    base: string,
    pkg: { enabled: boolean; schedule: string | null; devel: boolean } | undefined,
  ): void;
  /** The cron expression a package runs on: custom, else the devel or default schedule. */
  effectiveSchedule(pkg: { schedule: string | null; devel: boolean }): string;
  /** Throws `InputError` when a cron expression is not valid. */
  validate(expression: string): void;
}

/** Options of {@link PackageService}. */
export interface PackageServiceOptions {
  store: Store;
  sources: SourceFactory;
  orchestrator: BuildOrchestrator;
  publisher: Publisher;
  /** the repository of each architecture other than the primary (docs/engines.md#architectures) */
  publishers?: Readonly<Record<string, Publisher>> | undefined;
  runner: Runner;
  scheduling: PackageScheduling;
  /** the folder holding `sources/<pkgbase>` (the orchestrator's) */
  sourcesDir: string;
  /** the folder of the build log files (`logs/<pkgbase>/`), removed with their package */
  logsDir?: string | undefined;
  /** `ARCH` @default 'x86_64' */
  arch?: string;
  /** `SCHEDULING_DEFAULT`: `enabled` of new packages @default true */
  schedulingDefault?: boolean;
  /** packages of the sync databases, to tell which dependencies need the AUR */
  syncProviders?: () => Promise<readonly Provider[]>;
  /** the update gate (the orchestrator's): block lists at add, policy settings, review */
  gate?: UpdateGate;
  /**
   * `CONCURRENT_BUILDS` (the orchestrator's): the capacity shown for the one engine of a runner
   * without engines of its own @default 5
   */
  concurrentBuilds?: number | undefined;
  logger?: Logger;
}

/** A build in flight, with the engine it runs on. */
export interface QueuedBuild extends BuildInFlight {
  /** the engine running it; undefined while it waits for its turn or for a free engine */
  engine: string | undefined;
}

/** What a user asks to add (the original's `PackageAddRequest`). */
export interface AddRequest {
  source: SourceSpec;
  /** replace the source of an already added package with the same base */
  replace: boolean;
  /** dependency ordering of the initial build @default true */
  resolve?: boolean;
  /** start an initial build @default true */
  build?: boolean;
}

/** One setting change (the original's `PackageSettingsRequest`). */
export type SettingChange =
  | { key: 'clean' | 'private' | 'enabled' | 'dependency' | 'devel' | 'srcinfooverride'; value: boolean }
  | { key: 'schedule' | 'prepare'; value: string | null }
  | { key: 'flags'; value: MakepkgFlag[] }
  /** update gate (docs/update-gate.md); null: the server default (or the dependent's) applies again */
  | { key: 'cooloff'; value: string | null }
  | { key: 'trust'; value: boolean | null }
  | { key: 'review'; value: string | null };

/** The setting keys of the update gate. */
export const GATE_SETTING_KEYS = ['cooloff', 'trust', 'review'] as const;

/** An added package with what the API shows of it. */
export interface PackageView {
  record: PackageRecord;
  source: Source;
  /** the published .SRCINFO, parsed */
  srcinfo: Srcinfo | null;
  /** the effective cron expression */
  schedule: string;
}

/**
 * What a list of every package shows of one (`GET /package/list`): read without parsing the whole
 * `.SRCINFO` or restoring the source, which for thousands of packages is most of the time.
 */
export interface PackageSummary {
  record: PackageRecord;
  /** the members' names from the published .SRCINFO (none before the first publish) */
  members: string[];
  /** `pkgver` of the published .SRCINFO */
  version: string | null;
  devel: boolean;
  /** the newest build */
  latest: BuildRecord | undefined;
}

/** Error of an add whose dependencies cannot all be satisfied (the original answers 500). */
export class DependencyError extends SereneError {}

/**
 * The package operations of the API: add (with AUR dependencies), remove, settings, builds and
 * their lookups, as the original's handlers do them (docs/compatibility.md#endpoints).
 */
export class PackageService {
  private readonly store: Store;
  private readonly sources: SourceFactory;
  private readonly orchestrator: BuildOrchestrator;
  private readonly publisher: Publisher;
  private readonly publishers: Publisher[];
  private readonly runner: Runner;
  private readonly scheduling: PackageScheduling;
  private readonly sourcesDir: string;
  private readonly logsDir: string | undefined;
  private readonly arch: string;
  private readonly schedulingDefault: boolean;
  private readonly syncProviders: () => Promise<readonly Provider[]>;
  private readonly gate: UpdateGate | undefined;
  private readonly logger: Logger;
  private readonly concurrentBuilds: number;
  /** the state of the one engine of a runner without engines of its own, as last seen */
  private single: { state: EngineStatus['state']; since: Date } = { state: 'unknown', since: new Date() };
  private tempCounter = 0;

  constructor(options: PackageServiceOptions) {
    this.store = options.store;
    this.sources = options.sources;
    this.orchestrator = options.orchestrator;
    this.publisher = options.publisher;
    this.publishers = [options.publisher, ...Object.values(options.publishers ?? {})];
    this.runner = options.runner;
    this.scheduling = options.scheduling;
    this.sourcesDir = options.sourcesDir;
    this.logsDir = options.logsDir;
    this.arch = options.arch ?? 'x86_64';
    this.schedulingDefault = options.schedulingDefault ?? true;
    this.syncProviders = options.syncProviders ?? (async () => []);
    this.gate = options.gate;
    this.concurrentBuilds = options.concurrentBuilds ?? BUILD_DEFAULTS.concurrentBuilds;
    this.logger = options.logger ?? createNoopLogger();
  }

  // --- reading ------------------------------------------------------------------------------------

  /** Every added package with its newest build. */
  async list(): Promise<{ view: PackageView; latest: BuildRecord | undefined }[]> {
    const list: { view: PackageView; latest: BuildRecord | undefined }[] = [];
    // thousands of packages take a while to parse: other requests are answered in between
    const pause = createPause();
    for await (const page of this.pagesWithLatest()) {
      for (const { record, latest } of page) {
        await pause();
        list.push({ view: this.view(record), latest });
      }
    }
    return list;
  }

  /**
   * Every added package's {@link PackageSummary}, by base. Read a page of packages at a time, with
   * turns of the event loop in between: read whole, the table's rows were all mapped, and their
   * summaries made, in one turn, a stall of hundreds of milliseconds at 20,000 packages (issue 16,
   * docs/benchmarks.md).
   */
  async summaries(): Promise<PackageSummary[]> {
    const list: PackageSummary[] = [];
    for await (const page of this.summaryPages()) list.push(...page);
    return list;
  }

  /**
   * The {@link PackageSummary} of every package as {@link PackageService.summaries} gives them, a
   * page at a time: a reader that keeps less than the summaries (the package list keeps its JSON)
   * does not hold thousands of records at once.
   */
  async *summaryPages(): AsyncGenerator<PackageSummary[], void, undefined> {
    const pause = createPause();
    for await (const page of this.pagesWithLatest()) {
      const summaries: PackageSummary[] = [];
      for (const { record, latest } of page) {
        await pause();
        summaries.push(summaryOf(record, latest));
      }
      yield summaries;
    }
  }

  /** One package's {@link PackageSummary}; `NotFoundError` as {@link PackageService.get}. */
  async summary(base: string): Promise<PackageSummary> {
    const [record, latest] = await Promise.all([this.record(base), this.store.getLatestBuild(base)]);
    return summaryOf(record, latest);
  }

  /** How many packages are added. */
  count(): Promise<number> {
    return this.store.countPackages();
  }

  /** One package; `NotFoundError` as the original words it. */
  async get(base: string): Promise<PackageView> {
    return this.view(await this.record(base));
  }

  /** Builds of a package, newest first. */
  builds(base: string, count?: number): Promise<BuildRecord[]> {
    return this.store.listBuilds(base, count);
  }

  /**
   * One build by `latest`, a 0-based index from the oldest, or an exact RFC 3339 start time
   * (docs/compatibility.md#endpoints); `InputError` for anything else, `NotFoundError` when there is none.
   */
  async build(base: string, time: string): Promise<BuildRecord> {
    let build: BuildRecord | undefined;
    if (time === 'latest') build = await this.store.getLatestBuild(base);
    else if (/^\d+$/.test(time) && Number(time) <= 0xffffffff)
      build = await this.store.getBuildByIndex(base, Number(time));
    else if (isRfc3339(time)) build = await this.store.getBuild(base, time as BuildTime);
    else throw new InputError(`expected valid date, valid index number, or 'latest', not '${time}'`);
    if (!build) throw new NotFoundError('package not found or no build at this time');
    return build;
  }

  /** The log of one build; `NotFoundError` while it runs or when it never ran. */
  async logs(base: string, time: string): Promise<string> {
    const build = await this.build(base, time);
    const log = await this.store.readLog(base, build.started);
    if (log === undefined || build.state.state === 'pending' || build.state.state === 'running') {
      throw new NotFoundError('build does not have any logs');
    }
    return log;
  }

  /**
   * The engines that build packages, with their state and load: the runner's when it drives
   * several (docs/engines.md), else its one engine, named after the runner, of the server's
   * architecture, with `CONCURRENT_BUILDS` as its capacity and its state asked now (`ping`;
   * `unknown` for a runner that cannot be asked).
   */
  async engines(): Promise<EngineStatus[]> {
    if (this.runner.engines) return this.runner.engines();
    const builds = this.orchestrator
      .inFlight()
      .filter((build) => build.phase === 'running')
      .map((build) => build.base);
    const state = this.runner.ping ? ((await this.runner.ping()) ? 'up' : 'down') : 'unknown';
    // from `unknown` (the start) the engine is taken to have been in its first seen state since then
    if (state !== this.single.state) {
      this.single = { state, since: this.single.state === 'unknown' ? this.single.since : new Date() };
    }
    return [
      {
        name: this.runner.name,
        arch: this.arch,
        state,
        since: this.single.since,
        ...(state === 'down' ? { reason: 'it does not answer pings' } : {}),
        capacity: this.concurrentBuilds,
        running: builds.length,
        builds,
        labels: [],
      },
    ];
  }

  /** The builds queued and running now, oldest first, each with the engine it runs on. */
  queue(): QueuedBuild[] {
    const inFlight = this.orchestrator.inFlight();
    // an engine builds for one architecture: a package built for two at once runs on two engines
    const engineOf = new Map<string, string>();
    const key = (base: string, arch: string | undefined) => `${base}\0${arch ?? ''}`;
    if (this.runner.engines) {
      for (const engine of this.runner.engines())
        for (const base of engine.builds) {
          engineOf.set(key(base, engine.arch), engine.name);
          if (!engineOf.has(key(base, undefined))) engineOf.set(key(base, undefined), engine.name);
        }
    }
    return inFlight.map((build) => ({
      ...build,
      engine:
        build.phase !== 'running'
          ? undefined
          : this.runner.engines
            ? (engineOf.get(key(build.base, build.arch)) ?? engineOf.get(key(build.base, undefined)))
            : this.runner.name,
    }));
  }

  /**
   * The newest builds of every package together, newest first; `before` pages on (the `started`
   * of the last build of the previous page); with `base`, only that package's.
   */
  recentBuilds(limit: number, before?: Date, base?: string): Promise<BuildRecord[]> {
    return this.store.listRecentBuilds(limit, before, base);
  }

  /** The PKGBUILD of the published build. */
  async pkgbuild(base: string): Promise<string> {
    const record = await this.record(base);
    if (record.pkgbuild === null) {
      throw new NotFoundError('package was never built and has thus no used package build');
    }
    return record.pkgbuild;
  }

  // --- adding ---------------------------------------------------------------------------------------

  /**
   * Adds a package and the AUR packages it needs (docs/compatibility.md#endpoints, `POST /package/add`). Resolves with
   * the added or replaced packages, target first, as they are before any build.
   */
  async add(request: AddRequest): Promise<PackageView[]> {
    const target = await this.sources.create(request.source);
    const checkouts: { base: string; source: Source; dir: string; dependency: boolean }[] = [];
    const tmp = path.join(this.sourcesDir, 'tmp', `${process.hrtime.bigint()}-${this.tempCounter++}`);
    try {
      const targetDir = path.join(tmp, 'target');
      await target.initialize(targetDir);
      const srcinfo = parseSrcinfo(await target.srcinfo(targetDir));
      const base = srcinfo.base.pkgbase;
      checkSafeBase(base);
      const existing = await this.store.getPackage(base);
      if (existing && !request.replace) throw new InputError('package with the same base is already added');
      checkouts.push({ base, source: target, dir: targetDir, dependency: false });

      // dependencies: the sync databases, our published packages and the new one satisfy them,
      // the AUR provides the rest (docs/compatibility.md#endpoints, adding)
      const providers = [...(await this.syncProviders())];
      const pause = createPause();
      for await (const page of packagePages(this.store)) {
        for (const record of page) {
          await pause();
          if (record.srcinfo && record.base !== base)
            providers.push(...providersOf(parseSrcinfo(record.srcinfo)));
        }
      }
      providers.push(...providersOf(srcinfo));
      const isSatisfied = (dependency: string) =>
        findSatisfier(parseDependency(dependency), providers) !== undefined;
      const wanted = [...new Set(srcinfo.packages.flatMap((member) => dependsFor(member, this.arch)))];
      const plan = await this.sources.resolveAurDependencies(
        request.source.type === 'aur' ? { name: request.source.name } : { dependencies: wanted },
        { isSatisfied },
      );
      const missing = plan ? plan.missing : wanted.filter((dependency) => !isSatisfied(dependency));
      const members = new Set(srcinfo.packages.map((member) => member.pkgname));
      const reallyMissing = missing.filter(
        (dependency) => !members.has(parseDependency(dependency).name) && dependency !== base,
      );
      if (reallyMissing.length > 0) {
        throw new DependencyError(
          `failed to satisfy all dependencies for ${base}, missing are ${reallyMissing.join(', ')}`,
        );
      }
      for (const dependency of plan?.bases ?? []) {
        if (dependency === base || (await this.store.getPackage(dependency))) continue;
        checkSafeBase(dependency);
        const source = this.sources.createAur(dependency);
        const dir = path.join(tmp, `dep-${checkouts.length}`);
        await source.initialize(dir);
        checkouts.push({ base: dependency, source, dir, dependency: true });
      }

      // the block lists refuse the whole add before anything is saved
      if (this.gate) {
        for (const checkout of checkouts) {
          const text = await checkout.source.srcinfo(checkout.dir);
          await this.gate.checkAdd(checkout.base, checkout.source, checkout.dir, text);
        }
      }

      // move the checkouts into place and save the packages
      const added: PackageView[] = [];
      for (const checkout of checkouts) {
        const final = path.join(this.sourcesDir, checkout.base);
        // the previous sources stay until the new ones are in place (a rename takes no room)
        const superseded = `${checkout.dir}.superseded`;
        const replaced = await fs.rename(final, superseded).then(
          () => true,
          () => false,
        );
        await fs.rename(checkout.dir, final);
        if (replaced) await fs.rm(superseded, { recursive: true, force: true });
        const previous = checkout.dependency ? undefined : existing;
        const record: PackageRecord = previous
          ? { ...previous, source: checkout.source.toJSON() }
          : {
              base: checkout.base,
              added: new Date(),
              source: checkout.source.toJSON(),
              srcinfo: null,
              pkgbuild: null,
              enabled: this.schedulingDefault,
              clean: !checkout.source.devel,
              private: false,
              dependency: checkout.dependency,
              schedule: null,
              prepare: null,
              flags: [],
              builtState: 'init',
              failedState: null,
            };
        await this.store.putPackage(record);
        // a dependency inherits the update policy of the package it is added for
        await this.gate?.added(checkout.base, checkout.source, final, {
          inheritsFrom: checkout.dependency ? base : null,
        });
        added.push(this.view(record));
      }
      for (const view of added) this.reschedule(view.record);
      if (request.build ?? true) {
        await this.orchestrator.start(
          added.map((view) => view.record.base),
          { reason: 'initial', resolve: request.resolve ?? true, clean: true, force: false },
          { failIfLocked: true },
        );
      }
      return added;
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }

  // --- changing -------------------------------------------------------------------------------------

  /**
   * Removes a package: its running build, its runner state, its repository entries and files, its
   * source folder and its records (docs/compatibility.md#endpoints, `DELETE /package/{name}`). Beyond the original,
   * it also stops its build and takes it off the schedule.
   */
  async remove(base: string): Promise<void> {
    const record = await this.record(base);
    this.orchestrator.cancel(base);
    this.scheduling.reschedule(base, undefined);
    await this.runner.remove?.(base);
    const members = record.srcinfo
      ? parseSrcinfo(record.srcinfo).packages.map((member) => member.pkgname)
      : [];
    // from the repository of every architecture
    for (const publisher of this.publishers) {
      const published = new Set((await publisher.list()).map((entry) => entry.name));
      const toRemove = members.filter((name) => published.has(name));
      // with the base, the publisher also removes what it recorded for it (bases.json)
      await publisher.remove(toRemove, { base }).catch((error) =>
        this.logger.error('could not remove packages from the repository', {
          base,
          error: formatErrorChain(error),
        }),
      );
    }
    await fs.rm(path.join(this.sourcesDir, base), { recursive: true, force: true });
    if (this.logsDir !== undefined) {
      const dir = path.resolve(this.logsDir);
      const logs = path.resolve(dir, base);
      // a base is one path segment; anything else is not a folder of this package
      if (path.dirname(logs) === dir) {
        await fs.rm(logs, { recursive: true, force: true });
      }
    }
    await this.store.deletePackage(base);
  }

  /** Changes one setting (docs/compatibility.md#endpoints, `POST /package/{name}/set`). */
  async set(base: string, change: SettingChange): Promise<void> {
    const record = await this.record(base);
    let changes: PackageChanges;
    let refresh = false;
    switch (change.key) {
      case 'clean':
      case 'private':
      case 'enabled':
      case 'dependency':
        changes = { [change.key]: change.value };
        break;
      case 'schedule':
        if (change.value !== null) this.scheduling.validate(change.value);
        changes = { schedule: change.value };
        break;
      case 'prepare':
        changes = { prepare: change.value };
        break;
      case 'flags': {
        const unknown = change.value.filter((flag) => !(MAKEPKG_FLAGS as readonly string[]).includes(flag));
        if (unknown.length > 0) throw new InputError(`unknown makepkg flags: ${unknown.join(', ')}`);
        changes = { flags: [...new Set(change.value)] };
        break;
      }
      case 'cooloff':
      case 'trust':
      case 'review': {
        if (!this.gate)
          throw new InputError(`setting ${change.key} needs the update gate, which this server does not run`);
        if (change.key === 'cooloff') {
          await this.gate.setPolicy(base, {
            key: 'coolOffMs',
            value: change.value === null ? null : parseCoolOff(change.value),
          });
        } else if (change.key === 'trust') {
          await this.gate.setPolicy(base, { key: 'trust', value: change.value });
        } else {
          await this.gate.setPolicy(base, {
            key: 'review',
            value: change.value === null ? null : parseReviewMode(change.value),
          });
        }
        return;
      }
      case 'devel':
      case 'srcinfooverride': {
        const source = this.sources.restore(record.source);
        if (change.key === 'devel') source.devel = change.value;
        else source.srcinfoOverride = change.value;
        await source.update(path.join(this.sourcesDir, base));
        changes = { source: source.toJSON() };
        refresh = true;
        break;
      }
    }
    await this.store.updatePackage(base, changes);
    if (refresh || change.key === 'enabled' || change.key === 'schedule') {
      this.reschedule(await this.record(base));
    }
  }

  /** Starts a manual build session (docs/compatibility.md#endpoints, `POST /build`); every base must be added. */
  async startBuild(bases: readonly string[], settings: Omit<RunSettings, 'reason'>): Promise<void> {
    for (const base of bases) await this.record(base);
    if (bases.length === 0) return;
    await this.orchestrator.start(bases, { ...settings, reason: 'manual' }, { failIfLocked: true });
  }

  /** Builds every enabled package (docs/compatibility.md#endpoints, `POST /build/all`). */
  async startBuildAll(settings: Omit<RunSettings, 'reason'>): Promise<void> {
    const enabled: string[] = [];
    for await (const page of packagePages(this.store)) {
      for (const record of page) if (record.enabled) enabled.push(record.base);
    }
    if (enabled.length === 0) return;
    await this.orchestrator.start(enabled, { ...settings, reason: 'manual' }, { failIfLocked: true });
  }

  /** A webhook build: resolve, not clean, not forced (docs/compatibility.md#endpoints). */
  async startWebhookBuild(base: string): Promise<void> {
    await this.record(base);
    await this.orchestrator.start(
      [base],
      { reason: 'webhook', resolve: true, clean: false, force: false },
      {
        failIfLocked: true,
      },
    );
  }

  /**
   * Cancels the queued or running build of a package, recorded as cancelled by `by` (the name of
   * who asked). Resolves with the build as it was when cancelled.
   *
   * @throws NotFoundError for a package that is not added; NotRunningError when it has no build
   * queued or running
   */
  async cancel(base: string, by?: string): Promise<BuildInFlight> {
    await this.record(base);
    const build = this.orchestrator.buildInFlight(base);
    const message = by ? `build was cancelled by ${by}` : 'build was cancelled';
    if (!build || !this.orchestrator.cancel(base, message)) {
      throw new NotRunningError(`package ${base} has no build queued or running`);
    }
    this.logger.info('build cancelled', { base, by });
    return build;
  }

  // --- update gate ----------------------------------------------------------------------------------

  /** Every held update (docs/update-gate.md). */
  async heldUpdates(): Promise<HeldUpdateView[]> {
    return this.requireGate().list();
  }

  /** The held update of a package with the diff since its accepted revision. */
  async heldUpdate(base: string): Promise<HeldUpdateView & { diff: string }> {
    return this.requireGate().review(base, path.join(this.sourcesDir, base));
  }

  /** The update policy of a package. */
  async gatePolicy(base: string): Promise<GatePolicyView> {
    await this.record(base);
    return this.requireGate().policy(base);
  }

  /**
   * Approves the held update of a package at `revision` and starts a build of exactly that
   * revision; `ConflictError` while the package is in a session (nothing is approved then).
   */
  async approve(base: string, revision: string): Promise<string> {
    const gate = this.requireGate();
    if (this.orchestrator.isLocked(base)) {
      throw new ConflictError(`cannot approve now, ${base} is currently in a running build session`);
    }
    const approved = await gate.approve(base, revision);
    await this.orchestrator.start(
      [base],
      { reason: 'manual', resolve: true, clean: false, force: false },
      {
        failIfLocked: true,
      },
    );
    return approved;
  }

  /** Rejects the held update of a package at `revision`. */
  async reject(base: string, revision: string): Promise<string> {
    return this.requireGate().reject(base, revision);
  }

  private requireGate(): UpdateGate {
    if (!this.gate) throw new NotFoundError('this server does not run the update gate');
    return this.gate;
  }

  /** Puts every enabled package on its schedule (start-up). */
  async scheduleAll(): Promise<void> {
    for await (const page of packagePages(this.store)) for (const record of page) this.reschedule(record);
  }

  // --- helpers --------------------------------------------------------------------------------------

  /**
   * Every package with its newest build, a page at a time (`packagePages`): the newest builds of a
   * page are read for its range of bases, so neither table is read whole at once.
   */
  private async *pagesWithLatest(): AsyncGenerator<
    { record: PackageRecord; latest: BuildRecord | undefined }[],
    void,
    undefined
  > {
    let after: string | undefined;
    for await (const page of packagePages(this.store)) {
      const through = page[page.length - 1]!.base;
      // without a limit: a package added in the range meanwhile adds a build the page does not show
      const latest = await this.store.listLatestBuilds(
        after === undefined ? { through } : { after, through },
      );
      const byBase = new Map(latest.map((build) => [build.package, build]));
      yield page.map((record) => ({ record, latest: byBase.get(record.base) }));
      after = through;
    }
  }

  private async record(base: string): Promise<PackageRecord> {
    const record = await this.store.getPackage(base);
    if (!record) throw new NotFoundError(`package with base ${base} is not added`);
    return record;
  }

  private view(record: PackageRecord): PackageView {
    const source = this.sources.restore(record.source);
    return {
      record,
      source,
      srcinfo: record.srcinfo ? parseSrcinfo(record.srcinfo) : null,
      schedule: this.scheduling.effectiveSchedule({ schedule: record.schedule, devel: source.devel }),
    };
  }

  private reschedule(record: PackageRecord): void {
    const source = this.sources.restore(record.source);
    this.scheduling.reschedule(record.base, {
      enabled: record.enabled,
      schedule: record.schedule,
      devel: source.devel,
    });
  }
}

/** A package's {@link PackageSummary}: the names and version of its .SRCINFO, its devel flag as stored. */
function summaryOf(record: PackageRecord, latest: BuildRecord | undefined): PackageSummary {
  const names = record.srcinfo ? srcinfoNames(record.srcinfo) : undefined;
  return {
    record,
    members: names?.pkgnames ?? [],
    version: names?.pkgver ?? null,
    devel: record.source.devel === true,
    latest,
  };
}

/** A pkgbase becomes a folder name: refuse anything that could leave the sources folder. */
function checkSafeBase(base: string): void {
  if (packageNameProblem(base) !== undefined || base === 'tmp') {
    throw new InputError(`'${base}' is not a valid package base`);
  }
}

function isRfc3339(text: string): boolean {
  return /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(text);
}
