/**
 * The update gate (docs/update-gate.md): before an update of a package is built, its new revision is
 * checked against a policy (cool-off, maintainer trust, diff review, block lists). An update that
 * does not pass is held at its exact commit, with its reasons, until a reviewer approves it (then
 * that commit is built, never a newer one) or rejects it (then nothing is built until the package
 * moves on); the checkout stays at the last accepted revision meanwhile.
 */
import {
  emptyGateRecord,
  type GatePolicy,
  type GatePolicyOverrides,
  type GateRecord,
  type HeldUpdate,
  type HoldReason,
  type TrustRecord,
} from '../contracts/gate.js';
import type { Source } from '../contracts/source.js';
import type { Store } from '../contracts/store.js';
import { BlockedError, formatErrorChain, InputError, NotFoundError, StaleRevisionError } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';
import type { BuildEvents, EventBus } from '../orchestration/events.js';
import { parseSrcinfo } from '../pacman/srcinfo.js';
import { fullVersion } from '../sources/aur-source.js';
import type { Git } from '../sources/git.js';
import { effectivePolicy, formatCoolOff, OPEN_GATE_POLICY, policyHolds } from './policy.js';
import { isVersionBump, reviewChanges } from './review.js';

/** Options of {@link UpdateGate}. */
export interface UpdateGateOptions {
  store: Store;
  /** the git wrapper the sources use */
  git: Git;
  /** the server-wide policy (`GATE_COOL_OFF`, `GATE_TRUST`, `GATE_REVIEW`) @default nothing held */
  defaults?: GatePolicy;
  /** AUR accounts and packagers (`Name <email>`, a name or an email) whose updates are held (`GATE_BLOCKED_ACCOUNTS`) */
  blockedAccounts?: readonly string[];
  /** package bases and pkgnames that are not added and whose updates are held (`GATE_BLOCKED_PACKAGES`) */
  blockedPackages?: readonly string[];
  /** where `gate` events go (live logs, metrics) */
  bus?: EventBus<BuildEvents>;
  /** the clock @default () => new Date() */
  now?: () => Date;
  logger?: Logger;
}

/** What the gate decided for one update. */
export type GateDecision =
  /** nothing holds the update: build it */
  | { action: 'build' }
  /** the update is held; `restored`: the checkout is back at the accepted revision (else nothing may build it) */
  | { action: 'hold'; held: HeldUpdate; restored: boolean }
  /** the update is the revision a reviewer rejected (the checkout was put back) */
  | { action: 'skip'; restored: boolean };

/** The policy of a package, as the API shows it. */
export interface GatePolicyView {
  /** what applies */
  effective: GatePolicy;
  /** the package's own overrides */
  overrides: GatePolicyOverrides;
  /** the package whose overrides this one inherits (added as its dependency) */
  inheritsFrom: string | null;
  /** the last accepted (built, approved, or seen at add) revision of the package's repository */
  accepted: string | null;
  /** who is trusted: recorded at add, extended by approvals */
  trust: TrustRecord | null;
}

/** A held update with its package, as listed for review. */
export interface HeldUpdateView {
  base: string;
  held: HeldUpdate;
  policy: GatePolicy;
}

/** A change of the per-package policy; null takes the override away (the default applies again). */
export type GatePolicyChange =
  | { key: 'coolOffMs'; value: number | null }
  | { key: 'trust'; value: boolean | null }
  | { key: 'review'; value: GatePolicy['review'] | null };

const REVISION = /^[0-9a-f]{7,64}$/;

/** The update gate of a server; see the file comment. */
export class UpdateGate {
  readonly defaults: GatePolicy;
  private readonly store: Store;
  private readonly git: Git;
  private readonly blockedAccounts: Set<string>;
  private readonly blockedPackages: Set<string>;
  private readonly bus: EventBus<BuildEvents> | undefined;
  private readonly now: () => Date;
  private readonly logger: Logger;

