#!/usr/bin/env node
// Issue 16: a scheduled build session of N packages on simulated engines while the API is queried.
//
//   npm run build && node bench/engines.mjs [--packages 20000] [--engines 4] [--capacity 2]
//     [--build-ms 20] [--list-rate 4] [--get-rate 20] [--warmup 10] [--publisher noop|filesystem]
//     [--timeout 1800] [--profile] [--live-heap] [--heap-snapshot BUILDS] [--alloc-profile]
//     [--node-options '...']
//
// The server is the host's own composition (`startServer` of @serene/host: `createSerene`, the
// HTTP application with its default plugins, metrics and dashboard, the listener), configured from
// the same variables a deployment sets (DATA_DIR in a temp folder, so the SQLite store is
// DATA_DIR/serene.db; ENGINES; SCHEDULE), in a child process of its own. Its runner is the real
// engine pool of @serene/plugin-docker (`createDockerEnginePool`, placement and slots as in
// production) over `--engines` simulated engines of `--capacity` builds each: the pool's
// `createRunner` option gives every engine core's instant runner (no container: it reads the
// .SRCINFO and writes a small valid package, after `--build-ms`) behind the Docker runner's
// surface (ping, engine info). The publisher does nothing by default (`--publisher noop`): a
// publish into the repository database is measured by bench/repo-db.mjs, and a serial rewrite of a
// 20,000-entry database per build would measure that instead of the queue; `--publisher
// filesystem` uses the host's own. The sync databases are a fixed list (no mirror is reached).
//
// Before the server starts, this process writes N raw-PKGBUILD packages (each built once before,
// at an older PKGBUILD, so that the schedule rebuilds every one) into the SQLite store, with their
// source folders; in groups of ten, nine depend on the first (and all on glibc, which the sync
// databases the server is given provide). SCHEDULE is set to one second `--warmup` seconds after
// the start, so the host's scheduler starts one session of all N packages (reason `schedule`, as a
// nightly run).
//
// Measured, from this process (the load generator, one keep-alive connection per stream):
//   - GET /package/list at `--list-rate` and GET /package/<random name> at `--get-rate` requests a
//     second (paced: the next request waits for the previous answer): p50/p95/p99/max while the
//     session runs (the goal: p99 < 50 ms), and before it (idle, for comparison);
//   - the peer, in the same run and at the same rates: nginx (one worker) serving a static file of
//     the same size as each answer (the list as fetched before the session, one package's answer);
//   - the server's peak RSS (VmHWM of /proc/PID/status, read from outside; goal < 300 MB);
//   - the queue overhead per build (goal < 5 ms): the session's wall time (from the schedule's
//     second to the last build's end) less the runner's own time as `--engines x --capacity` slots
//     would pack it, divided by the builds; and, per build, the time from a slot freeing on an
//     engine to the next build starting on that engine.
// With --profile the server runs under `node --cpu-prof` (the profile goes to bench/out/engines/);
// with --live-heap its in-process memory peaks are taken after a full GC (live objects only); with
// --heap-snapshot N it writes a heap snapshot when N builds have ended; with --alloc-profile it
// samples every allocation of the session, collected ones too (V8's sampling heap profiler, one
// sample per 32 KiB; bench/out/engines/session.heapprofile, for Chrome's DevTools or a script);
// --node-options '...' are
// given to the server's node (V8's heap flags, for instance).
// Results go to stdout and bench/out/engines/results.json.
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import { ensureTools, fmtBytes, get, machine, positiveInt, startNginx } from './lib/helpers.mjs';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'bench/out/engines');
// the testing index pulls in vitest: the instant runner is imported from its own file
const INSTANT_RUNNER = path.join(ROOT, 'packages/core/dist/testing/instant-runner.js');
const HOST = path.join(ROOT, 'packages/host/dist/index.js');
const ARCH = 'x86_64';
const SECRET = 'bench-secret';
/** Goals of issue 16. */
const GOALS = { p99Ms: 50, rssMb: 300, overheadMs: 5 };

