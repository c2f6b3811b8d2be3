#!/usr/bin/env node
// Orchestration overhead per build: N queued builds of raw PKGBUILD packages through the real
// orchestrator and knex store (SQLite in memory), with an instant runner (no makepkg) and a publisher
// that does nothing, so that what is measured is the orchestrator's own work per build.
// Usage: npm run build && node [--expose-gc] bench/orchestrator.mjs [--count 1000] [--concurrency 5]
// With --expose-gc it also prints the heap in use after a full GC, before and after the run (retained memory).
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createKnexStore, createSerene, createSourceFactory, rawSourceState } from '@serene/core';
import { createInstantRunner } from '../packages/core/dist/testing/instant-runner.js';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? Number(args[index + 1]) : fallback;
};
const count = option('count', 1000);
const concurrency = option('concurrency', 5);

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-bench-orchestrator-'));
const runner = createInstantRunner();
const publisher = {
  name: 'noop',
  init: async () => {},
  publish: async () => ({ added: [], replaced: [] }),
  remove: async () => [],
  list: async () => [],
};
const sourcesDir = path.join(root, 'sources');
// the production composition (bus, orchestrator, build log files off, scheduler off), started
const serene = createSerene(
  {
    store: createKnexStore({ filename: ':memory:' }),
    runner,
    publisher,
    sources: createSourceFactory({ generateSrcinfo: (dir) => runner.printSrcinfo(dir) }),
  },
  {
    arch: 'x86_64',
    name: 'serene',
    sourcesDir,
    workDir: path.join(root, 'work'),
    concurrentBuilds: concurrency,
    schedulingDisabled: true,
  },
);
await serene.start();
const { store, orchestrator } = serene;

const bases = [];
for (let i = 0; i < count; i++) {
  const base = `bench-${String(i).padStart(5, '0')}`;
  const pkgbuild = `pkgname=${base}\npkgver=1.0\npkgrel=1\narch=('any')\npackage() { :; }\n`;
  const dir = path.join(sourcesDir, base);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'PKGBUILD'), pkgbuild);
  await fs.writeFile(
    path.join(dir, '.SRCINFO'),
    `pkgbase = ${base}\n\tpkgver = 1.0\n\tpkgrel = 1\n\tarch = any\n\npkgname = ${base}\n`,
  );
  await store.insertPackage({
    base,
    added: new Date(),
    source: {
      devel: false,
      srcinfo_override: false,
      srcinfo: `pkgbase = ${base}\n\tpkgver = 1.0\n\tpkgrel = 1\n\tarch = any\n\npkgname = ${base}\n`,
      devel_revisions: {},
      inner: { type: 'RawSource', pkgbuild },
    },
    srcinfo: null,
    pkgbuild: null,
    enabled: true,
    clean: false,
    private: false,
    dependency: false,
    schedule: null,
    prepare: null,
    flags: [],
    builtState: rawSourceState('a different PKGBUILD'),
    failedState: null,
  });
  bases.push(base);
}

global.gc?.();
const heapBefore = process.memoryUsage().heapUsed;
const rssBefore = process.memoryUsage().rss;
let rssPeak = rssBefore;
const sampler = setInterval(() => {
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
}, 50);
const cpuBefore = process.cpuUsage();
const begin = process.hrtime.bigint();
const { done } = await orchestrator.start(bases, {
  reason: 'manual',
  resolve: true,
  clean: false,
  force: true,
});
await done;
const elapsedMs = Number(process.hrtime.bigint() - begin) / 1e6;
clearInterval(sampler);
const cpu = process.cpuUsage(cpuBefore);
const succeeded = (await store.listLatestBuilds()).filter((build) => build.state.state === 'success').length;
console.log(`orchestrator: ${count} builds (concurrency ${concurrency}), ${succeeded} succeeded`);
console.log(
  `  total ${(elapsedMs / 1000).toFixed(2)} s, ${(elapsedMs / count).toFixed(2)} ms per build (goal < 5 ms)`,
);
// CPU time (all threads: main, libuv pool, SQLite) depends less on the machine's other load than the wall time
console.log(
  `  CPU ${((cpu.user + cpu.system) / 1000 / count).toFixed(2)} ms per build (user ${(cpu.user / 1e6).toFixed(2)} s, system ${(cpu.system / 1e6).toFixed(2)} s)`,
);
console.log(
  `  RSS before ${(rssBefore / 2 ** 20).toFixed(0)} MB, peak ${(rssPeak / 2 ** 20).toFixed(0)} MB, after ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`,
);
if (global.gc) {
  global.gc();
  const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
  const heapAfter = process.memoryUsage().heapUsed;
  console.log(`  heap after GC: before ${mb(heapBefore)}, after ${mb(heapAfter)}`);
}
await serene.stop();
await fs.rm(root, { recursive: true, force: true });