  constructor(options: UpdateGateOptions) {
    this.store = options.store;
    this.git = options.git;
    this.defaults = options.defaults ?? OPEN_GATE_POLICY;
    this.blockedAccounts = new Set((options.blockedAccounts ?? []).map((account) => account.toLowerCase()));
    this.blockedPackages = new Set(options.blockedPackages ?? []);
    this.bus = options.bus;
    this.now = options.now ?? (() => new Date());
    this.logger = options.logger ?? createNoopLogger();
  }

  // --- policy -------------------------------------------------------------------------------------

  /** The gate record of a package (an empty one when none was written). */
  async record(base: string): Promise<GateRecord> {
    return (await this.store.getGate(base)) ?? emptyGateRecord(base);
  }

  /** The policy of a package: its overrides, those of the packages it inherits from, the default. */
  async policy(base: string, record?: GateRecord): Promise<GatePolicyView> {
    const own = record ?? (await this.record(base));
    const chain: GatePolicyOverrides[] = [own.policy];
    const seen = new Set([base]);
    let parent = own.inheritsFrom;
    while (parent !== null && !seen.has(parent)) {
      seen.add(parent);
      const next = await this.store.getGate(parent);
      if (!next) break;
      chain.push(next.policy);
      parent = next.inheritsFrom;
    }
    return {
      effective: effectivePolicy(this.defaults, chain),
      overrides: own.policy,
      inheritsFrom: own.inheritsFrom,
      accepted: own.accepted,
      trust: own.trust,
    };
  }

  /** Sets or (null) removes one override of a package's policy; `NotFoundError` for an unknown package. */
  async setPolicy(base: string, change: GatePolicyChange): Promise<void> {
    await this.requirePackage(base);
    const record = await this.record(base);
    const policy = { ...record.policy };
    if (change.value === null) delete policy[change.key];
    else (policy as Record<string, unknown>)[change.key] = change.value;
    await this.store.putGate({ ...record, policy });
  }

  // --- adding -------------------------------------------------------------------------------------

  /**
   * Refuses to add a package on the block list, or one whose maintainer, co-maintainers or last
   * packager are on it (`BlockedError`). `dir` is the fresh checkout.
   */
  async checkAdd(base: string, source: Source, dir: string, srcinfo: string): Promise<void> {
    const names = [base, ...parseSrcinfo(srcinfo).packages.map((member) => member.pkgname)];
    const blockedName = names.find((name) => this.blockedPackages.has(name));
    if (blockedName !== undefined)
      throw new BlockedError(`package ${blockedName} is on the server's block list`);
    if (this.blockedAccounts.size === 0 || !source.inner.pin) return;
    const trust = await this.observe(source, dir, undefined);
    const account = this.blockedAccountOf(trust);
    if (account !== undefined) {
      throw new BlockedError(
        `package ${base} is maintained or packaged by ${account}, who is on the server's block list`,
      );
    }
  }

  /**
   * Records a package that was just added: its checkout's revision is accepted (the add is the
   * user's decision) and who is responsible for it is remembered. A dependency inherits the policy of
   * the package it was added for; a replaced package keeps its own overrides.
   */
  async added(
    base: string,
    source: Source,
    dir: string,
    options: { inheritsFrom?: string | null } = {},
  ): Promise<void> {
    const previous = await this.store.getGate(base);
    const record: GateRecord = {
      ...emptyGateRecord(base),
      policy: previous?.policy ?? {},
      inheritsFrom: options.inheritsFrom ?? previous?.inheritsFrom ?? null,
    };
    if (source.inner.pin) {
      try {
        record.accepted = (await this.git.resolveCommit(dir, 'HEAD')) ?? null;
        record.trust = await this.observe(source, dir, undefined);
      } catch (error) {
        this.logger.warn('could not record the revision and packagers of a new package', {
          base,
          error: formatErrorChain(error),
        });
      }
    }
    await this.store.putGate(record);
  }

  // --- sessions -----------------------------------------------------------------------------------