const { values: args } = parseArgs({
  // not strict: bench/run.mjs passes every bench the same arguments
  strict: false,
  options: {
    packages: { type: 'string', default: '20000' },
    engines: { type: 'string', default: '4' },
    capacity: { type: 'string', default: '2' },
    'build-ms': { type: 'string', default: '20' },
    'list-rate': { type: 'string', default: '4' },
    'get-rate': { type: 'string', default: '20' },
    warmup: { type: 'string', default: '10' },
    publisher: { type: 'string', default: 'noop' },
    timeout: { type: 'string', default: '1800' },
    profile: { type: 'boolean', default: false },
    'live-heap': { type: 'boolean', default: false },
    'heap-snapshot': { type: 'string' },
    'alloc-profile': { type: 'boolean', default: false },
    'node-options': { type: 'string' },
    serve: { type: 'string' },
    settings: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(
    'usage: node bench/engines.mjs [--packages N] [--engines N] [--capacity N] [--build-ms MS] [--list-rate N] [--get-rate N] [--warmup S] [--publisher noop|filesystem] [--timeout S] [--profile]',
  );
  process.exit(0);
}

if (args.serve) await serve(args.serve, JSON.parse(args.settings ?? '{}'));
else {
  // stopped from outside (Ctrl-C, timeout): main() fails as the server goes, which is no news
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => (stopping = true));
  await main().catch((error) => {
    if (!stopping) throw error;
  });
}

// --- The measuring process ------------------------------------------------------------------------

async function main() {
  const settings = {
    packages: positiveInt(args.packages, '--packages'),
    engines: positiveInt(args.engines, '--engines'),
    capacity: positiveInt(args.capacity, '--capacity'),
    buildMs: Number(args['build-ms']),
    listRate: Number(args['list-rate']),
    getRate: Number(args['get-rate']),
    warmupS: positiveInt(args.warmup, '--warmup'),
    publisher: args.publisher,
    timeoutS: positiveInt(args.timeout, '--timeout'),
    heapSnapshotAt: args['heap-snapshot'] === undefined ? undefined : Number(args['heap-snapshot']),
    allocProfile: args['alloc-profile'],
  };
  if (!(settings.buildMs >= 0))
    throw new Error(`--build-ms must be a number >= 0, not '${args['build-ms']}'`);
  if (!(settings.listRate > 0 && settings.getRate > 0))
    throw new Error('--list-rate and --get-rate must be > 0');
  if (!['noop', 'filesystem'].includes(settings.publisher))
    throw new Error(`--publisher is noop or filesystem, not '${settings.publisher}'`);
  for (const file of [INSTANT_RUNNER, HOST]) {
    if (!existsSync(file))
      throw new Error(`${path.relative(ROOT, file)} is missing: run 'npm run build' first`);
  }
  if (!ensureTools(['nginx'], log)) {
    console.log('engines bench skipped: nginx is needed (apt-get install nginx-light, as root)');
    return;
  }
  await fs.mkdir(OUT, { recursive: true });
  const loadStart = os.loadavg();
  log(`load average at the start: ${loadStart.map((l) => l.toFixed(2)).join(', ')}`);

  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-bench-engines-'));
  const results = {
    machine: machine(),
    date: new Date().toISOString(),
    settings,
    load: { start: loadStart },
  };
  let server;
  let nginx;
  // stopped from outside (Ctrl-C, timeout): the server and nginx go too
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, async () => {
      nginx?.stop();
      await server?.stop();
      await fs.rm(dataDir, { recursive: true, force: true });
      process.exit(1);
    });
  }
  try {
    let begin = performance.now();
    await prepareData(dataDir, settings.packages);
    log(
      `store and sources of ${settings.packages} packages written in ${((performance.now() - begin) / 1000).toFixed(1)} s`,
    );

    begin = performance.now();
    server = await startServerProcess(dataDir, settings);
    log(
      `server (pid ${server.pid}) listening on port ${server.port} after ${((performance.now() - begin) / 1000).toFixed(1)} s; ` +
        `the session starts at ${new Date(server.fireAt).toISOString()}`,
    );

    // the peer's files: the answers as they are now, served by nginx
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const list = await get(server.port, '/package/list', { Authorization: SECRET }, agent);
    if (list.status !== 200) throw new Error(`GET /package/list answered ${list.status}`);
    const listed = JSON.parse(list.body.toString('utf8')).length;
    if (listed !== settings.packages)
      throw new Error(`GET /package/list listed ${listed} packages, not ${settings.packages}`);
    const one = await get(server.port, `/package/${packageName(0)}`, { Authorization: SECRET }, agent);
    if (one.status !== 200) throw new Error(`GET /package/${packageName(0)} answered ${one.status}`);
    agent.destroy();
    const staticDir = path.join(OUT, 'static');
    await fs.mkdir(staticDir, { recursive: true });
    await fs.writeFile(path.join(staticDir, 'list.json'), list.body);
    await fs.writeFile(path.join(staticDir, 'package.json'), one.body);
    nginx = await startNginx({ prefix: path.join(OUT, 'nginx'), root: staticDir, arch: ARCH, workers: 1 });
    results.sizes = { listBytes: list.length, packageBytes: one.length };
    log(
      `list answer ${fmtBytes(list.length)}, package answer ${fmtBytes(one.length)}; nginx on port ${nginx.port}`,
    );

    // the load: four paced streams, each on its own keep-alive connection
    const names = settings.packages;
    const streams = [
      stream('serene list', server.port, () => '/package/list', settings.listRate, SECRET),
      stream(
        'serene package',
        server.port,
        () => `/package/${packageName(randomIndex(names))}`,
        settings.getRate,
        SECRET,
      ),
      stream('nginx list', nginx.port, () => `/${ARCH}/list.json`, settings.listRate),
      stream('nginx package', nginx.port, () => `/${ARCH}/package.json`, settings.getRate),
    ];
    const memory = sampleMemory(server.pid);
    log(`querying; waiting for the session (timeout ${settings.timeoutS} s)`);
    const session = await server.session(settings.timeoutS * 1000);
    const sessionEnd = performance.timeOrigin + performance.now();
    for (const s of streams) s.stop();
    await Promise.all(streams.map((s) => s.done));
    memory.stop();
    results.memory = { ...memory.result(), ...(await procStatus(server.pid)) };
    results.session = session;

    // --- figures ---
    const window = (samples, from, to) => samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.ms);
    results.latency = {};
    for (const s of streams) {
      const during = s.samples.filter((sample) => sample.at >= server.fireAt && sample.at <= sessionEnd);
      results.latency[s.name] = {
        session: summary(window(s.samples, server.fireAt, sessionEnd)),
        idle: summary(window(s.samples, 0, server.fireAt)),
        errors: s.errors,
        // where in the session the slowest answers came (ms after the schedule's second)
        slowest: [...during]
          .sort((a, b) => b.ms - a.ms)
          .slice(0, 10)
          .map((sample) => ({ atMs: Math.round(sample.at - server.fireAt), ms: Math.round(sample.ms) })),
      };
    }
    const slots = settings.engines * settings.capacity;
    const wallMs = session.wallMs;
    const overheadMs = (wallMs - session.runnerMs / slots) / session.builds;
    results.overhead = {
      slots,
      perBuildMs: overheadMs,
      wallPerBuildMs: wallMs / session.builds,
      runnerPerBuildMs: session.runnerMs / session.builds,
      slotGap: session.gaps,
    };
    const list99 = results.latency['serene list'].session.p99;
    const get99 = results.latency['serene package'].session.p99;
    const rssMb = results.memory.hwmKb / 1024;
    results.goals = {
      listP99: { goal: `< ${GOALS.p99Ms} ms`, value: list99, met: list99 < GOALS.p99Ms },
      packageP99: { goal: `< ${GOALS.p99Ms} ms`, value: get99, met: get99 < GOALS.p99Ms },
      peakRss: { goal: `< ${GOALS.rssMb} MB`, value: rssMb, met: rssMb < GOALS.rssMb },
      queueOverhead: {
        goal: `< ${GOALS.overheadMs} ms`,
        value: overheadMs,
        met: overheadMs < GOALS.overheadMs,
      },
    };
  } finally {
    nginx?.stop();
    await server?.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
  results.load.end = os.loadavg();
  report(results);
  await fs.writeFile(path.join(OUT, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  log(`results written to ${path.relative(ROOT, path.join(OUT, 'results.json'))}`);
}

function report(results) {
  const { settings, session, overhead, latency, memory, goals } = results;
  const ms = (value) => (value === undefined ? '-' : `${value.toFixed(1)} ms`);
  console.log('');
  console.log(
    `session: ${session.builds} builds (${JSON.stringify(session.states)}) on ${settings.engines} engines x ${settings.capacity} ` +
      `in ${(session.wallMs / 1000).toFixed(1)} s; first build queued after ${(session.firstPendingMs / 1000).toFixed(1)} s`,
  );
  console.log('');
  console.log('| during the session | requests | p50 | p95 | p99 | max | idle p50 / p99 |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, figures] of Object.entries(latency)) {
    const s = figures.session;
    console.log(
      `| ${name} | ${s.count} | ${ms(s.p50)} | ${ms(s.p95)} | ${ms(s.p99)} | ${ms(s.max)} | ${ms(figures.idle.p50)} / ${ms(figures.idle.p99)} |`,
    );
  }
  const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(1)}x` : '-');
  console.log('');
  console.log(
    `serene / nginx at p99: list ${ratio(latency['serene list'].session.p99, latency['nginx list'].session.p99)}, ` +
      `package ${ratio(latency['serene package'].session.p99, latency['nginx package'].session.p99)}; ` +
      `answers ${fmtBytes(results.sizes.listBytes)} and ${fmtBytes(results.sizes.packageBytes)}`,
  );
  console.log(
    `server memory: peak RSS (VmHWM) ${(memory.hwmKb / 1024).toFixed(0)} MB; RSS at the session's start ${(memory.startKb / 1024).toFixed(0)} MB, sampled peak ${(memory.peakKb / 1024).toFixed(0)} MB`,
  );
  const peaks = Object.entries(session.memoryPeaksMb).map(([key, mb]) => `${key} ${mb.toFixed(0)}`);
  console.log(`server memory peaks (in-process, MB): ${peaks.join(', ')}`);
  const delay = session.eventLoopDelay;
  console.log(
    `server event loop delay during the session: p50 ${ms(delay.p50)}, p99 ${ms(delay.p99)}, max ${ms(delay.max)}`,
  );
  for (const [name, figures] of Object.entries(latency)) {
    const slow = figures.slowest.map((sample) => `${sample.ms} ms at ${(sample.atMs / 1000).toFixed(1)} s`);
    console.log(`slowest ${name}: ${slow.slice(0, 5).join(', ')}`);
  }
  console.log(
    `queue: wall ${overhead.wallPerBuildMs.toFixed(2)} ms a build, runner ${overhead.runnerPerBuildMs.toFixed(2)} ms a build on ${overhead.slots} slots; ` +
      `slot free to next start p50 ${ms(overhead.slotGap.p50)}, p99 ${ms(overhead.slotGap.p99)}, mean ${ms(overhead.slotGap.mean)}`,
  );
  console.log('');
  console.log('| goal | value | |');
  console.log('| --- | ---: | --- |');
  const show = {
    listP99: ['GET /package/list p99', ms],
    packageP99: ['GET /package/<name> p99', ms],
    peakRss: ['server peak RSS', (v) => `${v.toFixed(0)} MB`],
    queueOverhead: ['queue overhead per build', (v) => `${v.toFixed(2)} ms`],
  };
  for (const [key, goal] of Object.entries(goals)) {
    const [label, format] = show[key];
    console.log(`| ${label} ${goal.goal} | ${format(goal.value)} | ${goal.met ? 'met' : '**missed**'} |`);
  }
  console.log('');
  log(`load average at the end: ${results.load.end.map((l) => l.toFixed(2)).join(', ')}`);
}

