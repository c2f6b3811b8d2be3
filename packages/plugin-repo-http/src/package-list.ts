import type { Writable } from 'node:stream';
import {
  type BuildEvents,
  type BuildRecord,
  createPause,
  NotFoundError,
  type PackageService,
  type Pause,
} from '@serene/core';
import type { PackagePeek } from './schemas.js';
import { buildInfo, formatTime, summaryPeek } from './wire.js';

/** What {@link PackageList} reads the packages with. */
export type PackageListSource = Pick<PackageService, 'summaryPages' | 'summary'>;

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
  /** about how many bytes of the answer are kept in one piece ({@link EncodedList}) @default 32 KiB */
  pieceBytes?: number;
  /**
   * longest time (ms) the list's long loops (reading, encoding and applying thousands of entries)
   * run before they give the event loop a turn (`createPause` of @serene/core)
   * @default 10
   */
  budgetMs?: number;
  /**
   * changes are applied in the background this long (ms) after the first of them, so that a
   * request finds little left to apply (it still waits for what is under way); none: only
   * requests apply them
   */
  applyAfterMs?: number;
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
 * the next request reads the whole list. The answer's bytes are kept too, in pieces
 * ({@link EncodedList}): a request encodes only the pieces whose entries changed since the last.
 *
 * A request never gets data older than itself: requests are answered one after another, and each
 * applies what was changed or invalidated before it was answered. Every `maxAgeMs` the whole list is
 * read again in the background (a change behind the server's back shows after at most that long,
 * plus the read); reading, applying and encoding give the event loop a turn every `budgetMs`.
 */
export class PackageList {
  private readonly service: PackageListSource;
  private readonly maxAgeMs: number;
  private readonly rereadShare: number;
  private readonly pieceBytes: number | undefined;
  private readonly budgetMs: number | undefined;
  /** each package's entry, as JSON, in the list's order, and their bytes; undefined: read the whole list */
  private entries: EncodedList | undefined;
  /** the last answer; undefined when an entry changed since */
  private body: ListBody | undefined;
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
  /** none once closed */
  private applyAfterMs: number | undefined;
  /** the background apply coming (`applyAfterMs`) */
  private applying: NodeJS.Timeout | undefined;

  constructor(options: PackageListOptions) {
    this.service = options.service;
    this.maxAgeMs = options.maxAgeMs;
    this.rereadShare = options.rereadShare ?? 0.1;
    this.pieceBytes = options.pieceBytes;
    this.budgetMs = options.budgetMs;
    this.applyAfterMs = options.applyAfterMs;
  }

  /** Stops applying changes in the background. */
  close(): void {
    this.applyAfterMs = undefined;
    clearTimeout(this.applying);
    this.applying = undefined;
  }