  /**
   * Called by a session before the source of a package is updated. Records the checkout's revision
   * as accepted when nothing was recorded yet (packages added before the gate existed), and hands
   * out an approved revision once: the session builds it instead of updating.
   */
  async beforeUpdate(base: string, source: Source, dir: string): Promise<{ approved?: string }> {
    if (!source.inner.pin) return {};
    const stored = await this.store.getGate(base);
    if (stored?.approved) {
      await this.store.putGate({ ...stored, approved: null });
      return { approved: stored.approved };
    }
    if (stored?.accepted) return {};
    const head = await this.git.resolveCommit(dir, 'HEAD').catch(() => undefined);
    if (head === undefined) return {};
    await this.store.putGate({ ...(stored ?? emptyGateRecord(base)), accepted: head });
    return {};
  }

  /**
   * Checks the updated checkout of a package (its state differs from the built one). On a hold or
   * a skip, the checkout is put back at the accepted revision; the caller keeps the stored source.
   * Fails closed: an error while checking holds the update with the reason `error`.
   */
  async check(base: string, source: Source, dir: string): Promise<GateDecision> {
    if (!source.inner.pin) return { action: 'build' };
    const record = await this.record(base);
    const { effective } = await this.policy(base, record);
    if (!policyHolds(effective) && this.blockedAccounts.size === 0 && this.blockedPackages.size === 0) {
      // nothing holds updates of this package (any more): an update held before goes through
      if (record.held) {
        await this.store.putGate({ ...record, held: null });
        this.emit(
          base,
          'released',
          `update to ${record.held.version} is no longer held (the policy holds nothing)`,
        );
      }
      return { action: 'build' };
    }
    let head: string | undefined;
    try {
      head = await this.git.resolveCommit(dir, 'HEAD');
      if (head === undefined) throw new InputError('the checkout has no HEAD commit');
      if (head === record.accepted) return { action: 'build' };
      if (head === record.rejected) {
        const restored = await this.putBack(dir, record);
        this.logger.info('update was rejected before, not building it', { base, revision: head });
        return { action: 'skip', restored };
      }
      const held = await this.evaluate(base, source, dir, record, effective, head);
      if (held.reasons.length === 0) {
        if (record.held) this.emit(base, 'released', `update to ${held.version} is no longer held`);
        await this.store.putGate({ ...record, held: null, trust: mergeTrust(record.trust, held.trust) });
        return { action: 'build' };
      }
      return await this.hold(base, dir, record, held);
    } catch (error) {
      this.logger.error('could not check an update, holding it', { base, error: formatErrorChain(error) });
      const message = `the update could not be checked: ${formatErrorChain(error)}`;
      const held: HeldUpdate = {
        revision: head ?? '',
        state: source.state(),
        version: '',
        baseRevision: record.accepted,
        reasons: [{ kind: 'error', message }],
        detected: this.now(),
        modified: this.now(),
        trust: record.trust ?? { coMaintainers: [], packagers: [] },
        files: [],
      };
      return this.hold(base, dir, record, held).catch(() => ({
        action: 'hold' as const,
        held,
        restored: false,
      }));
    }
  }

  /** Called after a successful publish: the built revision is accepted, nothing is held any more. */
  async built(base: string, source: Source, dir: string): Promise<void> {
    if (!source.inner.pin) return;
    const head = await this.git.resolveCommit(dir, 'HEAD');
    if (head === undefined) return;
    const record = await this.record(base);
    const held = record.held?.revision === head ? null : record.held;
    await this.store.putGate({ ...record, accepted: head, held });
  }

  // --- review -------------------------------------------------------------------------------------

  /** Every held update, by package base. */
  async list(): Promise<HeldUpdateView[]> {
    const views: HeldUpdateView[] = [];
    // only the records that hold an update: every added package has one (`added`)
    for (const record of await this.store.listGates({ heldOnly: true })) {
      if (!record.held) continue;
      views.push({
        base: record.base,
        held: record.held,
        policy: (await this.policy(record.base, record)).effective,
      });
    }
    return views;
  }

  /**
   * The held update of a package with the diff since its accepted revision; `NotFoundError` for an
   * unknown package or when nothing is held.
   */
  async review(base: string, dir: string): Promise<HeldUpdateView & { diff: string }> {
    await this.requirePackage(base);
    const record = await this.record(base);
    if (!record.held) throw new NotFoundError(`no update of package ${base} is held`);
    const { held } = record;
    let diff = '';
    if (held.baseRevision && held.revision) {
      diff = await this.git.diff(dir, held.baseRevision, held.revision);
    }
    return { base, held, policy: (await this.policy(base, record)).effective, diff };
  }