/** The store (SQLite at DATA_DIR/serene.db) and source folders of `count` raw-PKGBUILD packages. */
async function prepareData(dataDir, count) {
  const { createKnexStore, rawSourceState } = await import('@serene/core');
  const { secretToken } = await import('@serene/plugin-repo-http');
  const sourcesDir = path.join(dataDir, 'sources');
  await fs.writeFile(path.join(dataDir, 'authorized_secrets'), `${secretToken(SECRET)} bench\n`);
  const store = createKnexStore({ filename: path.join(dataDir, 'serene.db') });
  await store.open();
  const day = Date.UTC(2025, 0, 1);
  const packages = [];
  for (let i = 0; i < count; i++) {
    const base = packageName(i);
    const pkgver = `${1 + (i % 5)}.${i % 11}.0`;
    // in groups of ten: the first depends on glibc (a sync database's), the others on it too
    const head = i - (i % 10);
    const depends = head === i ? ['glibc'] : ['glibc', `${packageName(head)}>=1`];
    const pkgbuild = `pkgname=${base}\npkgver=${pkgver}\npkgrel=1\narch=('any')\ndepends=(${depends.map((d) => `'${d}'`).join(' ')})\npackage() { :; }\n`;
    const srcinfo = [
      `pkgbase = ${base}`,
      `\tpkgdesc = synthetic benchmark package number ${i}`,
      `\tpkgver = ${pkgver}`,
      '\tpkgrel = 1',
      '\tarch = any',
      ...depends.map((dep) => `\tdepends = ${dep}`),
      '',
      `pkgname = ${base}`,
      '',
    ].join('\n');
    packages.push({ base, pkgver, pkgbuild, srcinfo });
  }
  for (let i = 0; i < count; i += 1000) {
    await Promise.all(
      packages.slice(i, i + 1000).map(async ({ base, pkgbuild, srcinfo }) => {
        const dir = path.join(sourcesDir, base);
        await fs.mkdir(dir, { recursive: true });
        await fs.writeFile(path.join(dir, 'PKGBUILD'), pkgbuild);
        await fs.writeFile(path.join(dir, '.SRCINFO'), srcinfo);
      }),
    );
  }
  await store.transaction(async (tx) => {
    for (const [i, { base, pkgver, pkgbuild, srcinfo }] of packages.entries()) {
      await tx.insertPackage({
        base,
        added: new Date(day + i * 1000),
        source: {
          devel: false,
          srcinfo_override: false,
          srcinfo,
          devel_revisions: {},
          inner: { type: 'RawSource', pkgbuild },
        },
        srcinfo,
        pkgbuild,
        enabled: true,
        clean: false,
        private: false,
        dependency: false,
        schedule: null,
        prepare: null,
        flags: [],
        // built before at another PKGBUILD: the schedule builds it again
        builtState: rawSourceState(`${pkgbuild}# older\n`),
        failedState: null,
      });
      const started = new Date(day + i * 1000);
      await tx.insertBuild({
        package: base,
        started,
        ended: new Date(started.getTime() + 60_000),
        state: { state: 'success' },
        reason: 'initial',
        version: `${pkgver}-1`,
        runSuccess: true,
        runStarted: started,
        runEnded: new Date(started.getTime() + 59_000),
        stats: null,
      });
    }
  });
  await store.close();
}

