#!/usr/bin/env node
// Benchmark: serene's native repository database against repo-add, side by side in one run.
//
//   npm run build && node bench/repo-db.mjs [--count 5000] [--reps 5] [--repo-add-reps 3]
//     [--repo-add-build-limit SECONDS] [--no-repo-add] [--no-sign]
//
// Generates N synthetic packages into bench/out/repo-db/ (kept between runs for the same N), then
// measures (a) building the database from all N files, (b) adding one package to the N-package
// database, (c) removing one package from it, for:
//   - ours, library: `RepoDatabase` calls, timed inside a child process that reports its peak RSS;
//   - ours, CLI:     `node packages/cli/dist/main.js repo add|remove ...`, Node start-up included;
//   - repo-add:      `repo-add` / `repo-remove` (pacman's shell scripts).
// and (d) adding one package with the database signed (`-s -k KEY`, the user's gpg: a key made for
// the run in a temp GNUPGHOME) for the CLI and repo-add (the packages removed in (c) are added back),
// and (e) the CLI's start-up: `node -e 0`, `serene --version` and `serene repo add` of a database in
// a folder that does not exist (Node, the modules the repository commands load, and an error).
// Results go to stdout (a table and the goals) and to bench/out/repo-db/results.json.
// repo-add's full build runs one package at a time through a dozen processes each (about 0.1 s per
// package on an idle machine, far more on a busy one): `--repo-add-build-limit` stops it after that
// many seconds and reports the time as a lower bound; (b) and (c) then run repo-add on a copy of our
// N-package database.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { hasProgram } from '../scripts/programs.mjs';

const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'bench/out/repo-db');
const CLI = path.join(ROOT, 'packages/cli/dist/main.js');
const SYNTHETIC = path.join(ROOT, 'packages/core/dist/testing/synthetic-package.js');
/** Goals of the issue, as ratios repo-add / ours and a memory ceiling. */
const GOALS = { build: 20, add: 100, remove: 100, addSigned: 100, memoryMB: 200 };
/** Issue 15's goals for the CLI at 20,000 packages and more: a full build under 60 s in under 400 MB. */
const LARGE = { count: 20_000, buildSeconds: 60, memoryMB: 400 };
/** Linux allows ~2 MB of arguments; stay well below for one command line. */
const MAX_ARGS_BYTES = 1_000_000;

