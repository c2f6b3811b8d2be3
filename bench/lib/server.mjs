// What the benchmarks that measure the HTTP server share (bench/http.mjs, bench/dashboard.mjs): the
// real server, the production composition (createSerene: orchestrator, package service) with the
// instant runner and scheduling off, on 127.0.0.1, and synthetic packages and builds written
// straight into its store. Not a benchmark itself: bench/run.mjs runs the files beside it only.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The built modules the benchmarks load (`npm run build` makes them). */
export const BUILT = {
  core: path.join(ROOT, 'packages/core/dist/index.js'),
  // the testing index pulls in vitest: its helpers are imported from their own files
  instantRunner: path.join(ROOT, 'packages/core/dist/testing/instant-runner.js'),
  syntheticPackage: path.join(ROOT, 'packages/core/dist/testing/synthetic-package.js'),
  repoHttp: path.join(ROOT, 'packages/plugin-repo-http/dist/index.js'),
  dashboard: path.join(ROOT, 'packages/plugin-dashboard/dist/index.js'),
  cliHome: path.join(ROOT, 'packages/cli/dist/testing/cli-home.js'),
};

/** The secret the benchmarks' servers accept. */
export const BENCH_SECRET = 'bench-secret';

/**
 * Starts the server in this process, in a new temporary folder (`work`).
 *
 * @param {object} options
 * @param {string} options.label names the temporary folder (`serene-bench-LABEL-`)
 * @param {string} [options.repositoryDir] the repository folder (default: `work/repository`)
 * @param {boolean} [options.storeOnDisk] a SQLite file in `work` rather than in memory
 * @param {unknown[]} [options.plugins] HTTP plugins (the dashboard)
 * @param {string} [options.arch]
 */
export async function startBenchServer({
  label,
  repositoryDir,
  storeOnDisk = false,
  plugins = [],
  arch = 'x86_64',
}) {
  const core = await import(BUILT.core);
  const { createInstantRunner } = await import(BUILT.instantRunner);
  const { createHttpListener, createRepoHttp, secretToken } = await import(BUILT.repoHttp);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), `serene-bench-${label}-`));
  const repository = repositoryDir ?? path.join(work, 'repository');
  const runner = createInstantRunner();
  // the production composition, started: store open, repository initialised
  const serene = core.createSerene(
    {
      store: core.createKnexStore({ filename: storeOnDisk ? path.join(work, 'serene.db') : ':memory:' }),
      runner,
      publisher: core.createFilesystemRepository({ dir: repository }),
      sources: core.createSourceFactory({
        generateSrcinfo: (dir) => runner.printSrcinfo(dir),
        aur: { baseUrl: 'http://127.0.0.1:9' },
      }),
    },
    {
      arch,
      name: 'serene',
      sourcesDir: path.join(work, 'sources'),
      workDir: path.join(work, 'work'),
      schedulingDisabled: true,
    },
  );
  const secretsFile = path.join(work, 'authorized_secrets');
  await fs.writeFile(secretsFile, `${secretToken(BENCH_SECRET)} bench\n`);
  const listener = serene.add(
    createHttpListener({
      http: createRepoHttp({
        service: serene.service,
        bus: serene.bus,
        publisher: serene.publisher,
        repositoryDir: repository,
        arch,
        name: 'serene',
        version: 'bench',
        started: new Date(),
        allowReads: false,
        authorizedSecretsFile: secretsFile,
        plugins,
      }),
      port: 0,
      host: '127.0.0.1',
      graceMs: 0,
    }),
  );
  await serene.start();
  return {
    serene,
    store: serene.store,
    work,
    port: listener.port(),
    url: `http://127.0.0.1:${listener.port()}`,
    async stop() {
      await serene.stop();
      await fs.rm(work, { recursive: true, force: true });
    },
  };
}

/** 2025-01-01, when the synthetic packages were added (one a second). */
export const BENCH_DAY = Date.UTC(2025, 0, 1);

/**
 * The store record of synthetic package number `i` (`bench-00042`), as an add and a publish leave
 * it; `srcinfo(base, pkgver)` gives its .SRCINFO (a minimal one by default).
 */
export function syntheticPackage(i, { srcinfo, enabled = true } = {}) {
  const base = `bench-${String(i).padStart(5, '0')}`;
  const pkgver = `${1 + (i % 5)}.${i % 11}.0`;
  const record = {
    base,
    added: new Date(BENCH_DAY + i * 1000),
    source: {
      devel: false,
      srcinfo_override: false,
      srcinfo: null,
      devel_revisions: {},
      inner: { type: 'AurSource', base, version: `${pkgver}-1`, mirror: false },
    },
    srcinfo: srcinfo
      ? srcinfo(base, pkgver)
      : `pkgbase = ${base}\n\tpkgver = ${pkgver}\n\tpkgrel = 1\n\tarch = x86_64\n\npkgname = ${base}\n`,
    pkgbuild: `pkgname=${base}\npkgver=${pkgver}\npkgrel=1\narch=(x86_64)\npackage() { :; }\n`,
    enabled,
    clean: true,
    private: false,
    dependency: false,
    schedule: null,
    prepare: null,
    flags: [],
    builtState: `${pkgver}-1`,
    failedState: null,
  };
  return { base, pkgver, record };
}

/** The store record of a build of `base` that started at `started` and took a minute. */
export function syntheticBuild(base, pkgver, started, { success = true, reason = 'schedule' } = {}) {
  return {
    package: base,
    started,
    ended: new Date(started.getTime() + 60_000),
    state: success ? { state: 'success' } : { state: 'failure' },
    reason,
    version: pkgver,
    runSuccess: success,
    runStarted: started,
    runEnded: new Date(started.getTime() + 59_000),
    stats: {
      memoryPeak: 1 << 28,
      cpuUser: 1_000_000,
      cpuSystem: 200_000,
      ioRead: 1 << 20,
      ioWritten: 1 << 22,
    },
  };
}
