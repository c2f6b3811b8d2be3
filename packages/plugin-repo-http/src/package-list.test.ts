import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  EncodedList,
  type ListBody,
  listJson,
  PackageList,
  type PackageListSource,
  writeList,
} from './package-list.js';
import { type Harness, startHarness } from './testing/harness.js';
import { packagePeek, summaryPeek } from './wire.js';

const add = (h: Harness, name: string) =>
  h.ask('/package/add', { method: 'POST', body: { replace: false, source: { type: 'aur', name } } });

/** The list as it is now, read whole from the service (what the answer must equal). */
async function expected(h: Harness): Promise<unknown> {
  return (await h.service.list()).map((item) =>
    JSON.parse(JSON.stringify(packagePeek(item.view, item.latest))),
  );
}

/** Each package's entry as a whole read makes it now (`listJson` of them is what an answer must be). */
async function entriesNow(h: Harness): Promise<string[]> {
  return (await h.service.summaries()).map((summary) => JSON.stringify(summaryPeek(summary)));
}

/** The real service, counting its reads; `list` can be held after its read, to overtake it with changes. */
function counted(h: Harness) {
  const calls = { list: 0, get: [] as string[] };
  let hold: Promise<void> | undefined;
  const source: PackageListSource = {
    summaryPages: async function* () {
      calls.list++;
      const list = await h.service.summaries();
      await hold;
      yield list;
    },
    summary: (base) => {
      calls.get.push(base);
      return h.service.summary(base);
    },
  };
  return {
    source,
    calls,
    holdList() {
      let open = () => {};
      hold = new Promise((resolve) => {
        open = resolve;
      });
      return () => {
        hold = undefined;
        open();
      };
    },
  };
}

/** An answer's text, as its bytes are written: `[`, the pieces, `]`. */
const text = (body: ListBody) =>
  Buffer.concat([Buffer.from('['), ...body.pieces, Buffer.from(']')]).toString('utf8');
const parse = (body: ListBody) => JSON.parse(text(body));

/** A state change that has its package read again (a build that ended). */
const ended = (base: string) => ({
  base,
  started: new Date(),
  state: { state: 'success' as const },
  reason: 'manual' as const,
});

