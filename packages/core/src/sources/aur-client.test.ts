import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AurEmulator, startAurEmulator } from '../../../../test/fixtures/aur/index.js';
import { AurRpcError, AurUnreachableError, createAurClient } from './aur-client.js';

let aur: AurEmulator;
const NAMES = Array.from({ length: 450 }, (_, i) => `pkg-${String(i).padStart(3, '0')}`);

beforeAll(async () => {
  aur = await startAurEmulator({
    packages: [
      ...NAMES.map((base) => ({ base, pkgver: '1.0' })),
      { base: 'libfoo', pkgver: '2.0', provides: ['foo-api=2'] },
      { base: 'foo-ng', pkgver: '3.0', provides: ['foo-api=3'], numVotes: 5 },
    ],
    maxNamesPerRequest: 200,
  });
});
afterAll(async () => aur?.close());
beforeEach(() => {
  aur.resetStats();
  aur.rpcDelayMs = 0;
  aur.failNext(0);
});

describe('AUR client info', () => {
  it('splits many names into requests of at most 200 names', async () => {
    const client = createAurClient({ baseUrl: aur.url });
    const results = await client.info([...NAMES, 'missing-package', NAMES[0] ?? '']);
    expect(results.map((r) => r.Name).sort()).toEqual(NAMES);
    expect(aur.stats.rpcRequests).toBe(3);
    expect(client.stats()).toEqual({ requests: 3, names: 451 });
  });

  it('sends POST form bodies to /rpc/v5/info when asked', async () => {
    const client = createAurClient({ baseUrl: `${aur.url}/`, method: 'POST' });
    const results = await client.info(NAMES.slice(0, 250));
    expect(results).toHaveLength(250);
    expect(aur.stats.rpcRequests).toBe(2);
  });

  it('cuts GET requests before the URL gets too long', async () => {
    const client = createAurClient({ baseUrl: aur.url, maxUrlLength: 1000 });
    const results = await client.info(NAMES.slice(0, 100));
    expect(results).toHaveLength(100);
    // each name adds `&arg[]=pkg-000` (14 characters): about 68 per 1,000-character URL
    expect(aur.stats.rpcRequests).toBe(2);
  });

  it('makes no request for no names', async () => {
    const client = createAurClient({ baseUrl: aur.url });
    expect(await client.info([])).toEqual([]);
    expect(aur.stats.rpcRequests).toBe(0);
  });

  it('returns the fields the AUR returns', async () => {
    const client = createAurClient({ baseUrl: aur.url });
    const [pkg] = await client.info(['libfoo']);
    expect(pkg).toMatchObject({
      Name: 'libfoo',
      PackageBase: 'libfoo',
      Version: '2.0-1',
      Provides: ['foo-api=2'],
    });
  });
});

describe('AUR client lookup', () => {
  it('coalesces concurrent lookups into one request', async () => {
    const client = createAurClient({ baseUrl: aur.url });
    const found = await Promise.all(
      [...NAMES.slice(0, 150), 'missing-package'].map((name) => client.lookup(name)),
    );
    expect(found.slice(0, 150).map((p) => p?.Version)).toEqual(NAMES.slice(0, 150).map(() => '1.0-1'));
    expect(found[150]).toBeUndefined();
    expect(aur.stats.rpcRequests).toBe(1);
  });

  it('coalesces lookups that arrive a little apart', async () => {
    const client = createAurClient({ baseUrl: aur.url, batchWindowMs: 20 });
    const staggered = NAMES.slice(0, 10).map(async (name, i) => {
      await sleep(i * 2);
      return client.lookup(name);
    });
    expect((await Promise.all(staggered)).every((p) => p !== undefined)).toBe(true);
    expect(aur.stats.rpcRequests).toBe(1);
  });

  it('rejects only the lookup whose signal aborts', async () => {
    const client = createAurClient({ baseUrl: aur.url });
    const controller = new AbortController();
    const aborted = client.lookup('pkg-001', { signal: controller.signal });
    const other = client.lookup('pkg-002');
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    expect((await other)?.Name).toBe('pkg-002');
  });
});

describe('AUR client failures', () => {
  it('retries a failed request (AUR_REQUEST_RETRIES)', async () => {
    aur.failNext(1, 503);
    const client = createAurClient({ baseUrl: aur.url, retries: 1, retryDelayMs: 1 });
    expect(await client.info(['pkg-001'])).toHaveLength(1);
    expect(aur.stats.rpcRequests).toBe(2);
  });

  it('gives up after the retries', async () => {
    aur.failNext(3, 502);
    const client = createAurClient({ baseUrl: aur.url, retries: 2, retryDelayMs: 1 });
    const error = await client.info(['pkg-001']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AurRpcError);
    expect((error as AurRpcError).status).toBe(502);
    expect(aur.stats.rpcRequests).toBe(3);
  });

  it('times out a slow answer (AUR_REQUEST_TIMEOUT) and retries it', async () => {
    aur.rpcDelayMs = 300;
    const client = createAurClient({ baseUrl: aur.url, timeoutMs: 50, retries: 1, retryDelayMs: 1 });
    const error = await client.info(['pkg-001']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AurUnreachableError);
    expect((error as Error).message).toBe(`the AUR at ${aur.url} did not answer within 50 ms`);
    expect(client.stats().requests).toBe(2);
  });

  it('does not retry an RPC error answer', async () => {
    const client = createAurClient({ baseUrl: aur.url, maxNamesPerRequest: 300, retries: 3 });
    await expect(client.info(NAMES.slice(0, 250))).rejects.toThrow(
      'AUR RPC error: Too many package results.',
    );
    expect(aur.stats.rpcRequests).toBe(1);
  });

  it('fails with an AurUnreachableError naming the cause once when nothing listens', async () => {
    // a port that was free a moment ago: connections are refused
    const port = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const client = createAurClient({ baseUrl: `http://127.0.0.1:${port}`, retries: 0 });
    const error = await client.info(['x']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AurUnreachableError);
    expect(error).toBeInstanceOf(AurRpcError);
    expect((error as AurUnreachableError).code).toBe('SERENE_ERR_AUR_UNREACHABLE');
    expect((error as Error).message).toBe(
      `the AUR at http://127.0.0.1:${port} cannot be reached: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });
});

describe('AUR client search and URLs', () => {
  it('finds providers with search by provides', async () => {
    const client = createAurClient({ baseUrl: aur.url });
    const found = await client.searchProviders('foo-api');
    expect(found.map((p) => p.Name).sort()).toEqual(['foo-ng', 'libfoo']);
  });

  it('derives the repository and page URLs from the base URL (AUR_URL)', () => {
    const client = createAurClient({ baseUrl: 'https://aur.example.org/' });
    expect(client.repositoryUrl('foo')).toBe('https://aur.example.org/foo.git');
    expect(client.listingUrl('foo')).toBe('https://aur.example.org/pkgbase/foo');
    expect(createAurClient().repositoryUrl('foo')).toBe('https://aur.archlinux.org/foo.git');
  });
});