const { values: args, positionals } = parseArgs({
  // not strict: bench/run.mjs passes every bench the same arguments
  strict: false,
  options: {
    count: { type: 'string', default: '5000' },
    reps: { type: 'string', default: '5' },
    'repo-add-reps': { type: 'string', default: '3' },
    'no-repo-add': { type: 'boolean', default: false },
    'no-sign': { type: 'boolean', default: false },
    'repo-add-build-limit': { type: 'string' },
    child: { type: 'string' },
    db: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowPositionals: true,
});

if (args.help) {
  console.log(
    'usage: node bench/repo-db.mjs [--count N] [--reps N] [--repo-add-reps N] [--repo-add-build-limit SECONDS] [--no-repo-add] [--no-sign]',
  );
  process.exit(0);
}

if (args.child) {
  await child(args.child, args.db, positionals);
} else {
  await main();
}

// --- The measuring process ------------------------------------------------------------------------

async function main() {
  const count = positiveInt(args.count, '--count');
  const reps = positiveInt(args.reps, '--reps');
  const repoAddReps = positiveInt(args['repo-add-reps'], '--repo-add-reps');
  const buildLimitMs =
    args['repo-add-build-limit'] === undefined
      ? undefined
      : positiveInt(args['repo-add-build-limit'], '--repo-add-build-limit') * 1000;
  const withRepoAdd = !args['no-repo-add'] && hasProgram('repo-add');
  const withSign = !args['no-sign'] && hasProgram('gpg');
  await checkBuilt();
  const timeProgram = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

  log(`repo-db benchmark: ${count} packages, ${reps} repetitions (repo-add: ${repoAddReps})`);
  const pkgDir = path.join(OUT, `pkgs-${count}`);
  const { files, extras, victims } = await generate(pkgDir, count, Math.max(reps, repoAddReps));
  const runDir = path.join(OUT, 'run');
  await fs.rm(runDir, { recursive: true, force: true });
  const dirs = {
    lib: path.join(runDir, 'lib'),
    cli: path.join(runDir, 'cli'),
    repoAdd: path.join(runDir, 'repo-add'),
  };
  for (const dir of Object.values(dirs)) await fs.mkdir(dir, { recursive: true });
  const dbOf = (dir) => path.join(dir, 'bench.db.tar.gz');
  // package paths relative to the package folder, where every command runs: short command lines
  const names = files.map((file) => path.basename(file));

  const results = {
    count,
    machine: machine(),
    date: new Date().toISOString(),
    lib: {},
    cli: {},
    repoAdd: {},
  };

  // (a) full build; repo-add first: it is the long one
  if (withRepoAdd) {
    log(
      `(a) full build: repo-add (this takes a while${buildLimitMs ? `; stopped after ${fmtMs(buildLimitMs)}` : ''})`,
    );
    // repo-add's temp folder in ours, to count what it had done when it is stopped
    const tmp = path.join(OUT, 'tmp');
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.mkdir(tmp);
    let ms = 0;
    let stopped;
    for (const chunk of chunks(names)) {
      const left = buildLimitMs === undefined ? undefined : buildLimitMs - ms;
      const run = await timed('repo-add', ['-q', dbOf(dirs.repoAdd), ...chunk], pkgDir, undefined, {
        timeoutMs: left,
        env: { TMPDIR: tmp },
        beforeKill: async () => {
          const [work] = (await fs.readdir(tmp)).filter((name) => name.startsWith('repo-tools.'));
          stopped = work ? (await fs.readdir(path.join(tmp, work, 'db'))).length : 0;
        },
      });
      ms += run.ms;
      if (run.timedOut) break;
    }
    if (stopped === undefined) {
      results.repoAdd.build = { ms };
      log(`    ${fmtMs(ms)}`);
    } else {
      // a lower bound: the full build takes longer than this
      results.repoAdd.build = { ms, lowerBound: true, packagesDone: stopped };
      log(
        `    stopped after ${fmtMs(ms)} with ${stopped} of ${count} packages added: the full build takes longer`,
      );
    }
  }

  await checkBuilt();
  log('(a) full build: ours (library)');
  const libBuild = await runChild('build', dbOf(dirs.lib), names, pkgDir);
  results.lib.build = { ms: libBuild.times[0], maxRssMB: libBuild.maxRssMB };
  log(`    ${fmtMs(libBuild.times[0])}, peak RSS ${libBuild.maxRssMB.toFixed(0)} MB`);
  if (results.repoAdd.build?.lowerBound) {
    // repo-add did not finish: (b) and (c) run repo-add on a copy of our N-package database, which
    // it extracts and re-creates exactly as its own (the entries are byte-identical)
    log('    repo-add continues on a copy of this database for (b) and (c)');
    await fs.rm(dirs.repoAdd, { recursive: true, force: true });
    await fs.mkdir(dirs.repoAdd);
    for (const kind of ['db', 'files']) {
      await fs.copyFile(
        path.join(dirs.lib, `bench.${kind}.tar.gz`),
        path.join(dirs.repoAdd, `bench.${kind}.tar.gz`),
      );
    }
  }

  log('(a) full build: ours (CLI)');
  const cliBuild = { ms: 0, maxRssMB: 0 };
  for (const chunk of chunks(names)) {
    const run = await timed(
      process.execPath,
      [CLI, 'repo', 'add', '-q', dbOf(dirs.cli), ...chunk],
      pkgDir,
      timeProgram,
    );
    cliBuild.ms += run.ms;
    cliBuild.maxRssMB = Math.max(cliBuild.maxRssMB, run.maxRssMB ?? 0);
  }
  results.cli.build = { ms: cliBuild.ms, maxRssMB: cliBuild.maxRssMB || undefined };
  log(`    ${fmtMs(cliBuild.ms)}${cliBuild.maxRssMB ? `, peak RSS ${cliBuild.maxRssMB.toFixed(0)} MB` : ''}`);

  // sanity: every database lists the N packages
  for (const [label, dir] of Object.entries(dirs)) {
    if (label === 'repoAdd' && !withRepoAdd) continue;
    const entries = await countEntries(dbOf(dir));
    if (entries !== count) fail(`${label}: the database lists ${entries} packages, expected ${count}`);
  }

  // archive sizes after the full build (ours writes one gzip member per chunk of entries: a little larger)
  results.sizes = {};
  for (const [label, dir] of Object.entries(dirs)) {
    if (label === 'repoAdd' && (!withRepoAdd || results.repoAdd.build?.lowerBound)) continue;
    const size = async (kind) => (await fs.stat(path.join(dir, `bench.${kind}.tar.gz`))).size;
    results.sizes[label] = { db: await size('db'), files: await size('files') };
  }

  // (b) add one package, (c) remove one package
  log(`(b) add one package to the ${count}-package database: ours (library)`);
  const libAdd = await runChild(
    'add',
    dbOf(dirs.lib),
    extras.slice(0, reps).map((f) => path.basename(f)),
    pkgDir,
  );
  results.lib.add = { ms: median(libAdd.times), runs: libAdd.times, maxRssMB: libAdd.maxRssMB };
  log(
    `    median ${fmtMs(results.lib.add.ms)} of ${fmtList(libAdd.times)}, peak RSS ${libAdd.maxRssMB.toFixed(0)} MB`,
  );

  log(`(c) remove one package from the ${count}-package database: ours (library)`);
  const libRemove = await runChild('remove', dbOf(dirs.lib), victims.slice(0, reps), pkgDir);
  results.lib.remove = { ms: median(libRemove.times), runs: libRemove.times, maxRssMB: libRemove.maxRssMB };
  log(
    `    median ${fmtMs(results.lib.remove.ms)} of ${fmtList(libRemove.times)}, peak RSS ${libRemove.maxRssMB.toFixed(0)} MB`,
  );

  for (const [phase, items, command] of [
    ['add', extras.slice(0, reps).map((f) => path.basename(f)), 'add'],
    ['remove', victims.slice(0, reps), 'remove'],
  ]) {
    log(`(${phase === 'add' ? 'b' : 'c'}) ${phase} one package: ours (CLI)`);
    const runs = [];
    let rss = 0;
    for (const item of items) {
      const run = await timed(
        process.execPath,
        [CLI, 'repo', command, '-q', dbOf(dirs.cli), item],
        pkgDir,
        timeProgram,
      );
      runs.push(run.ms);
      rss = Math.max(rss, run.maxRssMB ?? 0);
    }
    results.cli[phase] = { ms: median(runs), runs, maxRssMB: rss || undefined };
    log(
      `    median ${fmtMs(median(runs))} of ${fmtList(runs)}${rss ? `, peak RSS ${rss.toFixed(0)} MB` : ''}`,
    );
  }

  if (withRepoAdd) {
    for (const [phase, items, tool] of [
      ['add', extras.slice(0, repoAddReps).map((f) => path.basename(f)), 'repo-add'],
      ['remove', victims.slice(0, repoAddReps), 'repo-remove'],
    ]) {
      log(`(${phase === 'add' ? 'b' : 'c'}) ${phase} one package: ${tool}`);
      const runs = [];
      for (const item of items) runs.push((await timed(tool, ['-q', dbOf(dirs.repoAdd), item], pkgDir)).ms);
      results.repoAdd[phase] = { ms: median(runs), runs };
      log(`    median ${fmtMs(median(runs))} of ${fmtList(runs)}`);
    }
  }
  // each added as many packages as it removed
  for (const [label, dir] of Object.entries(dirs)) {
    if (label === 'repoAdd' && !withRepoAdd) continue;
    const entries = await countEntries(dbOf(dir));
    if (entries !== count)
      fail(`${label}: the database lists ${entries} packages after add/remove, expected ${count}`);
  }

  // sizes at the end: every database holds N entries again, repo-add's written by repo-add itself
  results.endSizes = {};
  for (const [label, dir] of Object.entries(dirs)) {
    if (label === 'repoAdd' && !withRepoAdd) continue;
    const size = async (kind) => (await fs.stat(path.join(dir, `bench.${kind}.tar.gz`))).size;
    results.endSizes[label] = { db: await size('db'), files: await size('files') };
  }

  // (d) add one package with the database signed: the packages removed in (c) come back
  if (withSign) {
    const gnupg = await makeGpgHome();
    const signEnv = { env: { GNUPGHOME: gnupg.homedir } };
    const fileOf = (victim) => names.find((name) => name.startsWith(`${victim}-`));
    try {
      log(`(d) add one package, signed (-s -k): ours (CLI)`);
      const runs = [];
      let rss = 0;
      for (const victim of victims.slice(0, reps)) {
        const run = await timed(
          process.execPath,
          [CLI, 'repo', 'add', '-q', '-s', '-k', gnupg.fingerprint, dbOf(dirs.cli), fileOf(victim)],
          pkgDir,
          timeProgram,
          signEnv,
        );
        runs.push(run.ms);
        rss = Math.max(rss, run.maxRssMB ?? 0);
      }
      results.cli.addSigned = { ms: median(runs), runs, maxRssMB: rss || undefined };
      log(
        `    median ${fmtMs(median(runs))} of ${fmtList(runs)}${rss ? `, peak RSS ${rss.toFixed(0)} MB` : ''}`,
      );
      if (!(await gnupg.verify(dbOf(dirs.cli))))
        fail('ours (CLI): the signature of the database does not verify');
      if (withRepoAdd) {
        log('(d) add one package, signed (-s -k): repo-add');
        const theirs = [];
        for (const victim of victims.slice(0, repoAddReps)) {
          const run = await timed(
            'repo-add',
            ['-q', '-s', '-k', gnupg.fingerprint, dbOf(dirs.repoAdd), fileOf(victim)],
            pkgDir,
            undefined,
            signEnv,
          );
          theirs.push(run.ms);
        }
        results.repoAdd.addSigned = { ms: median(theirs), runs: theirs };
        log(`    median ${fmtMs(median(theirs))} of ${fmtList(theirs)}`);
        if (!(await gnupg.verify(dbOf(dirs.repoAdd))))
          fail('repo-add: the signature of the database does not verify');
      }
    } finally {
      await gnupg.cleanup();
    }
  }

  // (e) start-up of the CLI: Node alone, the full command line, and the repository commands
  log('(e) start-up: node -e 0, serene --version, serene repo add (a folder that does not exist)');
  results.startup = {};
  for (const [label, programArgs, expectFailure] of [
    ['node', ['-e', '0'], false],
    ['version', [CLI, '--version'], false],
    ['repo', [CLI, 'repo', 'add', '-q', path.join(OUT, 'no-such-folder', 'x.db.tar.gz')], true],
  ]) {
    const runs = [];
    const cpu = [];
    for (let i = 0; i < reps; i++) {
      const run = await timed(process.execPath, programArgs, OUT, timeProgram, { expectFailure });
      runs.push(run.ms);
      if (run.cpuMs !== undefined) cpu.push(run.cpuMs);
    }
    results.startup[label] = { ms: median(runs), runs, cpuMs: cpu.length ? median(cpu) : undefined };
    log(
      `    ${label}: median ${fmtMs(median(runs))} of ${fmtList(runs)}${cpu.length ? `; CPU ${fmtMs(median(cpu))}` : ''}`,
    );
  }
  await fs.writeFile(path.join(OUT, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  printTable(results, withRepoAdd);
}

/** Fails unless the packages are built (checked again after repo-add's long build). */
async function checkBuilt() {
  for (const file of [CLI, SYNTHETIC]) {
    if (!existsSync(file)) fail(`${path.relative(ROOT, file)} is missing: run \`npm run build\` first`);
  }
}

/** Runs one phase of ours in a child process; resolves with its timings and peak RSS. */
async function runChild(phase, db, items, cwd) {
  const listFile = path.join(OUT, `child-${phase}.json`);
  await fs.writeFile(listFile, JSON.stringify(items));
  const output = await spawnCollect(
    process.execPath,
    [import.meta.filename, '--child', phase, '--db', db, listFile],
    cwd,
  );
  if (output.code !== 0) fail(`child '${phase}' failed (${output.code}):\n${output.stderr}`);
  const lines = output.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/** Runs a program, resolving with its wall time (and peak RSS when `/usr/bin/time` is there). */
async function timed(program, programArgs, cwd, timeProgram, options = {}) {
  const rssFile = path.join(OUT, 'time.out');
  const [command, commandArgs] = timeProgram
    ? [timeProgram, ['-f', '%M %U %S', '-o', rssFile, program, ...programArgs]]
    : [program, programArgs];
  const started = performance.now();
  const output = await spawnCollect(command, commandArgs, cwd, options);
  const ms = performance.now() - started;
  if (output.timedOut) return { ms, timedOut: true };
  if ((output.code !== 0) !== (options.expectFailure === true))
    fail(`${program} ${programArgs.slice(0, 4).join(' ')} ... exited ${output.code}:\n${output.stderr}`);
  let maxRssMB;
  let cpuMs;
  if (timeProgram) {
    // the last line: /usr/bin/time says "Command exited with non-zero status" before it
    const lines = (await fs.readFile(rssFile, 'utf8')).trim().split('\n');
    const [rss, user, system] = lines[lines.length - 1].split(' ').map(Number);
    maxRssMB = rss / 1024;
    cpuMs = (user + system) * 1000;
  }
  return { ms, maxRssMB, cpuMs };
}

/**
 * Runs a program in its own process group and collects its output; with `timeoutMs`, stops the
 * group (after `beforeKill`) when the time is up.
 */
function spawnCollect(program, programArgs, cwd, options = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(program, programArgs, {
      cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', ...options.env },
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(
            async () => {
              timedOut = true;
              await options.beforeKill?.().catch(() => undefined);
              try {
                process.kill(-proc.pid, 'SIGTERM');
              } catch {}
            },
            Math.max(options.timeoutMs, 0),
          );
    proc.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.length > 1_000_000) stdout = stdout.slice(-100_000);
    });
    proc.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (stderr.length > 1_000_000) stderr = stderr.slice(-100_000);
    });
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

// --- The measured child: ours, as a library -------------------------------------------------------

async function child(phase, db, [listFile]) {
  const { RepoDatabase } = await import('@serene/core');
  const items = JSON.parse(await fs.readFile(listFile, 'utf8'));
  const times = [];
  if (phase === 'build') {
    const started = performance.now();
    const database = await RepoDatabase.open(db);
    await database.add(items);
    times.push(performance.now() - started);
  } else {
    for (const item of items) {
      const started = performance.now();
      // a fresh object per call, as a new process or a server request would have
      const database = await RepoDatabase.open(db);
      if (phase === 'add') await database.add([item]);
      else await database.remove([item]);
      times.push(performance.now() - started);
    }
  }
  const maxRssMB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ times, maxRssMB })}\n`);
}

// --- Packages --------------------------------------------------------------------------------------

/**
 * Writes `count` packages (a few files and some depends each), plus `extra` packages to add later,
 * into `dir`; reuses them when a previous run left a complete set.
 */
async function generate(dir, count, extra) {
  const name = (i) => `bench-${String(i).padStart(5, '0')}`;
  const specs = [];
  let seed = 42;
  const random = (n) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < count; i++) specs.push(spec(name(i), `${1 + (i % 5)}.${i % 11}.0-${1 + (i % 3)}`, i));
  const extraSpecs = [];
  for (let i = 0; i < extra; i++) extraSpecs.push(spec(`zz-extra-${i}`, '1.0.0-1', count + i));

  function spec(pkgname, version, i) {
    const depends = ['glibc'];
    for (let d = 0, n = random(4); d < n && i > 0; d++)
      depends.push(`${name(random(Math.min(i, count)))}>=1.0`);
    return {
      name: pkgname,
      version,
      description: `synthetic benchmark package number ${i}`,
      depends: [...new Set(depends)],
      provides: random(5) === 0 ? [`lib${pkgname}.so=1-64`] : [],
      optdepends: random(3) === 0 ? ['bash: for the completion'] : [],
      files: {
        [`usr/bin/${pkgname}`]: `#!/bin/sh\necho ${pkgname}\n`,
        [`usr/lib/${pkgname}/lib${pkgname}.so.1`]: 'x'.repeat(200 + random(2000)),
        [`usr/share/doc/${pkgname}/README`]: `${pkgname} ${version}\n`,
        [`usr/share/licenses/${pkgname}/LICENSE`]: 'MIT\n',
        [`usr/share/man/man1/${pkgname}.1.gz`]: 'manual\n',
      },
    };
  }

  const file = (s) => path.join(dir, `${s.name}-${s.version}-x86_64.pkg.tar.gz`);
  const marker = path.join(dir, '.complete');
  const complete = await fs.readFile(marker, 'utf8').catch(() => '');
  if (complete.trim() !== String(specs.length + extraSpecs.length)) {
    log(`generating ${count + extra} packages into ${path.relative(ROOT, dir)}/`);
    const { writeSyntheticPackage } = await import(SYNTHETIC);
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true });
    const started = performance.now();
    const all = [...specs, ...extraSpecs];
    for (let i = 0; i < all.length; i += 64) {
      await Promise.all(all.slice(i, i + 64).map((s) => writeSyntheticPackage(dir, s)));
    }
    await fs.writeFile(marker, `${all.length}\n`);
    log(`    done in ${fmtMs(performance.now() - started)}`);
  } else {
    log(`reusing the packages in ${path.relative(ROOT, dir)}/`);
  }
  // victims to remove: spread over the database, the same for every tool
  const victims = [];
  for (let i = 0; i < extra; i++) victims.push(name(Math.floor(((i + 0.5) * count) / extra)));
  return { files: specs.map(file), extras: extraSpecs.map(file), victims };
}