describe('GET /package/list, kept and updated package by package', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      packages: [
        { base: 'alpha', pkgver: '1.0' },
        { base: 'beta', pkgver: '2.0' },
        { base: 'gamma', pkgver: '3.0' },
      ],
    });
    for (const name of ['alpha', 'beta', 'gamma']) expect((await add(h, name)).status).toBe(200);
    await h.orchestrator.idle();
  });
  afterAll(() => h.close());
  afterEach(() => vi.restoreAllMocks());

  it('reads only the package whose build changed state, and answers what a whole read gives', async () => {
    const list = vi.spyOn(h.service, 'summaryPages');
    const get = vi.spyOn(h.service, 'summary');
    const set = (value: boolean) =>
      h.ask('/package/gamma/set', { method: 'POST', body: { key: 'enabled', value } });
    // a write through the API: the next answer is a whole read that shows it
    expect((await set(false)).status).toBe(200);
    const disabled = (await h.ask('/package/list')).json as { base: string; enabled: boolean }[];
    expect(disabled).toEqual(await expected(h));
    expect(disabled.find((peek) => peek.base === 'gamma')?.enabled).toBe(false);

    // a build started without a request (as the scheduler starts them): its new build and its
    // start are written into the entry from the events, nothing is read
    h.hold('beta');
    try {
      await h.orchestrator.start(['beta'], { reason: 'manual', resolve: true, clean: false, force: true });
      await vi.waitFor(() => expect(h.orchestrator.buildInFlight('beta')?.phase).toBe('running'));
      get.mockClear();
      const before = list.mock.calls.length;
      const running = (await h.ask('/package/list')).json as { base: string; build: { state: unknown } }[];
      expect(get).not.toHaveBeenCalled();
      expect(list.mock.calls.length).toBe(before);
      expect(running).toEqual(await expected(h));
      expect(running.find((peek) => peek.base === 'beta')?.build.state).toEqual({
        state: 'running',
        info: 'build',
      });
    } finally {
      h.release('beta');
    }
    await h.orchestrator.idle();
    get.mockClear();
    const whole = list.mock.calls.length;
    const after = (await h.ask('/package/list')).json as { base: string; build: { state: unknown } }[];
    // one package read again, not the list
    expect(get.mock.calls.map(([base]) => base)).toEqual(['beta']);
    expect(list.mock.calls.length).toBe(whole);
    expect(after).toEqual(await expected(h));
    expect(after.find((peek) => peek.base === 'beta')?.build.state).toEqual({ state: 'success' });
    // nothing changed since: the kept answer, nothing read
    get.mockClear();
    const calls = list.mock.calls.length;
    expect((await h.ask('/package/list')).json).toEqual(after);
    expect(get).not.toHaveBeenCalled();
    expect(list.mock.calls.length).toBe(calls);
    expect((await set(true)).status).toBe(200);
  });

  it('reads one package after its change, and the whole list after an invalidation and when many packages changed', async () => {
    const { source, calls } = counted(h);
    const kept = new PackageList({ service: source, maxAgeMs: 60_000 });
    expect(parse(await kept.get())).toEqual(await expected(h));
    await kept.get();
    expect(calls.list).toBe(1);
    kept.changed(ended('alpha'));
    expect(parse(await kept.get())).toEqual(await expected(h));
    expect(calls).toEqual({ list: 1, get: ['alpha'] });
    kept.invalidate();
    await kept.get();
    expect(calls.list).toBe(2);
    // more than the share of the list (and than 16) changed: one whole read instead of each package
    const share = new PackageList({ service: source, maxAgeMs: 60_000, rereadShare: 0.5 });
    await share.get();
    calls.get.length = 0;
    for (let i = 0; i < 17; i++) share.changed(ended(i < 3 ? ['alpha', 'beta', 'gamma'][i]! : `other-${i}`));
    await share.get();
    expect(calls.get).toEqual([]);
    expect(calls.list).toBe(4);
  });

  it('applies changes in the background applyAfterMs after the first, so that a request finds them done', async () => {
    const { source, calls } = counted(h);
    const kept = new PackageList({ service: source, maxAgeMs: 60_000, applyAfterMs: 20 });
    try {
      await kept.get();
      kept.changed(ended('alpha'));
      kept.changed(ended('beta'));
      // no request: read in the background, once each
      await vi.waitFor(() => expect(calls.get).toEqual(['alpha', 'beta']), { timeout: 2000 });
      // the request reads nothing more, and answers what a whole read gives
      expect(parse(await kept.get())).toEqual(await expected(h));
      expect(calls.get).toEqual(['alpha', 'beta']);
      // nothing changed: no background read; after close, none either
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(calls.get).toHaveLength(2);
      kept.close();
      kept.changed(ended('gamma'));
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(calls.get).toHaveLength(2);
      expect(calls.list).toBe(1);
    } finally {
      kept.close();
    }
  });

  it('reads the whole list again in the background when it is older than maxAgeMs', async () => {
    const { source, calls } = counted(h);
    let maxAge = 60_000;
    const kept = new PackageList({ service: source, maxAgeMs: 60_000 });
    Object.defineProperty(kept, 'maxAgeMs', { get: () => maxAge });
    const first = parse(await kept.get());
    expect(calls.list).toBe(1);
    // a change behind the server's back (no event): the kept answer until the list is too old
    await h.store.updatePackage('gamma', { enabled: false });
    expect(parse(await kept.get())).toEqual(first);
    maxAge = 0;
    // too old: answered from what is kept, while the whole list is read again
    expect(parse(await kept.get())).toEqual(first);
    await kept.settled();
    expect(calls.list).toBe(2);
    maxAge = 60_000;
    const after = parse(await kept.get());
    expect(after.find((peek: { base: string }) => peek.base === 'gamma').enabled).toBe(false);
    expect(after).toEqual(await expected(h));
    await h.store.updatePackage('gamma', { enabled: true });
  });

  it('never answers a request with data older than the request, nor keeps a read an invalidation overtook', async () => {
    const { source, calls, holdList } = counted(h);
    const kept = new PackageList({ service: source, maxAgeMs: 60_000, budgetMs: 0 });
    const open = holdList();
    const first = kept.get();
    // the read has begun; the store changes behind it, then the API says so
    await vi.waitFor(() => expect(calls.list).toBe(1));
    await h.store.updatePackage('alpha', { enabled: false });
    kept.invalidate();
    const second = kept.get();
    open();
    const [before, after] = [parse(await first), parse(await second)];
    expect(before.find((peek: { base: string }) => peek.base === 'alpha').enabled).toBe(true);
    expect(after.find((peek: { base: string }) => peek.base === 'alpha').enabled).toBe(false);
    expect(calls.list).toBe(2);
    // a package marked while the whole list is read is read again at the next request
    const open2 = holdList();
    kept.invalidate();
    const third = kept.get();
    await vi.waitFor(() => expect(calls.list).toBe(3));
    await h.store.updatePackage('alpha', { enabled: true });
    kept.changed(ended('alpha'));
    open2();
    await third;
    calls.get.length = 0;
    const fourth = parse(await kept.get());
    expect(calls.get).toEqual(['alpha']);
    expect(fourth.find((peek: { base: string }) => peek.base === 'alpha').enabled).toBe(true);
    expect(fourth).toEqual(await expected(h));
  });

  it('answers no request from the last answer while changes are being applied', async () => {
    const { source, calls } = counted(h);
    const kept = new PackageList({ service: source, maxAgeMs: 60_000, budgetMs: 0 });
    await kept.get();
    const started = new Date(Date.UTC(2030, 0, 1));
    for (const base of ['alpha', 'beta', 'gamma']) {
      kept.changed({ base, started, state: { state: 'pending' }, reason: 'schedule' });
    }
    const first = kept.get();
    // with no time budget, the changes are applied one a turn of the event loop: this request comes in between
    await new Promise((resolve) => setImmediate(resolve));
    const second = kept.get();
    for (const answer of [parse(await first), parse(await second)]) {
      for (const peek of answer) {
        expect(peek.build).toMatchObject({ state: { state: 'pending' }, reason: 'schedule', ended: null });
        expect(peek.build.started).toBe('2030-01-01T00:00:00Z');
      }
    }
    // written from the events: nothing was read
    expect(calls).toEqual({ list: 1, get: [] });
  });

  it('answers the bytes of the entries a whole read makes, encoding again only the piece of a changed entry', async () => {
    const { source, calls } = counted(h);
    // pieces of one byte: each package's entry is a piece of its own
    const kept = new PackageList({ service: source, maxAgeMs: 60_000, pieceBytes: 1 });
    const before = await kept.get();
    expect(before.pieces).toHaveLength(3);
    expect(text(before)).toBe(listJson(await entriesNow(h)));
    // the middle package changes in the store and its build's end names it
    await h.store.updatePackage('beta', { enabled: false });
    try {
      kept.changed(ended('beta'));
      const after = await kept.get();
      expect(calls).toEqual({ list: 1, get: ['beta'] });
      expect(after.pieces[0]).toBe(before.pieces[0]);
      expect(after.pieces[1]).not.toBe(before.pieces[1]);
      expect(after.pieces[2]).toBe(before.pieces[2]);
      expect(text(after)).toBe(listJson(await entriesNow(h)));
      expect(after.bytes).toBe(Buffer.byteLength(text(after)));
      expect(parse(after).find((peek: { base: string }) => peek.base === 'beta').enabled).toBe(false);
      // over HTTP: the same bytes, their length sent ahead
      const reply = await h.ask('/package/list');
      expect(reply.text).toBe(listJson(await entriesNow(h)));
      expect(reply.headers['content-length']).toBe(String(Buffer.byteLength(reply.text)));
      expect(reply.headers['transfer-encoding']).toBeUndefined();
      expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
      const head = await h.ask('/package/list', { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.text).toBe('');
      expect(head.headers['content-length']).toBe(reply.headers['content-length']);
    } finally {
      await h.store.updatePackage('beta', { enabled: true });
    }
  });

  it('reads the whole list when a marked package is gone, and keeps the marks when a read fails', async () => {
    const { source, calls } = counted(h);
    let failing = false;
    const flaky: PackageListSource = {
      ...source,
      summary: (base) => (failing ? Promise.reject(new Error('store down')) : source.summary(base)),
    };
    const kept = new PackageList({ service: flaky, maxAgeMs: 60_000 });
    await kept.get();
    failing = true;
    kept.changed(ended('beta'));
    await expect(kept.get()).rejects.toThrow('store down');
    failing = false;
    calls.get.length = 0;
    expect(parse(await kept.get())).toEqual(await expected(h));
    expect(calls.get).toEqual(['beta']);
    kept.changed(ended('no-such-package'));
    expect(parse(await kept.get())).toEqual(await expected(h));
    expect(calls.list).toBe(2);
  });
});