/** Starts the server process; resolves once it listens, with its port, pid and the session's promise. */
async function startServerProcess(dataDir, settings) {
  const logFile = path.join(OUT, 'server.log');
  const child = spawn(
    process.execPath,
    [
      ...(args.profile ? ['--cpu-prof', '--cpu-prof-dir', OUT] : []),
      ...(args['live-heap'] ? ['--expose-gc'] : []),
      ...(args['node-options'] ? args['node-options'].split(' ').filter(Boolean) : []),
      import.meta.filename,
      '--serve',
      dataDir,
      '--settings',
      JSON.stringify(settings),
    ],
    { stdio: ['ignore', openSync(logFile, 'w'), 'inherit', 'ipc'] },
  );
  const messages = [];
  let notify;
  child.on('message', (message) => {
    messages.push(message);
    notify?.();
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
    notify?.();
  });
  const next = async (type, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = messages.find((message) => message.type === type || message.type === 'error');
      if (found?.type === 'error') throw new Error(`the server failed: ${found.message}`);
      if (found) return found;
      if (exited)
        throw new Error(`the server exited (code ${child.exitCode}); see ${path.relative(ROOT, logFile)}`);
      if (Date.now() > deadline) throw new Error(`no '${type}' from the server within ${timeoutMs / 1000} s`);
      await new Promise((resolve) => {
        notify = resolve;
        setTimeout(resolve, 1000).unref();
      });
    }
  };
  const ready = await next('ready', 300_000);
  return {
    pid: child.pid,
    port: ready.port,
    fireAt: ready.fireAt,
    session: async (timeoutMs) => (await next('session', timeoutMs)).session,
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      const deadline = Date.now() + 30_000;
      while (!exited && Date.now() < deadline) await sleep(50);
      if (!exited) child.kill('SIGKILL');
    },
  };
}

