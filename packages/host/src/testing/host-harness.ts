/**
 * Helpers for the host's tests and the end-to-end test: a data folder with a secret and an optional
 * signing key, the environment of a server on 127.0.0.1, and a client that speaks to it.
 * Not part of the build (see tsconfig.json).
 */

import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { secretToken } from '@serene/plugin-repo-http';

/** The API secret the test data folder authorizes. */
export const TEST_SECRET = 'host test secret';

/** A temporary data folder with `authorized_secrets` (and, with `signKey`, `sign_key.asc`). */
export async function createDataDir(options: { signKey?: string } = {}): Promise<{
  root: string;
  dataDir: string;
  cleanup(): Promise<void>;
}> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-host-'));
  const dataDir = path.join(root, 'data');
  await fs.mkdir(dataDir, { recursive: true });
  await fs.writeFile(path.join(dataDir, 'authorized_secrets'), `${secretToken(TEST_SECRET)} tester@host\n`);
  if (options.signKey) await fs.writeFile(path.join(dataDir, 'sign_key.asc'), options.signKey);
  return { root, dataDir, cleanup: () => fs.rm(root, { recursive: true, force: true }) };
}

/** The environment of a test server: loopback only, nothing fetched from the internet. */
export function testEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATA_DIR: dataDir,
    PORT: '0',
    HOST: '127.0.0.1',
    // nothing listens there: the sync databases stay empty, quickly
    SYNC_MIRROR: 'http://127.0.0.1:9/{repo}/os/{arch}',
    LOG_LEVEL: 'warn',
    // the serene-cli package (on by default) is tested on its own (cli-package.test.ts)
    BUILD_CLI: 'false',
    ...extra,
  };
}

/** One API call with the test secret; the JSON body (or text) and the status. */
export async function api(
  url: string,
  pathname: string,
  options: { method?: string; body?: unknown; secret?: string | null } = {},
): Promise<{ status: number; json: unknown; text: string }> {
  const headers: Record<string, string> = {};
  const secret = options.secret === undefined ? TEST_SECRET : options.secret;
  if (secret !== null) headers.Authorization = secret;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${url}${pathname}`, {
    method: options.method ?? 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

/** Waits until `check` holds, polling. */
export async function until(
  check: () => Promise<boolean> | boolean,
  ms = 30_000,
  what = 'a condition',
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** A TCP port nothing listens on at the moment, on 127.0.0.1 (for servers whose port must be known in advance). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
