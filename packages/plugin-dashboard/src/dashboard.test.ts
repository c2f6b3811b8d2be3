import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard, NOT_BUILT_MESSAGE } from './dashboard.js';

// The middleware on a real Koa server, with a folder of assets as the bundle step leaves them.

let root: string;
const servers: http.Server[] = [];

async function serve(assetsDir: string): Promise<string> {
  const app = new Koa();
  const dashboard = createDashboard({ assetsDir });
  await dashboard.start();
  app.use(dashboard.routes);
  app.use((ctx) => {
    ctx.body = 'the API';
  });
  const server = http.createServer(app.callback());
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-dashboard-assets-'));
  await fs.mkdir(path.join(root, 'public'));
  await fs.writeFile(path.join(root, 'public', 'index.html'), '<!doctype html><title>serene</title>');
  await fs.writeFile(
    path.join(root, 'public', 'app.js'),
    `console.log(${JSON.stringify('x'.repeat(5000))});`,
  );
  await fs.writeFile(path.join(root, 'public', 'notes.txt'), 'not served');
});
afterAll(async () => {
  for (const server of servers) server.close();
  await fs.rm(root, { recursive: true, force: true });
});

describe('createDashboard', () => {
  it('serves the page with its security headers, revalidates by ETag, and compresses what is large', async () => {
    const url = await serve(path.join(root, 'public'));
    const unstarted = createDashboard({ assetsDir: path.join(root, 'public') });
    expect(unstarted.files).toEqual([]);
    const redirect = await fetch(`${url}/dashboard`, { redirect: 'manual' });
    expect([redirect.status, redirect.headers.get('location')]).toEqual([301, '/dashboard/']);
    const page = await fetch(`${url}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'; script-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(await page.text()).toBe('<!doctype html><title>serene</title>');
    const etag = page.headers.get('etag')!;
    const again = await fetch(`${url}/dashboard/`, { headers: { 'If-None-Match': etag } });
    expect(again.status).toBe(304);

    const script = await new Promise<http.IncomingMessage & { body: Buffer }>((resolve) =>
      http.get(`${url}/dashboard/app.js`, { headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve(Object.assign(res, { body: Buffer.concat(chunks) })));
      }),
    );
    expect(script.headers['content-encoding']).toBe('gzip');
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(gunzipSync(script.body).toString()).toContain('xxxx');
    expect(script.body.length).toBeLessThan(1000);

    expect((await fetch(`${url}/dashboard/notes.txt`)).status).toBe(404);
    expect((await fetch(`${url}/dashboard/../package/list`)).status).toBe(200);
    expect((await fetch(`${url}/dashboard/`, { method: 'POST' })).status).toBe(405);
    // everything else goes on to the API
    expect(await (await fetch(`${url}/package/list`)).text()).toBe('the API');
    expect(await (await fetch(`${url}/dashboardx`)).text()).toBe('the API');
  });

  it('answers 503 saying how to build it when the bundle is missing, and the API still works', async () => {
    const url = await serve(path.join(root, 'nothing-here'));
    const reply = await fetch(`${url}/dashboard/`);
    expect([reply.status, await reply.text()]).toEqual([503, NOT_BUILT_MESSAGE]);
    expect(await (await fetch(`${url}/health`)).text()).toBe('the API');
  });

  it('refuses a base path that is not a plain path', async () => {
    expect(() => createDashboard({ basePath: 'dash board' })).toThrow(/base path must be like \/dashboard/);
  });
});