/**
 * A paced stream of GETs on one keep-alive connection: one every 1/rate s, or right after the
 * previous answer when that took longer. Each sample is the time to the answer's last byte.
 */
function stream(name, port, pathname, rate, secret) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const headers = secret ? { Authorization: secret } : {};
  const interval = 1000 / rate;
  const samples = [];
  let errors = 0;
  let stopped = false;
  const done = (async () => {
    let next = performance.now();
    while (!stopped) {
      const begin = performance.now();
      const target = pathname();
      try {
        const reply = await get(port, target, headers, agent);
        if (reply.status !== 200) throw new Error(`${name}: GET ${target} answered ${reply.status}`);
        samples.push({ at: performance.timeOrigin + begin, ms: performance.now() - begin });
      } catch (error) {
        errors++;
        if (errors <= 3) log(`${name}: ${error.message}`);
      }
      next = Math.max(next + interval, performance.now());
      await sleep(next - performance.now());
    }
    agent.destroy();
  })();
  return {
    name,
    samples,
    done,
    get errors() {
      return errors;
    },
    stop: () => {
      stopped = true;
    },
  };
}

/** Samples the server's RSS every 250 ms from /proc. */
function sampleMemory(pid) {
  let startKb;
  let peakKb = 0;
  const timer = setInterval(async () => {
    const status = await procStatus(pid).catch(() => undefined);
    if (!status) return;
    startKb ??= status.rssKb;
    peakKb = Math.max(peakKb, status.rssKb);
  }, 250);
  return { stop: () => clearInterval(timer), result: () => ({ startKb, peakKb }) };
}

