/**
 * `GET /metrics` in the Prometheus text format (beyond the original): builds by state and reason,
 * build durations, the build queue, packages by the state of their latest build, HTTP requests, and
 * the process's own figures. prom-client does the format; a registry per server, so that several
 * servers in one process (tests) do not share counters.
 */
import type { BuildEvents, BuildOrchestrator, BuildState, EngineStatus, EventBus, Store } from '@serene/core';
import type { HttpPlugin } from '@serene/plugin-repo-http';
import type Koa from 'koa';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Every build state, as `serene_packages` labels them. */
const BUILD_STATES = [
  'pending',
  'running',
  'success',
  'failure',
  'fatal',
  'cancelled',
] as const satisfies readonly BuildState['state'][];

/** Terminal build states, counted once a build reaches them. */
const DONE = new Set(['success', 'failure', 'fatal', 'cancelled']);

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  bus: EventBus<BuildEvents>;
  orchestrator: Pick<BuildOrchestrator, 'queue'>;
  store: Pick<Store, 'countPackages' | 'countLatestBuilds' | 'listGates'>;
  /** `ARCH`: the architecture of builds that name none; requests below `/<arch>/` are `repository` */
  arch: string;
  /**
   * every served architecture (docs/engines.md#architectures): requests below each one's repository
   * are counted as `repository` @default [arch]
   */
  arches?: readonly string[];
  /**
   * the engines with their state and load (`PackageService.engines`: the Docker Engines of
   * `ENGINES`, or the one engine), for the per-engine gauges
   */
  engines?: () => Promise<readonly EngineStatus[]> | readonly EngineStatus[];
  /** the clock @default Date.now */
  now?: () => number;
}

/**
 * The server's metrics: an HTTP plugin whose outer middleware answers `GET /metrics` and times
 * every request (with the status it finally gets).
 */
export interface Metrics extends HttpPlugin {
  registry: Registry;
  /** the Koa middleware (also `outer`): answers `GET /metrics` and times every request */
  middleware: Koa.Middleware;
  outer: Koa.Middleware;
  /** Stops listening to the bus (also `stop`). */
  close(): void;
}