// --- Helpers ---------------------------------------------------------------------------------------

/** A GNUPGHOME in a temp folder with a new signing key without passphrase, as a user's keyring. */
async function makeGpgHome() {
  const homedir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-bench-gpg-'));
  await fs.chmod(homedir, 0o700);
  const env = { env: { GNUPGHOME: homedir } };
  const uid = 'serene bench <bench@serene.invalid>';
  const made = await spawnCollect(
    'gpg',
    [
      '--batch',
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      '',
      '--quick-gen-key',
      uid,
      'ed25519',
      'sign',
      'never',
    ],
    homedir,
    env,
  );
  if (made.code !== 0) fail(`gpg could not make a key: ${made.stderr}`);
  const listed = await spawnCollect('gpg', ['--batch', '--with-colons', '--fingerprint', uid], homedir, env);
  const fingerprint = listed.stdout
    .split('\n')
    .find((line) => line.startsWith('fpr:'))
    ?.split(':')[9];
  if (!fingerprint) fail('gpg made no key');
  return {
    homedir,
    fingerprint,
    async verify(file) {
      const output = await spawnCollect('gpg', ['--batch', '--verify', `${file}.sig`, file], homedir, env);
      return output.code === 0;
    },
    async cleanup() {
      await spawnCollect('gpgconf', ['--kill', 'all'], homedir, env).catch(() => undefined);
      await fs.rm(homedir, { recursive: true, force: true });
    },
  };
}