/** VmRSS and VmHWM (peak RSS) of a process, in KiB. */
async function procStatus(pid) {
  const text = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]);
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
}

// --- The server process ---------------------------------------------------------------------------

/**
 * The host composed from its configuration (DATA_DIR = `dataDir`), with the engine pool over
 * simulated engines as its runner; reports `ready` and then the `session` over IPC.
 */
async function serve(dataDir, settings) {
  try {
    const { createNoopLogger } = await import('@serene/core');
    const { createDockerEnginePool } = await import('@serene/plugin-docker');
    const { readConfig, startServer } = await import(HOST);
    const { createInstantRunner } = await import(INSTANT_RUNNER);

    // the session: one second, `warmup` seconds from now (SCHEDULE is in UTC, with seconds and a year)
    const fireAt = Math.ceil((Date.now() + settings.warmupS * 1000) / 1000) * 1000;
    const at = new Date(fireAt);
    const schedule = `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} ${at.getUTCDate()} ${at.getUTCMonth() + 1} * ${at.getUTCFullYear()}`;
    const engines = Array.from({ length: settings.engines }, (_, i) => ({
      name: `sim-${i}`,
      url: `unix:///simulated/engine-${i}.sock`,
      arch: ARCH,
      capacity: settings.capacity,
    }));
    const config = readConfig(
      {
        DATA_DIR: dataDir,
        PORT: '0',
        HOST: '127.0.0.1',
        ARCH,
        SCHEDULE: schedule,
        ENGINES: JSON.stringify(engines),
        BUILD_CLI: 'false',
      },
      dataDir,
    );

    // the runner's own time and, per engine, the time from a slot freeing to the next build on it
    const stats = { runnerMs: 0, runs: 0, gaps: [] };
    const simulated = (options) => {
      const inner = createInstantRunner({ arch: ARCH, delayMs: settings.buildMs });
      const freed = [];
      return {
        name: 'simulated',
        endpoint: options.url,
        image: 'simulated',
        pullImage: async () => true,
        removeLeftovers: async () => [],
        ping: async () => true,
        engineInfo: async () => ({ arch: ARCH, cpus: 2, memoryBytes: 2 ** 32, version: 'simulated' }),
        init: async () => {},
        remove: async () => {},
        printSrcinfo: (dir, printOptions) => inner.printSrcinfo(dir, printOptions),
        async run(job, runOptions) {
          const begin = performance.now();
          if (freed.length > 0) stats.gaps.push(begin - freed.shift());
          try {
            return await inner.run(job, runOptions);
          } finally {
            const end = performance.now();
            stats.runnerMs += end - begin;
            stats.runs++;
            freed.push(end);
            // the instant runner keeps every job it saw (for tests): not the server's memory
            inner.jobs.length = 0;
            inner.started.length = 0;
          }
        },
      };
    };
    const runner = createDockerEnginePool({
      engines: engines.map((engine) => ({ ...engine })),
      createRunner: simulated,
      logger: createNoopLogger(),
    });
    const noop = {
      name: 'noop',
      init: async () => {},
      publish: async () => ({ added: [], replaced: [] }),
      remove: async () => [],
      list: async () => [],
    };
    const server = await startServer({
      config,
      parts: {
        runner,
        signer: undefined,
        // no mirror is reached: the sync databases hold glibc, which every package depends on
        syncDatabases: {
          refresh: async () => {},
          providers: () => [{ name: 'glibc', version: '2.40-1', provides: [] }],
        },
        ...(settings.publisher === 'noop' ? { publisher: noop } : {}),
      },
    });

    // how long the event loop was held up, while the session runs (ms)
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    setTimeout(() => loopDelay.enable(), Math.max(0, fireAt - Date.now())).unref();

    // what the memory is made of, at its peak (sampled every 250 ms); with --live-heap (a
    // diagnosis: it changes the timing) after a full GC every 2 s, so that the heap is what is live
    const heap = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
    setInterval(
      () => {
        globalThis.gc?.();
        const usage = process.memoryUsage();
        for (const key of Object.keys(heap)) heap[key] = Math.max(heap[key], usage[key] / 2 ** 20);
        // the timeline of the live heap, to stderr (relative to the schedule's second)
        if (globalThis.gc)
          console.error(
            `memory at ${((Date.now() - fireAt) / 1000).toFixed(0)} s (MB): ${Object.entries(usage)
              .map(([key, value]) => `${key} ${(value / 2 ** 20).toFixed(0)}`)
              .join(', ')}`,
          );
      },
      globalThis.gc ? 2000 : 250,
    ).unref();

    // every allocation of the session, sampled (collected objects included)
    let allocations;
    if (settings.allocProfile) {
      const { Session } = await import('node:inspector/promises');
      allocations = new Session();
      allocations.connect();
      setTimeout(
        () =>
          void allocations.post('HeapProfiler.startSampling', {
            samplingInterval: 32 * 1024,
            includeObjectsCollectedByMajorGC: true,
            includeObjectsCollectedByMinorGC: true,
          }),
        Math.max(0, fireAt - Date.now()),
      ).unref();
    }

    // the session ends when every package's scheduled build has ended
    const ended = { success: 0, failure: 0, fatal: 0, cancelled: 0 };
    let endedCount = 0;
    let firstPending;
    let lastEnd;
    server.bus.on('state', ({ state, reason }) => {
      if (reason !== 'schedule') return;
      if (state.state === 'pending') firstPending ??= Date.now();
      if (!(state.state in ended)) return;
      ended[state.state]++;
      endedCount++;
      if (endedCount === settings.heapSnapshotAt) {
        const file = writeHeapSnapshot(path.join(OUT, `server-${endedCount}.heapsnapshot`));
        console.error(`heap snapshot written to ${path.relative(ROOT, file)}`);
      }
      lastEnd = Date.now();
      if (endedCount !== settings.packages) return;
      // the profile is written before the session is reported (the server is stopped then)
      const written = allocations
        ? allocations.post('HeapProfiler.stopSampling').then(async ({ profile }) => {
            const file = path.join(OUT, 'session.heapprofile');
            await fs.writeFile(file, JSON.stringify(profile));
            console.error(`allocation profile written to ${path.relative(ROOT, file)}`);
          })
        : Promise.resolve();
      const report = {
        builds: endedCount,
        states: { ...ended },
        wallMs: lastEnd - fireAt,
        firstPendingMs: firstPending - fireAt,
        runnerMs: stats.runnerMs,
        runs: stats.runs,
        memoryPeaksMb: { ...heap },
        eventLoopDelay: {
          p50: loopDelay.percentile(50) / 1e6,
          p99: loopDelay.percentile(99) / 1e6,
          max: loopDelay.max / 1e6,
        },
      };
      void written.then(() => {
        if (!process.connected) return;
        const gaps = stats.gaps.sort((a, b) => a - b);
        process.send({
          type: 'session',
          session: {
            ...report,
            gaps: { ...summary(gaps, true), mean: gaps.reduce((a, b) => a + b, 0) / gaps.length },
          },
        });
      });
    });
    const port = Number(new URL(server.url).port);
    if (Date.now() >= fireAt - 1000) {
      throw new Error(`the server took longer than --warmup (${settings.warmupS} s) to start: raise it`);
    }
    process.send({ type: 'ready', port, fireAt });
    process.on('SIGTERM', async () => {
      await server.close();
      process.exit(0);
    });
  } catch (error) {
    process.send?.({ type: 'error', message: error instanceof Error ? error.stack : String(error) });
    process.exit(1);
  }
}

// --- Helpers --------------------------------------------------------------------------------------

function packageName(i) {
  return `bench-${String(i).padStart(5, '0')}`;
}

function randomIndex(count) {
  return Math.floor(Math.random() * count);
}

/** p50/p95/p99/max of samples in ms (sorted when `sorted`). */
function summary(samples, sorted = false) {
  const values = sorted ? samples : [...samples].sort((a, b) => a - b);
  if (values.length === 0) return { count: 0 };
  const at = (q) => values[Math.min(values.length - 1, Math.ceil(q * values.length) - 1)];
  return { count: values.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: values[values.length - 1] };
}

function log(message) {
  console.log(message);
}
