/**
 * The update gate through the host: its settings from the environment, composed by `createSerene`,
 * held updates on `/metrics` and the review API. The AUR is the AUR stand-in (RPC and git over HTTP on
 * 127.0.0.1; the public AUR is what it fakes); builds use the instant runner given as the runner part.
 */
import { createInstantRunner } from '@serene/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AurEmulator, startAurEmulator } from '../../../test/fixtures/aur/index.js';
import { readConfig } from './config.js';
import { type SereneServer, startServer } from './server.js';
import { api, createDataDir, testEnv } from './testing/host-harness.js';

function configError(env: Record<string, string>): string {
  try {
    readConfig(env);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected the configuration to be refused');
}

describe('update gate settings', () => {
  it('hold nothing by default, and read cool-off, trust, review and the block lists', () => {
    const defaults = readConfig({});
    expect([defaults.gateCoolOffMs, defaults.gateTrust, defaults.gateReview]).toEqual([0, false, 'off']);
    expect([defaults.gateBlockedAccounts, defaults.gateBlockedPackages]).toEqual([[], []]);
    const set = readConfig({
      GATE_COOL_OFF: '2d',
      GATE_TRUST: 'true',
      GATE_REVIEW: 'diff',
      GATE_BLOCKED_ACCOUNTS: ' mallory , Eve <eve@example.invalid>,',
      GATE_BLOCKED_PACKAGES: 'evil-bin',
    });
    expect(set.gateCoolOffMs).toBe(2 * 86_400_000);
    expect(set.gateTrust).toBe(true);
    expect(set.gateReview).toBe('diff');
    expect(set.gateBlockedAccounts).toEqual(['mallory', 'Eve <eve@example.invalid>']);
    expect(set.gateBlockedPackages).toEqual(['evil-bin']);
    expect(readConfig({ GATE_COOL_OFF: '0' }).gateCoolOffMs).toBe(0);
    expect(configError({ GATE_COOL_OFF: 'soon' })).toMatch(/GATE_COOL_OFF="soon" is not valid/);
    expect(configError({ GATE_REVIEW: 'some' })).toMatch(/GATE_REVIEW="some" is not valid/);
  });
});

describe('update gate in the host', () => {
  let aur: AurEmulator;
  let server: SereneServer;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    aur = await startAurEmulator({ packages: [{ base: 'tool', pkgver: '1.0' }] });
    const data = await createDataDir();
    cleanup = data.cleanup;
    const config = readConfig(
      testEnv(data.dataDir, { AUR_URL: aur.url, GATE_REVIEW: 'diff', GATE_TRUST: 'true' }),
    );
    server = await startServer({ config, parts: { runner: createInstantRunner() } });
  });
  afterAll(async () => {
    await server?.close();
    await cleanup?.();
    await aur?.close();
  });

  it('holds a changed update, shows it on /metrics and in the review API, and builds it once approved', {
    timeout: 240_000,
  }, async () => {
    const added = await api(server.url, '/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'aur', name: 'tool' } },
    });
    expect(added.status, added.text).toBe(200);
    await server.orchestrator.idle();
    await aur.bump('tool', { pkgver: '1.1', files: { 'tool.install': 'post_install() { :; }\n' } });
    const revision = await aur.materialize('tool');
    const build = await api(server.url, '/build', {
      method: 'POST',
      body: { packages: ['tool'], clean: false, resolve: true, force: false },
    });
    expect(build.status).toBe(200);
    await server.orchestrator.idle();

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^serene_gate_held_updates\{reason="diff"\} 1$/m);
    expect(metrics).toMatch(/^serene_gate_held_updates\{reason="cool-off"\} 0$/m);
    expect(metrics).toContain(
      `serene_gate_held_update{package="tool",version="1.1-1",revision="${revision}"} 1`,
    );
    expect(metrics).toMatch(/^serene_gate_events_total\{action="held"\} 1$/m);

    const held = await api(server.url, '/review');
    expect(held.json).toMatchObject([{ base: 'tool', revision, reasons: [{ kind: 'diff' }] }]);
    const approved = await api(server.url, '/review/tool/approve', { method: 'POST', body: { revision } });
    expect(approved.status, approved.text).toBe(200);
    await server.orchestrator.idle();
    expect((await server.publisher.list()).find((entry) => entry.name === 'tool')?.version).toBe('1.1-1');
    const after = await (await fetch(`${server.url}/metrics`)).text();
    expect(after).toMatch(/^serene_gate_held_updates\{reason="diff"\} 0$/m);
    expect(after).toMatch(/^serene_gate_events_total\{action="approved"\} 1$/m);
  });
});