  /** A build changed state: its package's entry follows at the next request. */
  changed(event: BuildEvents['state']): void {
    this.applySoon();
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

  /** The answer as it is now, in pieces ({@link listStream} writes it). */
  get(): Promise<ListBody> {
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

  /**
   * Applies the changes in the background `applyAfterMs` from now, as a request would (in the
   * requests' queue): during a build session a request then waits for the reads of the last few
   * changes, not of every change since the request before it (each read waits for the store,
   * which the session's writes keep busy; docs/benchmarks.md, issue 16). Not while the whole list
   * is to be read: that waits for a request.
   */
  private applySoon(): void {
    if (this.applyAfterMs === undefined || this.applying !== undefined || this.entries === undefined) return;
    this.applying = setTimeout(() => {
      this.applying = undefined;
      if (this.entries !== undefined && this.changes.size > 0) void this.get().catch(() => undefined);
    }, this.applyAfterMs);
    this.applying.unref();
  }

  private fresh(): boolean {
    return Date.now() - this.readAt < this.maxAgeMs;
  }

  private pause(): Pause {
    return createPause(this.budgetMs);
  }

  private async update(): Promise<ListBody> {
    const generation = this.generation;
    let entries = this.entries;
    if (entries !== undefined && !this.fresh()) this.refreshInBackground();
    if (entries !== undefined && this.changes.size === 0 && this.body !== undefined) return this.body;
    // the changes are taken now: until they are in, no request is answered from the last answer
    this.body = undefined;
    const reads = [...this.changes.values()].filter((change) => change === 'read').length;
    let whole = entries === undefined || reads > Math.max(16, entries.size * this.rereadShare);
    // one budget for the whole update: applying, reading and encoding run one after another
    const pause = this.pause();
    if (entries !== undefined && !whole) whole = !(await this.apply(entries, pause));
    if (entries === undefined || whole) {
      // changes from now on are applied at the next request; those from before are in this read
      this.changes.clear();
      const readAt = Date.now();
      entries = await this.readAll(pause);
      if (generation === this.generation) this.readAt = readAt;
    }
    const body = await entries.answer(pause);
    if (generation === this.generation) {
      this.entries = entries;
      this.body = this.changes.size === 0 ? body : undefined;
    }
    return body;
  }

  /** Applies the changes to `entries`; false when the whole list must be read instead. */
  private async apply(entries: EncodedList, pause: Pause): Promise<boolean> {
    const changes = [...this.changes];
    this.changes.clear();
    for (const [base] of changes) this.refresh?.since.add(base);
    const read: string[] = [];
    // a session's start changes thousands of entries at once: requests are answered in between
    for (const [base, change] of changes) {
      await pause();
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

  /** The whole list, its pieces encoded as they fill (a background read leaves nothing to encode). */
  private async readAll(pause = this.pause()): Promise<EncodedList> {
    const entries = new EncodedList(this.pieceBytes);
    // by pages: the whole list's records (their PKGBUILDs and sources) are never held at once
    for await (const page of this.service.summaryPages()) {
      for (const summary of page) {
        await pause();
        entries.push(summary.record.base, JSON.stringify(summaryPeek(summary)));
      }
    }
    await entries.answer(pause);
    return entries;
  }
}

/**
 * An answer of `GET /package/list` as it is written: `[`, the pieces, `]`. The pieces are never
 * written into once made (a changed piece is a new buffer), so an answer being streamed is not
 * changed by the next one.
 */
export interface ListBody {
  readonly pieces: readonly Buffer[];
  /** length of the whole answer, brackets included */
  readonly bytes: number;
}

/**
 * The list's entries (each a `PackagePeek` as JSON) in order, and the answer's bytes kept in pieces
 * of consecutive entries, each piece encoded (UTF-8, with its separating commas: a piece after the
 * first starts with one) until one of its entries changes ({@link set}); the next
 * {@link answer} encodes that piece again, and only it. A session changes entries in the list's
 * order (bases in order, dependents near their dependency), so few pieces change between two
 * answers.
 *
 * What this costs and why: the bytes are kept next to the entries' strings (which {@link
 * PackageList} parses to apply a change), so the list is held twice: about 330 bytes a package
 * more, 6.6 MB at 20,000, outside the V8 heap (its collections do not go through them). Encoding
 * the whole list for each answer instead (new 64 KiB buffers filled entry by entry, 6.6 MB per
 * answer at 20,000 packages, asked 4 times a second) held the event loop for every answer and
 * delayed every other request: `GET /package/list` p50 31 ms and p99 98-179 ms while nginx served a
 * file of the same size in 8.5/34 ms (docs/benchmarks.md, "A scheduled session on simulated
 * engines", issue 16). Now an answer with nothing changed encodes and copies nothing.
 *
 * Pieces close once their entries hold `pieceBytes` UTF-16 units (so a piece is that long plus at
 * most one entry; an entry longer than that is a piece of its own, or ends one): small enough that
 * re-encoding a piece for one changed entry is cheap, large enough that an answer is a few hundred
 * writes. Units rather than bytes: the entries are mostly ASCII (then units are bytes), and a
 * string's length is known while its UTF-8 length is counted by reading it.
 */
export class EncodedList {
  private readonly pieceBytes: number;
  /** each entry, as JSON, in order */
  private readonly entries: string[] = [];
  /** each base's position in `entries` */
  private readonly positions = new Map<string, number>();
  /** the first entry of each piece, then the end of the last piece */
  private readonly starts: number[] = [0];
  /** each piece's bytes; undefined when one of its entries changed since it was encoded */
  private readonly pieces: (Buffer | undefined)[] = [];
  /** the pieces to encode again */
  private readonly stale = new Set<number>();
  /** UTF-16 units of the entries pushed after the last piece (its commas included) */
  private open = 0;

  constructor(pieceBytes = 32 * 1024) {
    this.pieceBytes = pieceBytes;
  }

  /** number of entries */
  get size(): number {
    return this.entries.length;
  }

  has(base: string): boolean {
    return this.positions.has(base);
  }

  /** The entry of a base; undefined when it is not in the list. */
  get(base: string): string | undefined {
    const at = this.positions.get(base);
    return at === undefined ? undefined : this.entries[at];
  }

  /**
   * Adds an entry at the end; a piece is encoded once full. A base already in the list keeps its
   * place and takes the new entry (as a `Map` would).
   */
  push(base: string, entry: string): void {
    if (this.positions.has(base)) {
      this.set(base, entry);
      return;
    }
    const at = this.entries.length;
    this.entries.push(entry);
    this.positions.set(base, at);
    this.open += entry.length + (at > 0 ? 1 : 0);
    if (this.open >= this.pieceBytes) this.close();
  }

  /**
   * Replaces the entry of a base in the list; its piece is encoded again at the next answer (not
   * when the entry is the same: a package read again after a change that did not show in it).
   */
  set(base: string, entry: string): void {
    const at = this.positions.get(base);
    if (at === undefined) throw new Error(`'${base}' is not in the list`);
    if (this.entries[at] === entry) return;
    this.entries[at] = entry;
    // an entry after the last piece is encoded when the piece it goes in closes
    if (at >= this.starts.at(-1)!) return;
    const piece = this.pieceOf(at);
    this.pieces[piece] = undefined;
    this.stale.add(piece);
  }

  /** The answer: encodes the pieces changed since the last one (and the last, unfinished piece). */
  async answer(pause: Pause = async () => {}): Promise<ListBody> {
    if (this.starts.at(-1)! < this.entries.length) this.close();
    // taken one at a time: an entry set during a pause has its piece encoded before the answer too
    while (this.stale.size > 0) {
      const piece = this.stale.values().next().value!;
      await pause();
      this.stale.delete(piece);
      this.pieces[piece] = this.encode(piece);
    }
    const pieces = this.pieces as Buffer[];
    let bytes = 2;
    for (const piece of pieces) bytes += piece.length;
    return { pieces: [...pieces], bytes };
  }

  // --- Internal helpers ---

  /** Ends the piece at the last entry pushed and encodes it. */
  private close(): void {
    this.starts.push(this.entries.length);
    this.pieces.push(this.encode(this.pieces.length));
    this.open = 0;
  }

  private pieceOf(at: number): number {
    // the last piece whose first entry is at or before `at`
    let low = 0;
    let high = this.pieces.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.starts[middle]! <= at) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  /**
   * A piece's bytes, in a buffer of exactly their length (no slack kept), of its own rather than a
   * slice of Node's shared pool (which a kept slice would hold whole). The entries are written into
   * a scratch buffer large enough for any text of their length, then copied out: counting each
   * entry's UTF-8 length first and writing into the piece straight took twice as long (a whole list
   * of 20,000 entries: 7-8 ms against 3-4 ms).
   */
  private encode(piece: number): Buffer {
    const start = this.starts[piece]!;
    const end = this.starts[piece + 1]!;
    // UTF-8 takes at most 3 bytes per UTF-16 unit; a comma before each entry but the list's first
    let worst = end - start;
    for (let at = start; at < end; at++) worst += 3 * this.entries[at]!.length;
    const into = worst <= scratch.length ? scratch : Buffer.allocUnsafeSlow(worst);
    // a scratch this size stays (up to 1 MiB, a few times a piece); one larger is for this piece only
    if (into !== scratch && worst <= SCRATCH_MAX) scratch = into;
    let used = 0;
    for (let at = start; at < end; at++) {
      if (at > 0) into[used++] = COMMA;
      used += into.write(this.entries[at]!, used, 'utf8');
    }
    const bytes = Buffer.allocUnsafeSlow(used);
    into.copy(bytes, 0, 0, used);
    return bytes;
  }
}

const COMMA = 0x2c;
/** where pieces are encoded before being copied into their own buffer (encoding is synchronous) */
let scratch = Buffer.allocUnsafeSlow(0);
const SCRATCH_MAX = 1024 * 1024;
const OPEN = Buffer.from('[');
const CLOSE = Buffer.from(']');

/** The list's entries as one JSON array: what an answer's bytes are (tests compare them). */
export function listJson(entries: readonly string[]): string {
  return `[${entries.join(',')}]`;
}

/**
 * Writes an answer as it is kept, and ends the response: `[`, each piece's buffer as it is, `]`.
 * Nothing is copied or encoded per answer, and the buffers are handed over all at once (corked:
 * one `writev`), so the socket takes them without the event loop's help; a stream piped into the
 * response hands them over one per drain, each waiting for its turn behind the other work of a
 * busy server (a 6.6 MB list took 25-30 ms at p50 during a build session; docs/benchmarks.md, issue 16).
 */
export function writeList(response: Writable, body: ListBody): void {
  response.cork();
  response.write(OPEN);
  for (const piece of body.pieces) response.write(piece);
  // end() uncorks
  response.end(CLOSE);
}