/** Creates the registry and subscribes to the build events. */
export function createMetrics(options: MetricsOptions): Metrics {
  const now = options.now ?? Date.now;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'serene_' });

  const builds = new Counter({
    name: 'serene_builds_total',
    help: 'Builds that ended, by end state, reason and architecture',
    labelNames: ['state', 'reason', 'arch'] as const,
    registers: [registry],
  });
  const started = new Counter({
    name: 'serene_builds_started_total',
    help: 'Builds that started running (left the queue), by reason and architecture',
    labelNames: ['reason', 'arch'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'serene_build_duration_seconds',
    help: 'Time from a build being queued to its end, by end state and architecture',
    labelNames: ['state', 'arch'] as const,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400],
    registers: [registry],
  });
  new Gauge({
    name: 'serene_build_queue',
    help: 'Builds running and builds waiting for a slot (CONCURRENT_BUILDS)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const queue = options.orchestrator.queue;
      this.set({ state: 'running' }, queue.running);
      this.set({ state: 'queued' }, queue.queued);
    },
  });
  if (options.engines) {
    const engines = options.engines;
    // one look at the engines serves every gauge of a scrape (the one engine is pinged for it)
    let seen: { at: number; list: Promise<readonly EngineStatus[]> } | undefined;
    const current = () => {
      if (!seen || now() - seen.at > 1000) seen = { at: now(), list: Promise.resolve(engines()) };
      return seen.list;
    };
    const perEngine = (name: string, help: string, value: (e: EngineStatus) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['engine', 'arch'] as const,
        registers: [registry],
        async collect() {
          const list = await current();
          this.reset();
          for (const engine of list) {
            const v = value(engine);
            if (v !== undefined) this.set({ engine: engine.name, arch: engine.arch ?? 'unknown' }, v);
          }
        },
      });
    perEngine('serene_engine_up', 'Whether an engine answers (1) or is down or not asked yet (0)', (e) =>
      e.state === 'up' ? 1 : 0,
    );
    perEngine('serene_engine_capacity', 'Builds an engine runs at once', (e) => e.capacity);
    perEngine('serene_engine_running', 'Builds running on an engine now', (e) => e.running);
    perEngine(
      'serene_engine_lost_builds',
      'Builds taken from a Docker Engine that went away, since the start (ENGINES)',
      (e) => e.lost,
    );
  }
  new Gauge({
    name: 'serene_packages',
    help: 'Packages by the state of their latest build (`none` when never built)',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      // counted by the store: a scrape reads no package and no build, where it read both tables
      // whole, every row mapped in one turn of the event loop (issue 16, docs/benchmarks.md)
      const [packages, latest] = await Promise.all([
        options.store.countPackages(),
        options.store.countLatestBuilds(),
      ]);
      // every build belongs to a package (deleting a package deletes its builds): the others never
      // built; the two counts are two reads, so a package removed in between could make this negative
      const built = BUILD_STATES.reduce((sum, state) => sum + (latest[state] ?? 0), 0);
      this.reset();
      this.set({ state: 'none' }, Math.max(0, packages - built));
      for (const state of BUILD_STATES) this.set({ state }, latest[state] ?? 0);
    },
  });
  // the update gate (docs/update-gate.md): what is held now, and what happened at the gate
  new Gauge({
    name: 'serene_gate_held_updates',
    help: 'Updates the update gate holds, by reason (an update held for several reasons counts once in each)',
    labelNames: ['reason'] as const,
    registers: [registry],
    async collect() {
      const counts = new Map<string, number>(
        [
          'cool-off',
          'maintainer',
          'orphaned',
          'adopted',
          'co-maintainer',
          'packager',
          'blocked',
          'diff',
          'review',
          'error',
        ].map((reason) => [reason, 0]),
      );
      for (const gate of await options.store.listGates({ heldOnly: true })) {
        for (const kind of new Set(gate.held?.reasons.map((reason) => reason.kind) ?? [])) {
          counts.set(kind, (counts.get(kind) ?? 0) + 1);
        }
      }
      this.reset();
      for (const [reason, count] of counts) this.set({ reason }, count);
    },
  });
  new Gauge({
    name: 'serene_gate_held_update',
    help: 'One series per held update: 1, labelled with the package, its held version and revision',
    labelNames: ['package', 'version', 'revision'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const gate of await options.store.listGates({ heldOnly: true })) {
        if (gate.held) {
          this.set({ package: gate.base, version: gate.held.version, revision: gate.held.revision }, 1);
        }
      }
    },
  });
  const gateEvents = new Counter({
    name: 'serene_gate_events_total',
    help: 'Decisions of the update gate: updates held (a new revision or new reasons), released (cool-off over), approved, rejected',
    labelNames: ['action'] as const,
    registers: [registry],
  });
  for (const action of ['held', 'released', 'approved', 'rejected']) gateEvents.inc({ action }, 0);
  const stopGate = options.bus.on('gate', (event) => gateEvents.inc({ action: event.action }));

  const requests = new Counter({
    name: 'serene_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: 'serene_http_request_duration_seconds',
    help: 'Time to answer an HTTP request (to the end of its headers for streams), by route',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });

  // builds: the queue time of each build, its reason, and its end
  const reasons = new Map<string, { reason: string; queued: number; running: boolean }>();
  const key = (base: string, time: Date) => `${base}\u0000${time.getTime()}`;
  const unsubscribe = options.bus.on('state', (event) => {
    const id = key(event.base, event.started);
    const state = event.state.state;
    // the build's architecture; an event without one is of `ARCH` (docs/engines.md#architectures)
    const arch = event.arch ?? options.arch;
    if (state === 'pending') {
      reasons.set(id, { reason: event.reason ?? 'unknown', queued: now(), running: false });
      return;
    }
    const known = reasons.get(id);
    if (state === 'running' && known && !known.running) {
      known.running = true;
      started.inc({ reason: known.reason, arch });
    }
    if (DONE.has(state)) {
      reasons.delete(id);
      builds.inc({ state, reason: known?.reason ?? event.reason ?? 'unknown', arch });
      if (known) duration.observe({ state, arch }, (now() - known.queued) / 1000);
    }
  });

  const repositories = options.arches ?? [options.arch];
  const isRepository = (pathname: string) =>
    repositories.some((arch) => pathname === `/${arch}` || pathname.startsWith(`/${arch}/`));
  const middleware: Koa.Middleware = async (ctx, next) => {
    if (ctx.path === '/metrics' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.set('Content-Type', registry.contentType);
      ctx.body = await registry.metrics();
      return;
    }
    const begin = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const matched = (ctx as unknown as { _matchedRoute?: string })._matchedRoute;
      const route =
        typeof matched === 'string' ? matched : isRepository(ctx.path) ? 'repository' : 'unmatched';
      requests.inc({ method: ctx.method, route, status: String(ctx.status) });
      requestDuration.observe({ route }, Number(process.hrtime.bigint() - begin) / 1e9);
    }
  };

  const stop = () => {
    unsubscribe();
    stopGate();
  };
  return { name: 'metrics', registry, middleware, outer: middleware, close: stop, stop };
}
