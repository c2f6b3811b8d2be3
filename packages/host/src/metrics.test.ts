/**
 * `/metrics` on a server of several architectures (docs/engines.md#architectures): the build series are
 * labelled with each build's architecture (`ARCH` for events that name none), and requests below each
 * served architecture's repository are `repository`. The bus and the SQLite store are the real ones;
 * the request context is a plain object with what the middleware reads (path, method, status).
 */
import { type BuildEvents, createKnexStore, EventBus, emptyGateRecord, type Store } from '@serene/core';
import { sampleBuild, samplePackage } from '@serene/core/testing';
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

describe('metrics of the packages and the update gate', () => {
  it('counts packages by the state of their newest build, `none` for the never built; lists held updates', async () => {
    store = createKnexStore({ filename: ':memory:' });
    await store.open();
    metrics = createMetrics({
      bus: new EventBus<BuildEvents>(),
      orchestrator: { queue: { running: 0, queued: 0 } },
      store,
      arch: 'x86_64',
    });
    const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second));
    for (const base of ['alpha', 'beta', 'gamma', 'delta', 'never', 'nor']) {
      await store.insertPackage(samplePackage(base));
      await store.putGate(emptyGateRecord(base));
    }
    // each package's newest build counts, whatever its older ones were
    await store.insertBuild(sampleBuild('alpha', at(1), { state: { state: 'failure' } }));
    await store.insertBuild(sampleBuild('alpha', at(2), { state: { state: 'success' } }));
    await store.insertBuild(sampleBuild('beta', at(3), { state: { state: 'success' } }));
    await store.insertBuild(sampleBuild('gamma', at(4), { state: { state: 'running', info: 'build' } }));
    await store.insertBuild(sampleBuild('gamma', at(0), { state: { state: 'success' } }));
    await store.insertBuild(sampleBuild('delta', at(5), { state: { state: 'cancelled', info: 'x' } }));
    await store.putGate({
      ...emptyGateRecord('beta'),
      held: {
        revision: 'b'.repeat(40),
        state: 'b'.repeat(40),
        baseRevision: 'a'.repeat(40),
        version: '2-1',
        reasons: [{ kind: 'diff', message: 'build() changed' }],
        detected: at(6),
        modified: at(6),
        trust: { maintainer: 'eve', coMaintainers: [], packagers: [] },
        files: [],
      },
    });

    const text = await metrics.registry.metrics();
    const series = (name: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`))
        .sort();
    expect(series('serene_packages')).toEqual([
      'serene_packages{state="cancelled"} 1',
      'serene_packages{state="failure"} 0',
      'serene_packages{state="fatal"} 0',
      'serene_packages{state="none"} 2',
      'serene_packages{state="pending"} 0',
      'serene_packages{state="running"} 1',
      'serene_packages{state="success"} 2',
    ]);
    expect(series('serene_gate_held_update')).toEqual([
      `serene_gate_held_update{package="beta",version="2-1",revision="${'b'.repeat(40)}"} 1`,
    ]);
    expect(series('serene_gate_held_updates')).toContain('serene_gate_held_updates{reason="diff"} 1');
    expect(series('serene_gate_held_updates')).toContain('serene_gate_held_updates{reason="cool-off"} 0');
  });
});
