#!/usr/bin/env node
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  ensureTools as ensure,
  fmtBytes,
  fmtNum,
  get,
  machine,
  pct,
  positiveInt,
  startNginx as startNginxIn,
} from './lib/helpers.mjs';
import {
  BENCH_DAY,
  BENCH_SECRET,
  BUILT,
  startBenchServer,
  syntheticBuild,
  syntheticPackage,
} from './lib/server.mjs';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'bench/out/http');
const ARCH = 'x86_64';
const SECRET = BENCH_SECRET;
/** Goals of the issue: ours / nginx, and the list latency in ms. */
const GOALS = { dbRequests: 0.7, bigThroughput: 0.8, listMedianMs: 50 };

const { values: args } = parseArgs({
  // not strict: bench/run.mjs passes every bench the same arguments
  strict: false,
  options: {
    packages: { type: 'string', default: '5000' },
    'db-packages': { type: 'string', default: '500' },
    'big-mb': { type: 'string', default: '100' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    'list-requests': { type: 'string', default: '200' },
    serve: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(
    'usage: node bench/http.mjs [--packages N] [--db-packages N] [--big-mb N] [--duration S] [--connections N] [--rounds N] [--list-requests N]',
  );
  process.exit(0);
}

if (args.serve) await serve(args.serve);
else await main();

// --- The measuring process ------------------------------------------------------------------------

async function main() {
  const packages = positiveInt(args.packages, '--packages');
  const dbPackages = positiveInt(args['db-packages'], '--db-packages');
  const bigMb = positiveInt(args['big-mb'], '--big-mb');
  const duration = positiveInt(args.duration, '--duration');
  const connections = positiveInt(args.connections, '--connections');
  const rounds = positiveInt(args.rounds, '--rounds');
  const listRequests = positiveInt(args['list-requests'], '--list-requests');
  for (const file of [BUILT.core, BUILT.syntheticPackage, BUILT.instantRunner, BUILT.repoHttp]) {
    if (!existsSync(file))
      throw new Error(`${path.relative(ROOT, file)} is missing: run 'npm run build' first`);
  }
  if (!ensure(['wrk', 'nginx'], log)) {
    console.log('http bench skipped: wrk and nginx are needed (apt-get install wrk nginx-light, as root)');
    return;
  }

  const repoDir = path.join(OUT, 'repository');
  const bigName = `big-1.0-1-${ARCH}.pkg.tar.zst`;
  log(`preparing the repository: ${dbPackages} packages in the database, a ${bigMb} MB package`);
  await prepareRepository(repoDir, dbPackages, bigName, bigMb * 1024 * 1024);
  const dbSize = (await fs.stat(path.join(repoDir, 'serene.db.tar.gz'))).size;

  log(
    `starting serene (${packages} packages in the store) and nginx; load average ${os.loadavg()[0].toFixed(2)}`,
  );
  const ours = await startOurs(repoDir, packages);
  const nginxOne = await startNginx('one', repoDir, 1);
  const nginxAuto = await startNginx('auto', repoDir, 'auto');
  const servers = [
    { name: 'serene', port: ours.port },
    { name: 'nginx (1 worker)', port: nginxOne.port },
    { name: 'nginx (auto)', port: nginxAuto.port },
  ];

  const results = {
    machine: machine(),
    date: new Date().toISOString(),
    settings: { packages, dbPackages, dbBytes: dbSize, bigMb, duration, connections, rounds },
    db: {},
    big: {},
    list: {},
  };
  try {
    // sanity: every server answers the same bytes
    for (const server of servers) {
      const reply = await get(server.port, `/${ARCH}/serene.db`);
      if (reply.status !== 200 || reply.length !== dbSize) {
        throw new Error(
          `${server.name} answered ${reply.status} with ${reply.length} bytes for the database`,
        );
      }
    }

    log(`(a) database (${fmtBytes(dbSize)}), ${connections} connections, ${duration} s x ${rounds} rounds`);
    for (const server of servers) wrk(server.port, `/${ARCH}/serene.db`, { connections, duration: 2 });
    for (let round = 0; round < rounds; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        const run = wrk(server.port, `/${ARCH}/serene.db`, { connections, duration });
        keepBest(results.db, server.name, run, 'requestsPerSec');
        log(
          `  ${server.name.padEnd(18)} ${fmtNum(run.requestsPerSec)} req/s  ${fmtBytes(run.bytesPerSec)}/s`,
        );
      }
    }

    log(`(b) ${bigMb} MB package, 4 connections, ${duration} s x ${rounds} rounds`);
    for (let round = 0; round < rounds; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        const run = wrk(server.port, `/${ARCH}/${bigName}`, { connections: 4, duration });
        keepBest(results.big, server.name, run, 'bytesPerSec');
        log(
          `  ${server.name.padEnd(18)} ${fmtBytes(run.bytesPerSec)}/s  (${fmtNum(run.requestsPerSec)} files/s)`,
        );
      }
    }

    log(`(c) GET /package/list with ${packages} packages, ${listRequests} sequential requests`);
    results.list = await listLatency(ours.port, listRequests, packages, false);
    log(
      `  warm: median ${results.list.medianMs.toFixed(1)} ms, p90 ${results.list.p90Ms.toFixed(1)} ms, ` +
        `${fmtBytes(results.list.bytes)} per answer`,
    );
    results.listCold = await listLatency(
      ours.port,
      Math.max(5, Math.round(listRequests / 20)),
      packages,
      true,
    );
    log(
      `  cold: median ${results.listCold.medianMs.toFixed(1)} ms, p90 ${results.listCold.p90Ms.toFixed(1)} ms`,
    );
  } finally {
    ours.stop();
    nginxOne.stop();
    nginxAuto.stop();
  }

  // --- report ---
  const ratio = (table, key, versus) => table.serene[key] / table[versus][key];
  const dbRatio = ratio(results.db, 'requestsPerSec', 'nginx (1 worker)');
  const bigRatio = ratio(results.big, 'bytesPerSec', 'nginx (1 worker)');
  results.ratios = {
    dbVsNginxOne: dbRatio,
    dbVsNginxAuto: ratio(results.db, 'requestsPerSec', 'nginx (auto)'),
    bigVsNginxOne: bigRatio,
    bigVsNginxAuto: ratio(results.big, 'bytesPerSec', 'nginx (auto)'),
  };
  results.goals = {
    dbRequests: {
      goal: `>= ${GOALS.dbRequests * 100}% of nginx`,
      value: dbRatio,
      met: dbRatio >= GOALS.dbRequests,
    },
    bigThroughput: {
      goal: `>= ${GOALS.bigThroughput * 100}% of nginx`,
      value: bigRatio,
      met: bigRatio >= GOALS.bigThroughput,
    },
    listMedian: {
      goal: `< ${GOALS.listMedianMs} ms`,
      value: results.list.medianMs,
      met: results.list.medianMs < GOALS.listMedianMs,
    },
  };
  console.log('');
  console.log(
    '| measure | serene | nginx (1 worker) | nginx (auto) | serene / nginx (1) | serene / nginx (auto) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- |');
  console.log(
    `| database req/s | ${fmtNum(results.db.serene.requestsPerSec)} | ${fmtNum(results.db['nginx (1 worker)'].requestsPerSec)} | ` +
      `${fmtNum(results.db['nginx (auto)'].requestsPerSec)} | ${pct(dbRatio)} | ${pct(results.ratios.dbVsNginxAuto)} |`,
  );
  console.log(
    `| ${bigMb} MB package | ${fmtBytes(results.big.serene.bytesPerSec)}/s | ${fmtBytes(results.big['nginx (1 worker)'].bytesPerSec)}/s | ` +
      `${fmtBytes(results.big['nginx (auto)'].bytesPerSec)}/s | ${pct(bigRatio)} | ${pct(results.ratios.bigVsNginxAuto)} |`,
  );
  console.log(
    `| GET /package/list (${packages}), warm | median ${results.list.medianMs.toFixed(1)} ms, p90 ${results.list.p90Ms.toFixed(1)} ms | - | - | - | - |`,
  );
  console.log(
    `| GET /package/list (${packages}), cold | median ${results.listCold.medianMs.toFixed(1)} ms, p90 ${results.listCold.p90Ms.toFixed(1)} ms | - | - | - | - |`,
  );
  console.log('');
  for (const [name, goal] of Object.entries(results.goals)) {
    const value = name === 'listMedian' ? `${goal.value.toFixed(1)} ms` : pct(goal.value);
    console.log(`goal ${name}: ${goal.goal}: ${value} ${goal.met ? 'met' : 'NOT met'}`);
  }
  await fs.mkdir(OUT, { recursive: true });
  await fs.writeFile(path.join(OUT, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  log(`results written to ${path.relative(ROOT, path.join(OUT, 'results.json'))}`);
}

/** Keeps the best of the rounds (by `key`) for one server. */
function keepBest(table, name, run, key) {
  if (!table[name] || run[key] > table[name][key]) table[name] = run;
}

/** The repository folder: a database of `count` packages (published by serene's publisher) and a big file. */
async function prepareRepository(dir, count, bigName, bigBytes) {
  const marker = path.join(OUT, `repository-${count}.done`);
  if (!existsSync(marker)) {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(OUT, { recursive: true, force: true });
    const { createFilesystemRepository } = await import(BUILT.core);
    const { writeSyntheticPackage } = await import(BUILT.syntheticPackage);
    const staging = path.join(OUT, 'staging');
    const files = [];
    for (let i = 0; i < count; i++) {
      const name = `bench-${String(i).padStart(5, '0')}`;
      files.push(
        await writeSyntheticPackage(staging, {
          name,
          version: `${1 + (i % 5)}.${i % 11}.0-1`,
          depends: ['glibc', ...(i > 0 ? [`bench-${String(i - 1).padStart(5, '0')}>=1.0`] : [])],
          description: `synthetic benchmark package number ${i}`,
        }),
      );
    }
    const publisher = createFilesystemRepository({ dir });
    await publisher.init();
    for (let i = 0; i < files.length; i += 500) await publisher.publish(files.slice(i, i + 500));
    await publisher.dispose?.();
    await fs.rm(staging, { recursive: true, force: true });
    await fs.writeFile(marker, '');
  }
  const big = path.join(dir, bigName);
  const stat = await fs.stat(big).catch(() => undefined);
  if (stat?.size !== bigBytes) {
    const handle = await fs.open(big, 'w');
    for (let written = 0; written < bigBytes; written += 1 << 20) {
      await handle.write(randomBytes(Math.min(1 << 20, bigBytes - written)));
    }
    await handle.close();
  }
}

/** Starts our server in a child process; resolves with its port. */
async function startOurs(repoDir, packages) {
  const child = spawn(
    process.execPath,
    [import.meta.filename, '--serve', repoDir, '--packages', String(packages)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
      const match = /PORT (\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    child.on('exit', (code) => reject(new Error(`serene exited with ${code} before listening`)));
  });
  return { port, stop: () => child.kill('SIGTERM') };
}

/** Starts nginx with bench/nginx.conf in bench/out/http/nginx-<label>; resolves with its port. */
function startNginx(label, repoDir, workers) {
  return startNginxIn({
    prefix: path.join(OUT, `nginx-${label}`),
    root: repoDir,
    arch: ARCH,
    workers,
    label,
  });
}

/** Runs wrk (one thread) and parses its summary. */
function wrk(port, pathname, { connections, duration, headers = [] }) {
  const output = execFileSync(
    'wrk',
    [
      '-t1',
      `-c${connections}`,
      `-d${duration}s`,
      '--latency',
      ...headers.flatMap((header) => ['-H', header]),
      `http://127.0.0.1:${port}${pathname}`,
    ],
    { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 },
  );
  const requestsPerSec = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1]);
  const transfer = /Transfer\/sec:\s+([\d.]+)(\w+)/.exec(output);
  const units = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
  const bytesPerSec = transfer ? Number(transfer[1]) * (units[transfer[2]] ?? 1) : Number.NaN;
  const median = /50%\s+([\d.]+)(us|ms|s)/.exec(output);
  const scale = { us: 0.001, ms: 1, s: 1000 };
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  if (errors) throw new Error(`wrk saw ${errors[1]} error responses from port ${port}${pathname}`);
  if (!Number.isFinite(requestsPerSec)) throw new Error(`cannot read wrk's output:\n${output}`);
  return {
    requestsPerSec,
    bytesPerSec,
    medianLatencyMs: median ? Number(median[1]) * scale[median[2]] : null,
  };
}

/**
 * Sequential `GET /package/list` requests on one keep-alive connection; `cold`: each after a no-op
 * `POST /build`, which makes the kept answer stale.
 */
async function listLatency(port, count, packages, cold) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times = [];
  let bytes = 0;
  const warmup = cold ? 1 : 10;
  for (let i = 0; i < count + warmup; i++) {
    if (cold) {
      const poke = await request(
        port,
        'POST',
        '/build',
        '{"packages":[],"clean":false,"resolve":true,"force":false}',
        agent,
      );
      if (poke !== 200) throw new Error(`POST /build answered ${poke}`);
    }
    const begin = performance.now();
    const reply = await get(port, '/package/list', { Authorization: SECRET }, agent);
    const elapsed = performance.now() - begin;
    if (reply.status !== 200) throw new Error(`GET /package/list answered ${reply.status}`);
    if (i === 0) {
      const list = JSON.parse(reply.body.toString('utf8'));
      if (list.length !== packages)
        throw new Error(`GET /package/list listed ${list.length} packages, not ${packages}`);
    }
    bytes = reply.length;
    // the first requests warm up the JIT
    if (i >= warmup) times.push(elapsed);
  }
  agent.destroy();
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  return {
    requests: count,
    medianMs: at(0.5),
    p90Ms: at(0.9),
    minMs: times[0],
    maxMs: times[times.length - 1],
    bytes,
  };
}

// --- The server process ---------------------------------------------------------------------------

/**
 * Serves `repoDir` with our server, with `--packages` packages (each with a published .SRCINFO and
 * two builds) in an in-memory SQLite store; prints `PORT <n>`.
 */
async function serve(repoDir) {
  const count = positiveInt(args.packages, '--packages');
  const server = await startBenchServer({ label: 'http', repositoryDir: repoDir, arch: ARCH });

  // the store: packages as an add and a publish leave them, two builds each
  await server.store.transaction(async (tx) => {
    for (let i = 0; i < count; i++) {
      const { base, pkgver, record } = syntheticPackage(i, {
        srcinfo: (base, pkgver) =>
          [
            `pkgbase = ${base}`,
            `\tpkgdesc = synthetic benchmark package number ${i}`,
            `\tpkgver = ${pkgver}`,
            '\tpkgrel = 1',
            `\turl = https://example.invalid/${base}`,
            '\tarch = x86_64',
            '\tlicense = MIT',
            '\tdepends = glibc',
            '',
            `pkgname = ${base}`,
            '',
          ].join('\n'),
      });
      await tx.insertPackage(record);
      for (let b = 0; b < 2; b++) {
        const started = new Date(BENCH_DAY + i * 1000 + b * 86_400_000);
        await tx.insertBuild(
          syntheticBuild(base, pkgver, started, { reason: b === 0 ? 'initial' : 'schedule' }),
        );
      }
    }
  });

  process.stdout.write(`PORT ${server.port}\n`);
  process.on('SIGTERM', async () => {
    await server.stop();
    process.exit(0);
  });
}

// --- Helpers --------------------------------------------------------------------------------------

function request(port, method, pathname, body, agent) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: pathname,
        agent,
        headers: {
          Authorization: SECRET,
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function log(message) {
  console.log(message);
}
