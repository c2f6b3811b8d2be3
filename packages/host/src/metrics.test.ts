/**
 * `/metrics` on a server of several architectures (docs/engines.md#architectures): the build series are
 * labelled with each build's architecture (`ARCH` for events that name none), and requests below each
 * served architecture's repository are `repository`. The bus and the SQLite store are the real ones;
 * the request context is a plain object with what the middleware reads (path, method, status).
 */
import { type BuildEvents, createKnexStore, EventBus, type Store } from '@serene/core';
import type Koa from 'koa';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics, type Metrics } from './metrics.js';

let store: Store | undefined;
let metrics: Metrics | undefined;
afterEach(async () => {
  metrics?.close();
  await store?.close();
});

describe('metrics of several architectures', () => {
  it('labels each build with its architecture, and counts every repository as `repository`', async () => {
    const bus = new EventBus<BuildEvents>();
    store = createKnexStore({ filename: ':memory:' });
    await store.open();
    let clock = 0;
    metrics = createMetrics({
      bus,
      orchestrator: { queue: { running: 0, queued: 0 } },
      store,
      arch: 'x86_64',
      arches: ['x86_64', 'aarch64'],
      now: () => clock,
    });
    const build = (base: string, arch: string | undefined, end: 'success' | 'failure') => {
      const started = new Date(Date.UTC(2026, 0, 1, 0, 0, clock));
      const event = { base, started, reason: 'manual' as const, ...(arch ? { arch } : {}) };
      bus.emit('state', { ...event, state: { state: 'pending' } });
      bus.emit('state', { ...event, state: { state: 'running', info: 'build' } });
      clock += 2000;
      bus.emit('state', { ...event, state: { state: end } });
    };
    build('alpha', 'x86_64', 'success');
    build('alpha', 'aarch64', 'success');
    build('beta', 'aarch64', 'failure');
    // an event without an architecture (a build of the version before): the primary's
    build('gamma', undefined, 'success');

    const request = async (path: string, status: number) => {
      const ctx = { path, method: 'GET', status, set: () => undefined } as unknown as Koa.Context;
      await metrics!.middleware(ctx, async () => undefined);
    };
    await request('/aarch64/serene.db', 200);
    await request('/x86_64/serene.db', 200);
    await request('/aarch64', 301);
    await request('/riscv64/serene.db', 404);

    const text = await metrics.registry.metrics();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1]);
    expect(value(/^serene_builds_total\{state="success",reason="manual",arch="x86_64"\} (\d+)$/m)).toBe(2);
    expect(value(/^serene_builds_total\{state="success",reason="manual",arch="aarch64"\} (\d+)$/m)).toBe(1);
    expect(value(/^serene_builds_total\{state="failure",reason="manual",arch="aarch64"\} (\d+)$/m)).toBe(1);
    expect(value(/^serene_builds_started_total\{reason="manual",arch="aarch64"\} (\d+)$/m)).toBe(2);
    expect(value(/^serene_build_duration_seconds_count\{state="success",arch="aarch64"\} (\d+)$/m)).toBe(1);
    expect(value(/^serene_build_duration_seconds_sum\{state="success",arch="x86_64"\} (\d+)$/m)).toBe(4);
    expect(value(/^serene_http_requests_total\{method="GET",route="repository",status="200"\} (\d+)$/m)).toBe(
      2,
    );
    expect(value(/^serene_http_requests_total\{method="GET",route="repository",status="301"\} (\d+)$/m)).toBe(
      1,
    );
    expect(value(/^serene_http_requests_total\{method="GET",route="unmatched",status="404"\} (\d+)$/m)).toBe(
      1,
    );
  });
});
