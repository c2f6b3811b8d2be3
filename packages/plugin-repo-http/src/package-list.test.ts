import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { listJson, listStream, PackageList, type PackageListSource } from './package-list.js';
import { type Harness, startHarness } from './testing/harness.js';
import { packagePeek } from './wire.js';

const add = (h: Harness, name: string) =>
  h.ask('/package/add', { method: 'POST', body: { replace: false, source: { type: 'aur', name } } });

/** The list as it is now, read whole from the service (what the answer must equal). */
async function expected(h: Harness): Promise<unknown> {
  return (await h.service.list()).map((item) =>
    JSON.parse(JSON.stringify(packagePeek(item.view, item.latest))),
  );
}

/** The real service, counting its reads; `list` can be held after its read, to overtake it with changes. */
function counted(h: Harness) {
  const calls = { list: 0, get: [] as string[] };
  let hold: Promise<void> | undefined;
  const source: PackageListSource = {
    summaries: async () => {
      calls.list++;
      const list = await h.service.summaries();
      await hold;
      return list;
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

const parse = (entries: readonly string[]) => JSON.parse(listJson(entries));

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
    const list = vi.spyOn(h.service, 'summaries');
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
    const kept = new PackageList({ service: source, maxAgeMs: 60_000, batch: 1 });
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
    const kept = new PackageList({ service: source, maxAgeMs: 60_000, batch: 1 });
    await kept.get();
    const started = new Date(Date.UTC(2030, 0, 1));
    for (const base of ['alpha', 'beta', 'gamma']) {
      kept.changed({ base, started, state: { state: 'pending' }, reason: 'schedule' });
    }
    const first = kept.get();
    // the changes are applied one a turn of the event loop: this request comes in between
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

describe('listStream', () => {
  it('streams the entries as one JSON array in pieces, the same text as listJson', async () => {
    const read = async (entries: string[], chunkBytes?: number) => {
      const pieces: Buffer[] = [];
      for await (const piece of listStream(entries, chunkBytes)) pieces.push(piece as Buffer);
      return { text: Buffer.concat(pieces).toString('utf8'), pieces: pieces.length };
    };
    expect(await read([])).toEqual({ text: '[]', pieces: 1 });
    expect((await read(['{"a":1}'])).text).toBe('[{"a":1}]');
    const entries = Array.from({ length: 1000 }, (_, i) =>
      JSON.stringify({ base: `p-${i}`, note: 'ü'.repeat(i % 7) }),
    );
    const { text, pieces } = await read(entries, 1024);
    expect(text).toBe(listJson(entries));
    expect(JSON.parse(text)).toHaveLength(1000);
    expect(pieces).toBeGreaterThan(10);
    // pieces about chunkBytes long: the whole list is not in one buffer
    expect(pieces).toBeLessThan(Buffer.byteLength(text) / 512);
  });

  it('writes entries longer than a piece, multi-byte text and tiny pieces whole', async () => {
    const read = async (entries: string[], chunkBytes: number) => {
      const pieces: Buffer[] = [];
      for await (const piece of listStream(entries, chunkBytes)) pieces.push(piece as Buffer);
      return Buffer.concat(pieces).toString('utf8');
    };
    const long = JSON.stringify({ base: 'long', text: '€😀'.repeat(3000) });
    const entries = ['{"a":"é"}', long, '{"b":"😀"}', long];
    for (const chunkBytes of [1, 7, 64, 1024, 100_000]) {
      expect(await read(entries, chunkBytes)).toBe(listJson(entries));
    }
    expect(await read([long], 1)).toBe(listJson([long]));
    expect(await read([], 1)).toBe('[]');
  });
});
