#!/usr/bin/env node
// Benchmark: the update check of many AUR packages against the local AUR emulation
// (test/fixtures/aur): how many RPC requests it takes, and how long.
//
//   node bench/aur-update.mjs [--count 1000] [--changed 20] [--reps 3] [--no-baseline]
//
// Sets up N AUR sources as the store would hold them (JSON with the last known version, a checkout
// folder each; the `--changed` ones are real clones), then times `source.update(dir)` for all N at
// once, as a scheduled run does:
//   (a) nothing changed: the check alone (RPC only, no git);
//   (b) `--changed` packages got a new version in the AUR: the check plus their `git pull`s;
//   (c) baseline: the same check one package after the other, one RPC request each (the original's way).
// Goal of the issue: (a) for 1,000 packages in at most 10 requests and under 5 s.
// Results go to stdout and to bench/out/aur-update/results.json. The TypeScript sources and fixture are
// loaded through tsx, so no build is needed.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { register } from 'tsx/esm/api';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'bench/out/aur-update');
const GOALS = { requests: 10, ms: 5000 };

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    changed: { type: 'string', default: '20' },
    reps: { type: 'string', default: '3' },
    'no-baseline': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  // bench/run.mjs passes every benchmark the same arguments: ignore the ones of the others
  strict: false,
});

if (args.help) {
  console.log('usage: node bench/aur-update.mjs [--count N] [--changed N] [--reps N] [--no-baseline]');
  process.exit(0);
}

register();
const { startAurEmulator, renderSrcinfo } = await import('../test/fixtures/aur/index.ts');
const { createSourceFactory, createAurClient } = await import('../packages/core/src/sources/index.ts');

await main();

