import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryLogger } from '../logger.js';
import { RepoDatabase } from '../pacman/database.js';
import { writeSyntheticPackage } from '../testing/synthetic-package.js';
import { createSyncDatabases, parseSyncDatabase, syncProvidersOf } from './sync-databases.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A mirror on 127.0.0.1 serving `{repo}/os/{arch}/{repo}.db` from folders, counting requests. */
async function mirror(root: string) {
  const seen: { url: string; status: number }[] = [];
  const server = http.createServer(async (request, response) => {
    const file = path.join(root, decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname));
    const stat = await fs.stat(file).catch(() => undefined);
    if (!stat?.isFile() || !file.startsWith(root)) {
      response.writeHead(404).end();
      seen.push({ url: request.url ?? '', status: 404 });
      return;
    }
    const since = request.headers['if-modified-since'];
    if (since && Math.floor(stat.mtimeMs / 1000) <= Math.floor(Date.parse(since) / 1000)) {
      response.writeHead(304).end();
      seen.push({ url: request.url ?? '', status: 304 });
      return;
    }
    response.writeHead(200, { 'last-modified': stat.mtime.toUTCString() });
    response.end(await fs.readFile(file));
    seen.push({ url: request.url ?? '', status: 200 });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function repository(
  root: string,
  repo: string,
  packages: { name: string; version: string; provides?: string[] }[],
) {
  const dir = path.join(root, repo, 'os', 'x86_64');
  await fs.mkdir(dir, { recursive: true });
  const db = await RepoDatabase.open(path.join(dir, `${repo}.db.tar.gz`));
  await db.add(await Promise.all(packages.map((pkg) => writeSyntheticPackage(path.join(root, 'pkgs'), pkg))));
  // a mirror serves `core.db` (the link)
  await fs.copyFile(path.join(dir, `${repo}.db.tar.gz`), path.join(dir, `${repo}.db`)).catch(() => undefined);
}

describe('sync databases', () => {
  it('reads the packages and provides of sync databases from a mirror, and refreshes conditionally', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-sync-'));
    cleanups.push(() => fs.rm(root, { recursive: true, force: true }));
    await repository(root, 'core', [
      { name: 'glibc', version: '2.40-1' },
      { name: 'bash', version: '5.2-1', provides: ['sh'] },
    ]);
    await repository(root, 'extra', [{ name: 'python', version: '3.12.1-1', provides: ['python3=3.12.1'] }]);
    const server = await mirror(root);
    const logger = createMemoryLogger();
    const sync = createSyncDatabases({ mirror: `${server.url}/{repo}/os/{arch}`, arch: 'x86_64', logger });
    await sync.refresh();
    const providers = sync.providers();
    expect(providers.map((p) => p.name).sort()).toEqual(['bash', 'glibc', 'python']);
    expect(providers.find((p) => p.name === 'python')).toEqual({
      name: 'python',
      version: '3.12.1-1',
      provides: ['python3=3.12.1'],
    });
    // multilib does not exist on this mirror: logged, not fatal
    expect(
      logger.records.some((r) => r.level === 'warn' && JSON.stringify(r.meta).includes('multilib')),
    ).toBe(true);
    // unchanged databases are not downloaded again, and a failing mirror keeps the last copy
    server.seen.length = 0;
    await sync.refresh();
    expect(server.seen.filter((s) => s.url.endsWith('core.db')).map((s) => s.status)).toEqual([304]);
    await fs.rm(path.join(root, 'core'), { recursive: true });
    await sync.refresh();
    expect(
      sync
        .providers()
        .map((p) => p.name)
        .sort(),
    ).toEqual(['bash', 'glibc', 'python']);
  });

  it('refuses garbage with an error instead of an empty list', async () => {
    await expect(parseSyncDatabase(new Uint8Array([0x1f, 0x8b, 1, 2, 3]))).rejects.toThrow();
  });
});

describe('sync databases on a mirror that cannot be reached', () => {
  it('waits only for the first refresh, and says what a failure means when there is no copy', async () => {
    // a mirror that refuses the first requests, then takes every later one and never answers
    const held: http.ServerResponse[] = [];
    let refusing = true;
    const server = http.createServer((request, response) => {
      if (refusing) request.socket.destroy();
      else held.push(response);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      for (const response of held) response.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const logger = createMemoryLogger();
    const sync = createSyncDatabases({
      mirror: `${base}/{repo}/os/{arch}`,
      repositories: ['core'],
      arch: 'x86_64',
      logger,
    });
    // refreshMs 0: every resolution starts a refresh
    const current = syncProvidersOf(sync, { refreshMs: 0, logger });

    // the first resolution waits for the first refresh, which fails
    expect(await current()).toEqual([]);
    const warnings = logger.records.filter((r) => r.level === 'warn');
    expect(warnings.map((r) => r.message)).toEqual([
      'could not sync database: dependencies are resolved without its packages',
    ]);
    expect(warnings[0]?.meta).toMatchObject({ repo: 'core', url: `${base}/core/os/x86_64/core.db` });
    expect(String(warnings[0]?.meta?.error)).not.toBe('fetch failed');
    expect(JSON.stringify(logger.records)).not.toContain('keeping the last copy');

    // a later resolution starts a refresh (refreshMs 0) but does not wait for it: it is still unanswered
    refusing = false;
    expect(await current()).toEqual([]);
    while (held.length === 0) await sleep(10);
    expect(held.length).toBe(1);
    expect(held[0]?.writableEnded).toBe(false);
  });
});