  /**
   * Approves the held update at `revision` (the full commit, or at least 7 of its first hex
   * digits): the revision becomes accepted and the next session of the package builds exactly it.
   * `NotFoundError` when the package is unknown or nothing is held, `StaleRevisionError` when the
   * held revision is another one, `BlockedError` when a block list holds it. Resolves with the full
   * revision.
   */
  async approve(base: string, revision: string): Promise<string> {
    const record = await this.heldRecord(base, revision);
    const held = record.held!;
    const blocked = this.blockedReason(base, held.trust);
    if (blocked !== undefined) throw new BlockedError(`cannot approve the update of ${base}: ${blocked}`);
    await this.store.putGate({
      ...record,
      accepted: held.revision,
      trust: mergeTrust(record.trust, held.trust),
      held: null,
      approved: held.revision,
      rejected: null,
    });
    this.logger.info('update approved', { base, revision: held.revision, version: held.version });
    this.emit(
      base,
      'approved',
      `update to ${held.version} (${held.revision.slice(0, 12)}) was approved and will be built`,
    );
    return held.revision;
  }

  /**
   * Rejects the held update at `revision`: the package stays at its accepted revision, and this
   * revision is neither built nor held again; a newer one is checked as usual (against the accepted
   * revision, so its review shows the rejected changes too). Errors as {@link UpdateGate.approve}.
   */
  async reject(base: string, revision: string): Promise<string> {
    const record = await this.heldRecord(base, revision);
    const held = record.held!;
    await this.store.putGate({ ...record, held: null, rejected: held.revision, approved: null });
    this.logger.info('update rejected', { base, revision: held.revision, version: held.version });
    this.emit(base, 'rejected', `update to ${held.version} (${held.revision.slice(0, 12)}) was rejected`);
    return held.revision;
  }

  // --- internal helpers -----------------------------------------------------------------------------

  private async requirePackage(base: string): Promise<void> {
    if (!(await this.store.getPackage(base)))
      throw new NotFoundError(`package with base ${base} is not added`);
  }

  /** The record of a package whose held update is `revision` (see approve for the errors). */
  private async heldRecord(base: string, revision: string): Promise<GateRecord> {
    if (typeof revision !== 'string' || !REVISION.test(revision)) {
      throw new InputError(
        `'${revision}' is not a revision: expected 7 to 64 lower-case hex digits of a commit`,
      );
    }
    await this.requirePackage(base);
    const record = await this.record(base);
    if (!record.held) throw new NotFoundError(`no update of package ${base} is held`);
    if (!record.held.revision.startsWith(revision)) {
      throw new StaleRevisionError(
        `revision ${revision} of ${base} is not the held one: ${record.held.revision} (${record.held.version}) is held now; review it again`,
      );
    }
    return record;
  }