async function main() {
  const count = positiveInt(args.count, '--count');
  const changed = Math.min(count, nonNegativeInt(args.changed, '--changed'));
  const reps = positiveInt(args.reps, '--reps');
  const bases = Array.from({ length: count }, (_, i) => `bench-aur-${String(i).padStart(5, '0')}`);
  const changing = bases
    .filter((_, i) => i % Math.max(1, Math.floor(count / Math.max(1, changed))) === 0)
    .slice(0, changed);

  log(`aur-update benchmark: ${count} AUR packages, ${changed} changing, ${reps} repetitions`);
  await fs.rm(OUT, { recursive: true, force: true });
  await fs.mkdir(path.join(OUT, 'sources'), { recursive: true });
  const aur = await startAurEmulator({
    root: path.join(OUT, 'aur'),
    packages: bases.map((base) => ({ base, pkgver: '1.0', depends: ['glibc'], makedepends: ['git'] })),
  });
  try {
    const generateSrcinfo = async () => {
      throw new Error('AUR checkouts carry a .SRCINFO: no generation expected');
    };
    const aurClient = createAurClient({ baseUrl: aur.url });
    const factory = createSourceFactory({ generateSrcinfo, aurClient });
    const dirOf = (base) => path.join(OUT, 'sources', base);

    // --- setup: stored sources and their checkouts ---
    const started = performance.now();
    const stored = new Map(
      bases.map((base) => [
        base,
        {
          devel: false,
          srcinfo_override: false,
          srcinfo: null,
          devel_revisions: {},
          inner: { type: 'AurSource', base, version: '1.0-1', mirror: false },
        },
      ]),
    );
    const changingSet = new Set(changing);
    // untouched packages need only what `update` reads: the folder and its .SRCINFO
    await Promise.all(
      bases
        .filter((base) => !changingSet.has(base))
        .map(async (base) => {
          await fs.mkdir(dirOf(base), { recursive: true });
          await fs.writeFile(path.join(dirOf(base), '.SRCINFO'), renderSrcinfo(aur.get(base)));
        }),
    );
    // changing packages are real clones, so that their update pulls
    await Promise.all(
      changing.map(async (base) => {
        const source = factory.restore(stored.get(base));
        await source.initialize(dirOf(base));
        stored.set(base, source.toJSON());
      }),
    );
    log(`setup: ${count} sources, ${changing.length} clones in ${fmtMs(performance.now() - started)}`);

    const runs = { check: [], changed: [], baseline: null };
    for (let rep = 1; rep <= reps; rep++) {
      // (a) nothing changed
      runs.check.push(await measure(aur, aurClient, factory, bases, stored, dirOf, 0, true));
      // (b) some packages changed
      for (const base of changing) await aur.bump(base);
      runs.changed.push(await measure(aur, aurClient, factory, bases, stored, dirOf, changing.length, true));
    }
    if (!args['no-baseline']) {
      runs.baseline = await measure(aur, aurClient, factory, bases, stored, dirOf, 0, false);
    }

    const results = {
      count,
      changed: changing.length,
      reps,
      runs,
      median: { check: medianRun(runs.check), changed: medianRun(runs.changed) },
      machine: machine(),
    };
    await fs.writeFile(path.join(OUT, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    print(results);
    const check = results.median.check;
    if (check.rpcRequests > GOALS.requests || check.ms >= GOALS.ms) process.exitCode = 1;
  } finally {
    await aur.close();
  }
}

// --- one measured run ---

async function measure(aur, aurClient, factory, bases, stored, dirOf, expectChanged, concurrent) {
  const sources = bases.map((base) => [base, factory.restore(stored.get(base))]);
  const before = new Map(sources.map(([base, source]) => [base, source.state()]));
  aur.resetStats();
  const clientBefore = aurClient.stats();
  const started = performance.now();
  if (concurrent) {
    // what a scheduled run does: every package's update at once; lookups coalesce into batches
    await Promise.all(sources.map(([base, source]) => source.update(dirOf(base))));
  } else {
    for (const [base, source] of sources) {
      // one at a time: each lookup is its own request, as in the original
      await source.update(dirOf(base));
    }
  }
  const ms = performance.now() - started;
  const changedNow = sources.filter(([base, source]) => source.state() !== before.get(base)).length;
  if (changedNow !== expectChanged) fail(`expected ${expectChanged} changed states, got ${changedNow}`);
  for (const [base, source] of sources) stored.set(base, source.toJSON());
  const after = aurClient.stats();
  return {
    ms: Math.round(ms),
    rpcRequests: aur.stats.rpcRequests,
    rpcNames: aur.stats.rpcNames,
    gitRequests: aur.stats.gitRequests,
    clientRequests: after.requests - clientBefore.requests,
    changed: changedNow,
  };
}

// --- output ---

function print(results) {
  const { count, changed } = results;
  const row = (label, run) =>
    `| ${label} | ${run.rpcRequests} | ${run.rpcNames} | ${run.gitRequests} | ${fmtMs(run.ms)} |`;
  const lines = [
    '',
    `| ${count} AUR packages | RPC requests | names asked | git HTTP requests | time |`,
    '| --- | ---: | ---: | ---: | ---: |',
    row('(a) check, nothing changed (median)', results.median.check),
    row(`(b) check + ${changed} pulls (median)`, results.median.changed),
  ];
  if (results.runs.baseline) lines.push(row('(c) baseline: one by one', results.runs.baseline));
  const check = results.median.check;
  lines.push(
    '',
    `  (a) ${check.rpcRequests} requests ${check.rpcRequests <= GOALS.requests ? 'meets' : 'MISSES'} ≤ ${GOALS.requests}`,
    `  (a) ${fmtMs(check.ms)} ${check.ms < GOALS.ms ? 'meets' : 'MISSES'} < ${fmtMs(GOALS.ms)}`,
    `  all runs (a): ${results.runs.check.map((r) => fmtMs(r.ms)).join(', ')}; (b): ${results.runs.changed.map((r) => fmtMs(r.ms)).join(', ')}`,
    `  load average at end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
    '',
  );
  console.log(lines.join('\n'));
}

function medianRun(runs) {
  const sorted = [...runs].sort((a, b) => a.ms - b.ms);
  return sorted[Math.floor(sorted.length / 2)];
}

function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model,
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    loadavg: os.loadavg().map((load) => load.toFixed(2)),
  };
}

function fmtMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

function positiveInt(value, name) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`${name} must be a positive integer`);
  return n;
}

function nonNegativeInt(value, name) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`${name} must be a non-negative integer`);
  return n;
}

function log(message) {
  console.log(message);
}

function fail(message) {
  console.error(`aur-update bench: ${message}`);
  process.exit(1);
}