/** An EncodedList of these entries (bases `e0`, `e1`, ...), and its first answer. */
async function encoded(entries: readonly string[], pieceBytes: number) {
  const list = new EncodedList(pieceBytes);
  for (const [i, entry] of entries.entries()) list.push(`e${i}`, entry);
  return { list, body: await list.answer() };
}

/** The pieces of `after` that are not the very buffers of `before`. */
const remade = (before: ListBody, after: ListBody) =>
  after.pieces.flatMap((piece, i) => (piece === before.pieces[i] ? [] : [i]));

describe('EncodedList: the answer kept in pieces', () => {
  const entries = Array.from({ length: 1000 }, (_, i) =>
    JSON.stringify({ base: `p-${i}`, note: 'ü'.repeat(i % 7) }),
  );

  it('keeps the answer in pieces of about pieceBytes, byte for byte the joined entries', async () => {
    const { body } = await encoded(entries, 1024);
    expect(text(body)).toBe(listJson(entries));
    expect(body.bytes).toBe(Buffer.byteLength(listJson(entries)));
    const longest = Math.max(...entries.map((entry) => entry.length));
    // each piece closes once its text holds pieceBytes UTF-16 units: at least that, and less than
    // one entry more
    for (const piece of body.pieces.slice(0, -1)) {
      expect(piece.toString('utf8').length).toBeGreaterThanOrEqual(1024);
      expect(piece.toString('utf8').length).toBeLessThanOrEqual(1024 + longest);
      expect(piece.length).toBeGreaterThanOrEqual(1024);
    }
    expect(body.pieces.length).toBeGreaterThan(10);
    // nothing changed: the next answer is the same buffers
    const { list } = await encoded(entries, 1024);
    const first = await list.answer();
    expect(remade(first, await list.answer())).toEqual([]);
  });

  it('encodes again only the piece of an entry changed in the middle, and leaves the last answer as it was', async () => {
    const { list, body } = await encoded(entries, 1024);
    const changed = [...entries];
    changed[500] = JSON.stringify({ base: 'p-500', note: 'changed, and longer than it was'.repeat(4) });
    list.set('e500', changed[500]);
    expect(list.get('e500')).toBe(changed[500]);
    const after = await list.answer();
    expect(text(after)).toBe(listJson(changed));
    expect(after.bytes).toBe(Buffer.byteLength(listJson(changed)));
    const [piece] = remade(body, after);
    expect(remade(body, after)).toHaveLength(1);
    // the remade piece is the one holding entry 500
    const start = Buffer.byteLength(listJson(entries.slice(0, 500)).slice(0, -1));
    let offset = 1;
    for (const earlier of body.pieces.slice(0, piece)) offset += earlier.length;
    expect(offset).toBeLessThanOrEqual(start);
    expect(offset + body.pieces[piece!]!.length).toBeGreaterThan(start);
    // an answer being written is not changed by the next one (a changed piece is a new buffer)
    expect(text(body)).toBe(listJson(entries));
    // two entries of the same piece, and entries of two pieces: one piece each
    list.set('e501', JSON.stringify({ base: 'p-501', note: 'ö' }));
    list.set('e502', JSON.stringify({ base: 'p-502', note: 'ö' }));
    const third = await list.answer();
    expect(remade(after, third)).toEqual([piece]);
    // an entry set to what it is: nothing to encode
    list.set('e0', entries[0]!);
    expect(remade(third, await list.answer())).toEqual([]);
    list.set('e0', JSON.stringify({ base: 'p-0', note: 'first' }));
    list.set('e999', JSON.stringify({ base: 'p-999', note: 'last' }));
    expect(remade(third, await list.answer())).toEqual([0, after.pieces.length - 1]);
  });

  it('writes multi-byte text as UTF-8, byte for byte', async () => {
    const multi = ['{"a":"é"}', '{"b":"€ 😀"}', '{"c":"\u2028 ü"}', '{"d":"plain"}'];
    for (const pieceBytes of [1, 7, 64, 1024]) {
      const { list, body } = await encoded(multi, pieceBytes);
      expect(Buffer.concat([Buffer.from('['), ...body.pieces, Buffer.from(']')])).toEqual(
        Buffer.from(listJson(multi), 'utf8'),
      );
      // an ASCII entry replaced by a longer multi-byte one, and the other way round
      const changed = ['{"a":"e"}', multi[1]!, multi[2]!, '{"d":"😀😀😀 ĳ"}'];
      list.set('e0', changed[0]!);
      list.set('e3', changed[3]!);
      const after = await list.answer();
      expect(text(after)).toBe(listJson(changed));
      expect(after.bytes).toBe(Buffer.byteLength(listJson(changed)));
    }
  });

  it('keeps an entry larger than a piece whole', async () => {
    // 21 KB of UTF-8, and over the 1 MiB of the kept scratch buffer
    const long = JSON.stringify({ base: 'long', text: '€😀'.repeat(3000) });
    const huge = JSON.stringify({ base: 'huge', text: '😀'.repeat(300_000) });
    const { body: alone } = await encoded(['{}', huge, '{}'], 1024);
    expect(text(alone)).toBe(listJson(['{}', huge, '{}']));
    const list = ['{"a":"é"}', long, '{"b":"😀"}', long.replace('long', 'longer')];
    for (const pieceBytes of [1, 64, 1024, 100_000]) {
      const { body } = await encoded(list, pieceBytes);
      expect(text(body)).toBe(listJson(list));
    }
    // pieces of one byte: each entry is a piece of its own (with its comma)
    const { list: kept, body } = await encoded(list, 1);
    expect(body.pieces.map((piece) => piece.toString('utf8'))).toEqual(
      list.map((entry, i) => (i > 0 ? `,${entry}` : entry)),
    );
    // the long entry ends the piece it starts in: the entry after it starts the next
    const { body: some } = await encoded(list, 1024);
    expect(some.pieces.map((piece) => piece.toString('utf8'))).toEqual([
      `${list[0]},${list[1]}`,
      `,${list[2]},${list[3]}`,
    ]);
    kept.set('e1', '{"short":true}');
    const after = await kept.answer();
    expect(remade(body, after)).toEqual([1]);
    expect(text(after)).toBe(listJson([list[0]!, '{"short":true}', list[2]!, list[3]!]));
  });

  it('answers an empty list, and an unfinished last piece changed before the answer', async () => {
    const { body } = await encoded([], 1024);
    expect(body).toEqual({ pieces: [], bytes: 2 });
    expect(text(body)).toBe('[]');
    // entries pushed after the last full piece are encoded at the answer, as they are then
    const list = new EncodedList(1024);
    for (const [i, entry] of ['{"a":1}', '{"b":2}', '{"c":3}'].entries()) list.push(`e${i}`, entry);
    list.set('e1', '{"b":"two"}');
    // a base pushed again keeps its place and takes the new entry
    list.push('e0', '{"a":"one"}');
    expect(list.size).toBe(3);
    expect(text(await list.answer())).toBe('[{"a":"one"},{"b":"two"},{"c":3}]');
    expect(() => list.set('nope', '{}')).toThrow(/not in the list/);
  });
});