  /** Checks a new revision: every reason that holds it (none when it may be built). */
  private async evaluate(
    base: string,
    source: Source,
    dir: string,
    record: GateRecord,
    policy: GatePolicy,
    head: string,
  ): Promise<HeldUpdate> {
    const now = this.now();
    const srcinfo = await source.srcinfo(dir);
    const version = fullVersion(parseSrcinfo(srcinfo));
    // a replaced source or a switch to or from the GitHub mirror leaves a history without it
    const known =
      record.accepted !== null && (await this.git.resolveCommit(dir, record.accepted)) !== undefined;
    const accepted = known ? record.accepted : null;
    const trust = await this.observe(source, dir, accepted ?? undefined);
    const info = source.inner.aurInfo?.();
    const modified =
      info?.LastModified !== undefined
        ? new Date(info.LastModified * 1000)
        : (await this.git.commitInfo(dir, head)).committed;
    const files = accepted ? await this.git.changedFiles(dir, accepted, head) : [];
    const reasons: HoldReason[] = [];

    // block lists: always
    const blocked = this.blockedReason(
      base,
      trust,
      parseSrcinfo(srcinfo).packages.map((member) => member.pkgname),
    );
    if (blocked !== undefined) reasons.push({ kind: 'blocked', message: blocked });

    // cool-off
    if (policy.coolOffMs > 0) {
      const until = new Date(modified.getTime() + policy.coolOffMs);
      if (until > now) {
        reasons.push({
          kind: 'cool-off',
          message: `changed upstream at ${modified.toISOString()}, less than the cool-off of ${formatCoolOff(policy.coolOffMs)} ago; built after ${until.toISOString()} unless approved`,
          until,
        });
      }
    }

    // maintainer trust: against what was recorded at add or the last approval
    if (policy.trust && record.trust) reasons.push(...trustReasons(record.trust, trust));

    // diff review
    if (policy.review === 'all') {
      reasons.push({ kind: 'review', message: 'every update of this package is reviewed' });
    } else if (policy.review === 'diff') {
      if (!accepted) {
        reasons.push({
          kind: 'diff',
          message: record.accepted
            ? `the accepted revision ${record.accepted} is not in the package's history (its source was replaced, or AUR_GITHUB_MIRROR changed): review the whole package`
            : 'no accepted revision to compare the update with',
        });
      } else {
        const findings = reviewChanges({
          changed: files,
          oldPkgbuild: await this.git.showFile(dir, accepted, 'PKGBUILD'),
          newPkgbuild: await this.git.showFile(dir, head, 'PKGBUILD'),
          oldSrcinfo: await this.git.showFile(dir, accepted, '.SRCINFO'),
          newSrcinfo: await this.git.showFile(dir, head, '.SRCINFO'),
        });
        if (!isVersionBump(findings)) {
          const parts: string[] = [];
          if (findings.pkgbuild.length > 0) parts.push(`PKGBUILD changed: ${findings.pkgbuild.join(', ')}`);
          if (findings.srcinfo.length > 0) parts.push(`.SRCINFO changed: ${findings.srcinfo.join(', ')}`);
          if (findings.files.length > 0) parts.push(`files changed: ${findings.files.join(', ')}`);
          reasons.push({ kind: 'diff', message: `more than a version bump: ${parts.join('; ')}` });
        }
      }
    }

    const detected = record.held?.revision === head ? record.held.detected : now;
    return {
      revision: head,
      state: source.state(),
      version,
      baseRevision: accepted,
      reasons,
      detected,
      modified,
      trust,
      files,
    };
  }

  /** Stores a held update and puts the checkout back; tells subscribers when the hold is new. */
  private async hold(base: string, dir: string, record: GateRecord, held: HeldUpdate): Promise<GateDecision> {
    const before = record.held;
    await this.store.putGate({ ...record, held });
    const restored = await this.putBack(dir, record);
    const fresh =
      before?.revision !== held.revision ||
      before.reasons.map((reason) => reason.kind).join() !== held.reasons.map((reason) => reason.kind).join();
    if (fresh) {
      this.logger.info('update held', {
        base,
        revision: held.revision,
        reasons: held.reasons.map((r) => r.kind),
      });
      const lines = held.reasons.map((reason) => `    ${reason.kind}: ${reason.message}`).join('\n');
      this.emit(
        base,
        'held',
        `update to ${held.version} (${held.revision.slice(0, 12)}) is held for review:\n${lines}`,
        held,
      );
    }
    return { action: 'hold', held, restored };
  }

  /** Puts the checkout back at the accepted revision (the next pull fast-forwards it again). */
  private async putBack(dir: string, record: GateRecord): Promise<boolean> {
    if (!record.accepted) return false;
    if ((await this.git.resolveCommit(dir, record.accepted)) === undefined) {
      this.logger.warn('the accepted revision is not in the checkout, it stays at the held one', {
        dir,
        accepted: record.accepted,
      });
      return false;
    }
    await this.git.resetHard(dir, record.accepted);
    return true;
  }

