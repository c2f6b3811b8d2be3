import { Readable } from 'node:stream';
import { type BuildEvents, type BuildRecord, NotFoundError, type PackageService } from '@serene/core';
import type { PackagePeek } from './schemas.js';
import { buildInfo, formatTime, summaryPeek } from './wire.js';

/** What {@link PackageList} reads the packages with. */
export type PackageListSource = Pick<PackageService, 'summaries' | 'summary'>;

/** Options of {@link PackageList}. */
export interface PackageListOptions {
  service: PackageListSource;
  /**
   * how often the whole list is read again (ms), in the background, in case the store changed
   * behind the server's back
   */
  maxAgeMs: number;
  /**
   * More packages to read than this share of the list (and more than 16): the whole list is read
   * again (one query for all) rather than each package (two queries each).
   * @default 0.1
   */
  rereadShare?: number;
  /** entries encoded between two turns of the event loop while the whole list is read @default 500 */
  batch?: number;
}

/**
 * What a state change tells of a package's entry: its newest build is a new one (`pending`: the
 * build was just recorded, with nothing else), or only the state of that build changed (`running`
 * the build step: recorded with no other change), or `read` it again.
 */
type Change = { build: BuildRecord } | { started: string; state: BuildRecord['state'] } | 'read';

/**
 * The answer of `GET /package/list` (the `PackagePeek` of every package, as JSON), kept between
 * requests and brought up to date package by package: a build's state change names its package
 * ({@link PackageList.changed}); a new build and its start are written into the entry as the event
 * tells them, other changes have the package read again at the next request, so that a list of
 * thousands of packages is not read, parsed and encoded again for each of the many state changes
 * of a build session. A write through the API may change anything ({@link PackageList.invalidate}):
 * the next request reads the whole list.
 *
 * A request never gets data older than itself: requests are answered one after another, and each
 * applies what was changed or invalidated before it was answered. Every `maxAgeMs` the whole list is
 * read again in the background (a change behind the server's back shows after at most that long,
 * plus the read); reading the whole list yields to the event loop every `batch` entries.
 */
export class PackageList {
  private readonly service: PackageListSource;
  private readonly maxAgeMs: number;
  private readonly rereadShare: number;
  private readonly batch: number;
  /** each package's entry, as JSON, in the list's order; undefined: read the whole list */
  private entries: Map<string, string> | undefined;
  /** the entries of the last answer; undefined when an entry changed since */
  private body: readonly string[] | undefined;
  /** when the whole list was last read */
  private readAt = 0;
  /** changes not yet in `entries` */
  private readonly changes = new Map<string, Change>();
  /** counts invalidations: a read that an invalidation overtook is answered but not kept */
  private generation = 0;
  /** the requests, one after another */
  private queue: Promise<unknown> = Promise.resolve();
  /** the whole list read in the background, and the entries changed while it reads */
  private refresh: { done: Promise<void>; since: Set<string> } | undefined;

  constructor(options: PackageListOptions) {
    this.service = options.service;
    this.maxAgeMs = options.maxAgeMs;
    this.rereadShare = options.rereadShare ?? 0.1;
    this.batch = options.batch ?? 500;
  }

  /** A build changed state: its package's entry follows at the next request. */
  changed(event: BuildEvents['state']): void {
    const base = event.base;
    const before = this.changes.get(base);
    if (before === 'read') return;
    const { state } = event;
    if (state.state === 'pending' && event.reason !== undefined) {
      // as the orchestrator records a new build: nothing but its start, state and reason
      const build: BuildRecord = {
        package: base,
        started: event.started,
        ended: null,
        state,
        reason: event.reason,
        version: null,
        runSuccess: null,
        runStarted: null,
        runEnded: null,
        stats: null,
        ...(event.arch !== undefined ? { arch: event.arch } : {}),
      };
      this.changes.set(base, { build });
    } else if (state.state === 'running' && state.info === 'build') {
      if (before && 'build' in before) {
        this.changes.set(base, { build: { ...before.build, state } });
      } else if (before === undefined) {
        this.changes.set(base, { started: formatTime(event.started), state });
      } else {
        this.changes.set(base, 'read');
      }
    } else {
      this.changes.set(base, 'read');
    }
  }

  /** Anything may have changed: the next request reads the whole list. */
  invalidate(): void {
    this.generation++;
    this.entries = undefined;
    this.body = undefined;
    this.changes.clear();
    this.refresh = undefined;
  }

  /**
   * The entries of the list, each a `PackagePeek` as JSON, in order ({@link listJson} and
   * {@link listStream} make the answer of them).
   */
  get(): Promise<readonly string[]> {
    if (this.body !== undefined && this.changes.size === 0 && this.fresh()) {
      return Promise.resolve(this.body);
    }
    const answer = this.queue.then(() => this.update());
    this.queue = answer.catch(() => undefined);
    return answer;
  }

  /** Resolves when no whole read runs in the background (tests). */
  async settled(): Promise<void> {
    while (this.refresh) await this.refresh.done;
  }

  // --- Internal helpers ---

  private fresh(): boolean {
    return Date.now() - this.readAt < this.maxAgeMs;
  }