describe('writeList', () => {
  /** The chunks as a response's socket takes them: one writev of all of them. */
  const chunks = (body: ListBody) =>
    new Promise<Buffer[]>((resolve, reject) => {
      const read: Buffer[] = [];
      let calls = 0;
      const response = new Writable({
        writev(parts, done) {
          calls++;
          for (const { chunk } of parts) read.push(chunk as Buffer);
          done();
        },
      });
      response.on('finish', () => (calls === 1 ? resolve(read) : reject(new Error(`${calls} writes`))));
      writeList(response, body);
    });

  it('writes `[`, the very buffers of the pieces, and `]`, in one writev', async () => {
    const entries = Array.from({ length: 200 }, (_, i) =>
      JSON.stringify({ base: `p-${i}`, x: 'é'.repeat(i % 5) }),
    );
    const { body } = await encoded(entries, 512);
    const read = await chunks(body);
    expect(read).toHaveLength(body.pieces.length + 2);
    expect(read[0]!.toString()).toBe('[');
    expect(read.at(-1)!.toString()).toBe(']');
    // the pieces themselves, not copies
    for (const [i, piece] of body.pieces.entries()) expect(read[i + 1]).toBe(piece);
    expect(Buffer.concat(read).toString('utf8')).toBe(listJson(entries));
    expect(Buffer.concat(await chunks((await encoded([], 512)).body)).toString()).toBe('[]');
  });
});