  /** Who is responsible for the checkout's revision: the AUR's answer, and the authors since `from`. */
  private async observe(source: Source, dir: string, from: string | undefined): Promise<TrustRecord> {
    const info = source.inner.aurInfo?.();
    const commits = await this.git.log(dir, from, 'HEAD');
    const packagers = [...new Set(commits.map((commit) => commit.author))];
    if (from === undefined) packagers.splice(1);
    const trust: TrustRecord = { coMaintainers: [...(info?.CoMaintainers ?? [])].sort(), packagers };
    if (info) {
      trust.maintainer = info.Maintainer ?? null;
      trust.submitter = info.Submitter ?? null;
    }
    return trust;
  }

  /** The first blocked account of a trust record, if any. */
  private blockedAccountOf(trust: TrustRecord): string | undefined {
    const accounts = [...(trust.maintainer ? [trust.maintainer] : []), ...trust.coMaintainers];
    const hit = accounts.find((account) => this.blockedAccounts.has(account.toLowerCase()));
    if (hit !== undefined) return hit;
    for (const packager of trust.packagers) {
      const match = /^(.*?)\s*<([^>]*)>$/.exec(packager);
      const forms = [packager, match?.[1] ?? '', match?.[2] ?? ''].map((form) => form.toLowerCase());
      if (forms.some((form) => form !== '' && this.blockedAccounts.has(form))) return packager;
    }
    return undefined;
  }

  /** Why a block list holds an update, if it does. */
  private blockedReason(base: string, trust: TrustRecord, names: readonly string[] = []): string | undefined {
    const blockedName = [base, ...names].find((name) => this.blockedPackages.has(name));
    if (blockedName !== undefined)
      return `package ${blockedName} is on the server's block list (GATE_BLOCKED_PACKAGES)`;
    const account = this.blockedAccountOf(trust);
    if (account !== undefined) return `${account} is on the server's block list (GATE_BLOCKED_ACCOUNTS)`;
    return undefined;
  }

  private emit(base: string, action: GateAction, message: string, held?: HeldUpdate): void {
    this.bus?.emit('gate', held ? { base, action, message, held } : { base, action, message });
  }
}

/** What happened at the gate, as the `gate` event tells it. */
export type GateAction = 'held' | 'released' | 'approved' | 'rejected';

/** The reasons a trust change holds an update. */
function trustReasons(recorded: TrustRecord, current: TrustRecord): HoldReason[] {
  const reasons: HoldReason[] = [];
  if (recorded.maintainer !== undefined && current.maintainer !== undefined) {
    const before = recorded.maintainer;
    const now = current.maintainer;
    if (before !== null && now === null) {
      reasons.push({ kind: 'orphaned', message: `the package was orphaned (its maintainer was ${before})` });
    } else if (before === null && now !== null) {
      reasons.push({ kind: 'adopted', message: `the orphaned package was adopted by ${now}` });
    } else if (before !== now) {
      reasons.push({ kind: 'maintainer', message: `the maintainer changed from ${before} to ${now}` });
    }
  }
  const known = new Set(recorded.coMaintainers);
  const added = current.coMaintainers.filter((account) => !known.has(account));
  if (added.length > 0) {
    reasons.push({
      kind: 'co-maintainer',
      message: `new co-maintainer${added.length > 1 ? 's' : ''}: ${added.join(', ')}`,
    });
  }
  const packagers = new Set(recorded.packagers);
  const fresh = current.packagers.filter((packager) => !packagers.has(packager));
  if (fresh.length > 0) {
    reasons.push({ kind: 'packager', message: `committed by a new packager: ${fresh.join(', ')}` });
  }
  return reasons;
}

/** The recorded trust after an update is accepted: the current accounts, every packager seen. */
function mergeTrust(recorded: TrustRecord | null, current: TrustRecord): TrustRecord {
  const merged: TrustRecord = {
    coMaintainers: current.coMaintainers,
    packagers: [...new Set([...current.packagers, ...(recorded?.packagers ?? [])])],
  };
  const maintainer = current.maintainer !== undefined ? current.maintainer : recorded?.maintainer;
  if (maintainer !== undefined) merged.maintainer = maintainer;
  const submitter = current.submitter !== undefined ? current.submitter : recorded?.submitter;
  if (submitter !== undefined) merged.submitter = submitter;
  return merged;
}