  private async update(): Promise<readonly string[]> {
    const generation = this.generation;
    let entries = this.entries;
    if (entries !== undefined && !this.fresh()) this.refreshInBackground();
    if (entries !== undefined && this.changes.size === 0 && this.body !== undefined) return this.body;
    // the changes are taken now: until they are in, no request is answered from the last answer
    this.body = undefined;
    const reads = [...this.changes.values()].filter((change) => change === 'read').length;
    let whole = entries === undefined || reads > Math.max(16, entries.size * this.rereadShare);
    if (entries !== undefined && !whole) whole = !(await this.apply(entries));
    if (entries === undefined || whole) {
      // changes from now on are applied at the next request; those from before are in this read
      this.changes.clear();
      const readAt = Date.now();
      entries = await this.readAll();
      if (generation === this.generation) this.readAt = readAt;
    }
    const body = [...entries.values()];
    if (generation === this.generation) {
      this.entries = entries;
      this.body = this.changes.size === 0 ? body : undefined;
    }
    return body;
  }

  /** Applies the changes to `entries`; false when the whole list must be read instead. */
  private async apply(entries: Map<string, string>): Promise<boolean> {
    const changes = [...this.changes];
    this.changes.clear();
    for (const [base] of changes) this.refresh?.since.add(base);
    const read: string[] = [];
    for (const [i, [base, change]] of changes.entries()) {
      // a session's start changes thousands of entries at once: requests are answered in between
      if (i > 0 && i % this.batch === 0) await new Promise((resolve) => setImmediate(resolve));
      const entry = entries.get(base);
      if (change === 'read' || entry === undefined) {
        read.push(base);
        continue;
      }
      const peek = JSON.parse(entry) as PackagePeek;
      if ('build' in change) {
        peek.build = buildInfo(change.build);
      } else if (peek.build?.started === change.started) {
        peek.build.state = change.state;
      } else {
        read.push(base);
        continue;
      }
      entries.set(base, JSON.stringify(peek));
    }
    let updated: (string | undefined)[];
    try {
      updated = await Promise.all(read.map((base) => this.readOne(base)));
    } catch (error) {
      for (const base of read) this.changes.set(base, 'read');
      throw error;
    }
    // a package added or removed behind the API's back changes the list's order: read it all
    if (updated.some((entry, i) => entry === undefined || !entries.has(read[i]!))) return false;
    for (const [i, entry] of updated.entries()) entries.set(read[i]!, entry!);
    return true;
  }

  /**
   * Reads the whole list in the background; when done, it replaces the entries, and the packages
   * changed meanwhile are read again (the whole read may have seen them before their change).
   */
  private refreshInBackground(): void {
    if (this.refresh) return;
    const generation = this.generation;
    const since = new Set<string>();
    const readAt = Date.now();
    const done = this.readAll().then(
      (entries) => {
        if (generation !== this.generation || this.refresh?.since !== since) return;
        this.refresh = undefined;
        this.entries = entries;
        this.body = undefined;
        this.readAt = readAt;
        for (const base of since) if (!this.changes.has(base)) this.changes.set(base, 'read');
      },
      () => {
        // a failed read leaves the entries as they are; the next request tries again
        if (this.refresh?.since === since) this.refresh = undefined;
      },
    );
    this.refresh = { done, since };
  }

  /** One package's entry; undefined when it is not added (any more). */
  private async readOne(base: string): Promise<string | undefined> {
    try {
      return JSON.stringify(summaryPeek(await this.service.summary(base)));
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  private async readAll(): Promise<Map<string, string>> {
    const list = await this.service.summaries();
    const entries = new Map<string, string>();
    for (const [i, summary] of list.entries()) {
      if (i > 0 && i % this.batch === 0) await new Promise((resolve) => setImmediate(resolve));
      entries.set(summary.record.base, JSON.stringify(summaryPeek(summary)));
    }
    return entries;
  }
}

/** The list's entries as one JSON array. */
export function listJson(entries: readonly string[]): string {
  return `[${entries.join(',')}]`;
}

/**
 * The list's entries as a JSON array, streamed in pieces of about `chunkBytes`: a list of thousands
 * of packages is megabytes, which are then never held in one buffer per answer. Each entry is
 * written as UTF-8 straight into the piece's buffer: joining the entries into a string first and
 * encoding that made about three copies of the whole list per answer (the joined text, its flat
 * copy and the bytes), the largest share of what the server allocated while a session ran at
 * 5,000-20,000 packages (docs/benchmarks.md, issue 16).
 */
export function listStream(entries: readonly string[], chunkBytes = 64 * 1024): Readable {
  let next = 0;
  return new Readable({
    read() {
      if (next > entries.length) {
        this.push(null);
        return;
      }
      // UTF-8 takes at most 3 bytes per UTF-16 unit; a leading ',' or '[' and the closing ']'
      const worst = (i: number) => 3 * entries[i]!.length + 2;
      const first = next < entries.length ? worst(next) : 2;
      const piece = Buffer.allocUnsafe(Math.max(chunkBytes, first));
      let used = 0;
      if (next === 0) used += piece.write('[', used, 'latin1');
      // the first entry of a piece always fits (the piece is made large enough for it)
      let wrote = false;
      while (next < entries.length && (!wrote || used + worst(next) <= piece.length)) {
        wrote = true;
        if (next > 0) used += piece.write(',', used, 'latin1');
        used += piece.write(entries[next]!, used, 'utf8');
        next++;
      }
      if (next === entries.length && used < piece.length) {
        used += piece.write(']', used, 'latin1');
        next++;
      }
      this.push(piece.subarray(0, used));
    },
  });
}