async function countEntries(db) {
  const output = await spawnCollect('bsdtar', ['-tf', db], path.dirname(db));
  if (output.code !== 0) fail(`bsdtar could not read ${db}: ${output.stderr}`);
  return output.stdout.split('\n').filter((line) => line.endsWith('/desc')).length;
}

/** Splits arguments into command lines of at most MAX_ARGS_BYTES. */
function chunks(items) {
  const result = [[]];
  let size = 0;
  for (const item of items) {
    if (size + item.length + 1 > MAX_ARGS_BYTES && result[result.length - 1].length > 0) {
      result.push([]);
      size = 0;
    }
    result[result.length - 1].push(item);
    size += item.length + 1;
  }
  return result;
}

function printTable(results, withRepoAdd) {
  const rows = [
    ['(a) full build', 'build', GOALS.build],
    ['(b) add one', 'add', GOALS.add],
    ['(c) remove one', 'remove', GOALS.remove],
    ...(results.cli.addSigned ? [['(d) add one, signed', 'addSigned', GOALS.addSigned]] : []),
  ];
  const lines = [
    '',
    `| ${results.count} packages | ours (library) | ours (CLI) | repo-add | repo-add / ours lib | repo-add / ours CLI | goal |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  const verdicts = [];
  for (const [label, key, goal] of rows) {
    const lib = results.lib[key]?.ms;
    const cli = results.cli[key].ms;
    const theirs = withRepoAdd ? results.repoAdd[key]?.ms : undefined;
    const libRatio = theirs && lib ? theirs / lib : undefined;
    const cliRatio = theirs ? theirs / cli : undefined;
    const more = results.repoAdd[key]?.lowerBound ? '> ' : '';
    lines.push(
      `| ${label} | ${lib === undefined ? 'n/a' : fmtMs(lib)} | ${fmtMs(cli)} | ${theirs ? more + fmtMs(theirs) : 'n/a'} | ${more}${fmtRatio(libRatio)} | ${more}${fmtRatio(cliRatio)} | ≥${goal}x |`,
    );
    if (cliRatio !== undefined) {
      const verdict = (ratio) =>
        ratio >= goal ? 'meets' : more ? 'cannot tell (repo-add was stopped)' : 'MISSES';
      if (libRatio !== undefined && !Number.isNaN(libRatio))
        verdicts.push(`${label}: library ${more}${fmtRatio(libRatio)} ${verdict(libRatio)} ≥${goal}x`);
      verdicts.push(`${label}: CLI ${more}${fmtRatio(cliRatio)} ${verdict(cliRatio)} ≥${goal}x`);
    }
  }
  const memory = Math.max(
    ...['build', 'add', 'remove', 'addSigned'].flatMap((key) => [
      results.lib[key]?.maxRssMB ?? 0,
      results.cli[key]?.maxRssMB ?? 0,
    ]),
  );
  lines.push('');
  lines.push(
    `peak RSS of ours: library build ${fmtMB(results.lib.build.maxRssMB)}, add ${fmtMB(results.lib.add.maxRssMB)}, remove ${fmtMB(results.lib.remove.maxRssMB)}; ` +
      `CLI build ${fmtMB(results.cli.build.maxRssMB)}, add ${fmtMB(results.cli.add.maxRssMB)}, remove ${fmtMB(results.cli.remove.maxRssMB)}`,
  );
  const sizes = Object.entries(results.sizes)
    .map(([label, size]) => `${label} db ${fmtKB(size.db)}, files ${fmtKB(size.files)}`)
    .join('; ');
  lines.push(`archive sizes after the full build: ${sizes}`);
  const endSizes = Object.entries(results.endSizes)
    .map(([label, size]) => `${label} db ${fmtKB(size.db)}, files ${fmtKB(size.files)}`)
    .join('; ');
  lines.push(`archive sizes at the end (N entries each): ${endSizes}`);
  const { lib: libEnd, repoAdd: theirsEnd } = results.endSizes;
  if (libEnd && theirsEnd) {
    lines.push(
      `size ratio ours (library) / repo-add's: db ${(libEnd.db / theirsEnd.db).toFixed(2)}x, files ${(libEnd.files / theirsEnd.files).toFixed(2)}x`,
    );
  }
  if (results.repoAdd.build?.lowerBound) {
    const { ms, packagesDone } = results.repoAdd.build;
    lines.push(
      `repo-add's full build was stopped after ${fmtMs(ms)} with ${packagesDone} of ${results.count} packages added ` +
        '(a lower bound); its (b) and (c) ran on a copy of our database',
    );
  }
  lines.push(
    `load average at start ${results.machine.loadavg.join(' ')}, at end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const memoryGoal = results.count >= LARGE.count ? LARGE.memoryMB : GOALS.memoryMB;
  verdicts.push(
    `peak memory ${fmtMB(memory)} ${memory < memoryGoal ? 'meets' : 'MISSES'} < ${memoryGoal} MB`,
  );
  if (results.count >= LARGE.count) {
    const seconds = results.cli.build.ms / 1000;
    verdicts.push(
      `CLI full build ${seconds.toFixed(1)} s ${seconds < LARGE.buildSeconds ? 'meets' : 'MISSES'} < ${LARGE.buildSeconds} s`,
    );
  }
  if (results.startup) {
    const { node, version, repo } = results.startup;
    const cpu = (entry) => (entry.cpuMs === undefined ? '' : ` (CPU ${fmtMs(entry.cpuMs)})`);
    lines.push(
      `start-up (median wall): node -e 0 ${fmtMs(node.ms)}${cpu(node)}; serene --version ${fmtMs(version.ms)}${cpu(version)}; ` +
        `serene repo add, up to its error ${fmtMs(repo.ms)}${cpu(repo)}`,
    );
  }
  lines.push('', ...verdicts.map((line) => `  ${line}`), '');
  console.log(lines.join('\n'));
}

function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    loadavg: os.loadavg().map((load) => load.toFixed(2)),
  };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function fmtMs(ms) {
  return ms >= 10_000
    ? `${(ms / 1000).toFixed(1)} s`
    : ms >= 1000
      ? `${(ms / 1000).toFixed(2)} s`
      : `${ms.toFixed(1)} ms`;
}

function fmtList(values) {
  return values.map((value) => fmtMs(value)).join(', ');
}

function fmtRatio(ratio) {
  return ratio === undefined ? 'n/a' : `${ratio >= 100 ? ratio.toFixed(0) : ratio.toFixed(1)}x`;
}

function fmtKB(bytes) {
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

function fmtMB(mb) {
  return mb === undefined ? 'n/a' : `${mb.toFixed(0)} MB`;
}

function positiveInt(value, flag) {
  const number = Number.parseInt(String(value), 10);
  if (!Number.isInteger(number) || number < 1 || String(number) !== String(value).trim())
    fail(`${flag} wants a positive integer`);
  return number;
}

function log(message) {
  console.log(message);
}

function fail(message) {
  console.error(`repo-db bench: ${message}`);
  process.exit(1);
}
