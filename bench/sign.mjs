#!/usr/bin/env node
// Benchmark: signing one large package, serene's OpenPGP signer against `gpg --detach-sign`, with
// the same key, in the same run.
//
//   npm run build && node bench/sign.mjs [--size-mb 200] [--reps 5] [--keys ed25519,rsa3072]
//                                        [--hash sha256|sha512] [--read-kb 64,1024]
//
// For each key type: gpg makes a key in a throw-away home and exports it armoured, as the plugin's
// README tells users to. A pseudo-random file of --size-mb MB (bench/out/sign/, kept between runs)
// is then signed --reps times by each contender, in turns, after a warm-up of each:
//   - ours: `loadOpenPgpSigner({ keyFile })`, then `signer.sign(createReadStream(file))` as the
//     publisher calls it, once per read size of --read-kb (64 KiB, Node's default, is what core's
//     publisher reads with today). Each run is a child process that signs twice: first in a fresh
//     process (cold), then as a server that has signed before (warm: the figure the goal is checked
//     on). It reports both wall times, the warm one's CPU time, its start-up (the openpgp import and
//     the key check), its RSS before and while signing, and its peak RSS;
//   - gpg:  `gpg --batch --detach-sign --no-armor --digest-algo <hash>`: wall time of the process
//     (its agent already runs), CPU time and peak RSS through `/usr/bin/time` where it exists.
// Both use the same digest (SHA-256 by default: what gpg 2.2 picks, and our default). Every
// signature is checked with `gpg --verify`. Goals (the issue's): ours at most 1.5x gpg's time, and
// memory flat: RSS while signing grows by less than 64 MB over the RSS before it, whatever the size
// (try --size-mb 1000). Wall times wander on a busy machine; CPU times are shown beside them.
// Results go to stdout and to bench/out/sign/results.json.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { finished } from 'node:stream/promises';
import { parseArgs, promisify } from 'node:util';
import { hasProgram } from '../scripts/programs.mjs';

const exec = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..');
const OUT = path.join(ROOT, 'bench/out/sign');
const PLUGIN = path.join(ROOT, 'packages/plugin-signing/dist/index.js');
// flat: what signing adds to the RSS is a constant (stream buffers awaiting GC), far below the input
const GOALS = { ratio: 1.5, growthMB: 64 };
const GPG_ALGOS = { ed25519: 'ed25519', rsa3072: 'rsa3072' };

// not strict: `npm run bench -- --count N` passes every benchmark the others' options too
const { values: args } = parseArgs({
  strict: false,
  options: {
    'size-mb': { type: 'string', default: '200' },
    reps: { type: 'string', default: '5' },
    keys: { type: 'string', default: 'ed25519,rsa3072' },
    hash: { type: 'string', default: 'sha256' },
    'read-kb': { type: 'string', default: '64,1024' },
    child: { type: 'boolean', default: false },
    key: { type: 'string' },
    data: { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(
    'usage: node bench/sign.mjs [--size-mb 200] [--reps 5] [--keys ed25519,rsa3072] [--hash sha256|sha512] [--read-kb 64,1024]',
  );
  process.exit(0);
}

if (args.child) {
  await child();
} else {
  await main();
}

// --- The measuring process ------------------------------------------------------------------------

async function main() {
  const sizeMB = positiveInt(args['size-mb'], '--size-mb');
  const reps = positiveInt(args.reps, '--reps');
  const hash = args.hash;
  if (!['sha256', 'sha512'].includes(hash)) fail('--hash must be sha256 or sha512');
  const readSizes = args['read-kb'].split(',').map((value) => positiveInt(value, '--read-kb'));
  const keys = args.keys.split(',').filter(Boolean);
  for (const key of keys)
    if (!GPG_ALGOS[key]) fail(`unknown key type '${key}' (${Object.keys(GPG_ALGOS).join(', ')})`);
  if (!existsSync(PLUGIN)) fail(`${path.relative(ROOT, PLUGIN)} is missing: run \`npm run build\` first`);
  if (!hasProgram('gpg')) fail('gpg is not installed');
  const timeProgram = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

  await fs.mkdir(OUT, { recursive: true });
  const data = await generate(sizeMB);
  log(
    `sign benchmark: ${sizeMB} MB, ${reps} repetitions, ${hash}, reads of ${readSizes.join(', ')} KiB, keys ${keys.join(', ')}`,
  );
  // the page cache warm for everyone
  for await (const _ of createReadStream(data, { highWaterMark: 1 << 20 }));

  const results = { sizeMB, reps, hash, machine: machine(), date: new Date().toISOString(), rows: [] };
  for (const type of keys) {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-bench-gpg-'));
    try {
      await fs.chmod(home, 0o700);
      const gpg = (more) =>
        exec('gpg', ['--batch', '--no-tty', '--homedir', home, ...more], { maxBuffer: 1 << 24 });
      log(`${type}: making the key with gpg`);
      await gpg([
        '--passphrase',
        '',
        '--pinentry-mode',
        'loopback',
        '--quick-gen-key',
        `serene bench ${type} <bench@serene.invalid>`,
        GPG_ALGOS[type],
        'sign',
        'never',
      ]);
      const listing = (await gpg(['--with-colons', '--fingerprint'])).stdout;
      const fingerprint = listing
        .split('\n')
        .find((line) => line.startsWith('fpr:'))
        .split(':')[9];
      const keyFile = path.join(home, 'sign_key.asc');
      await fs.writeFile(keyFile, (await gpg(['--armor', '--export-secret-keys', fingerprint])).stdout, {
        mode: 0o600,
      });

      const signatures = { gpg: path.join(OUT, `gpg-${type}.sig`) };
      const contenders = {
        gpg: () =>
          timed(
            'gpg',
            [
              '--batch',
              '--no-tty',
              '--homedir',
              home,
              '--local-user',
              fingerprint,
              '--digest-algo',
              hash.toUpperCase(),
              '--detach-sign',
              '--no-armor',
              '--yes',
              '--output',
              signatures.gpg,
              data,
            ],
            timeProgram,
          ),
      };
      for (const readKB of readSizes) {
        const label = `ours-${readKB}`;
        signatures[label] = path.join(OUT, `ours-${type}-${readKB}.sig`);
        contenders[label] = async () => {
          const output = await spawnCollect(process.execPath, [
            import.meta.filename,
            '--child',
            '--key',
            keyFile,
            '--data',
            data,
            '--out',
            signatures[label],
            '--hash',
            hash,
            '--read-kb',
            String(readKB),
          ]);
          if (output.code !== 0) fail(`ours failed (${output.code}):\n${output.stderr}`);
          return JSON.parse(output.stdout.trim().split('\n').pop());
        };
      }

      log(`${type}: warm-up`);
      for (const run of Object.values(contenders)) await run();
      const runs = Object.fromEntries(Object.keys(contenders).map((label) => [label, []]));
      const order = Object.keys(contenders);
      for (let i = 0; i < reps; i++) {
        // a different one goes first each time, so none always gets the warmer caches
        for (let j = 0; j < order.length; j++) {
          const label = order[(i + j) % order.length];
          runs[label].push(await contenders[label]());
        }
      }
      for (const [label, sig] of Object.entries(signatures)) {
        const verified = await gpg(['--verify', sig, data]).then(
          () => true,
          () => false,
        );
        if (!verified) fail(`${type}: gpg --verify refused the signature of ${label}`);
      }
      const gpgResult = {
        ms: median(runs.gpg.map((run) => run.ms)),
        runs: runs.gpg.map((run) => run.ms),
        maxRssMB: max(runs.gpg.map((run) => run.maxRssMB)),
        cpuMs: timeProgram ? median(runs.gpg.map((run) => run.cpuMs)) : undefined,
      };
      for (const readKB of readSizes) {
        const mine = runs[`ours-${readKB}`];
        const ours = {
          ms: median(mine.map((run) => run.signMs)),
          runs: mine.map((run) => run.signMs),
          cpuMs: median(mine.map((run) => run.signCpuMs)),
          coldMs: median(mine.map((run) => run.coldMs)),
          loadMs: median(mine.map((run) => run.loadMs)),
          rssBeforeMB: max(mine.map((run) => run.rssBeforeMB)),
          rssDuringMB: max(mine.map((run) => run.rssDuringMB)),
          maxRssMB: max(mine.map((run) => run.maxRssMB)),
        };
        const row = {
          type,
          readKB,
          fingerprint,
          signingKey: mine[0].signingKey,
          ours,
          gpg: gpgResult,
          ratio: ours.ms / gpgResult.ms,
          coldRatio: ours.coldMs / gpgResult.ms,
          cpuRatio: gpgResult.cpuMs ? ours.cpuMs / gpgResult.cpuMs : undefined,
          growthMB: ours.rssDuringMB - ours.rssBeforeMB,
        };
        results.rows.push(row);
        log(
          `${type}, ${readKB} KiB reads: ours ${fmtMs(ours.ms)} (${fmtList(ours.runs)}), gpg ${fmtMs(gpgResult.ms)} (${fmtList(gpgResult.runs)})`,
        );
      }
    } finally {
      await exec('gpgconf', ['--homedir', home, '--kill', 'all']).catch(() => undefined);
      await fs.rm(home, { recursive: true, force: true });
    }
  }
  await fs.writeFile(path.join(OUT, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  printTable(results);
}

function printTable(results) {
  const lines = [
    '',
    `| ${results.sizeMB} MB, ${results.hash} | ours: sign (warm) | ours: sign (cold) | ours: start-up | gpg --detach-sign | ours / gpg (warm, cold) | CPU ours / gpg | ours RSS before → while signing (peak) | gpg peak RSS |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const verdicts = [];
  for (const row of results.rows) {
    const { ours, gpg } = row;
    const label = `${row.type}, ${row.readKB} KiB reads`;
    lines.push(
      `| ${label} | ${fmtMs(ours.ms)} | ${fmtMs(ours.coldMs)} | ${fmtMs(ours.loadMs)} | ${fmtMs(gpg.ms)} | ` +
        `${row.ratio.toFixed(2)}x, ${row.coldRatio.toFixed(2)}x | ${fmtMs(ours.cpuMs)} / ${fmtMs(gpg.cpuMs)} | ` +
        `${fmtMB(ours.rssBeforeMB)} → ${fmtMB(ours.rssDuringMB)} (${fmtMB(ours.maxRssMB)}) | ${fmtMB(gpg.maxRssMB)} |`,
    );
    const cpu = row.cpuRatio === undefined ? '' : `; CPU ${row.cpuRatio.toFixed(2)}x`;
    verdicts.push(
      `${label}: ours / gpg ${row.ratio.toFixed(2)}x ${row.ratio <= GOALS.ratio ? 'meets' : 'MISSES'} ≤ ${GOALS.ratio}x ` +
        `(cold ${row.coldRatio.toFixed(2)}x${cpu}); RSS grows by ${fmtMB(row.growthMB)}: ` +
        `${row.growthMB < GOALS.growthMB ? 'meets' : 'MISSES'} flat (< ${GOALS.growthMB} MB)`,
    );
  }
  lines.push('', ...verdicts.map((line) => `  ${line}`));
  lines.push(
    '',
    `  ${results.machine.cpus} × ${results.machine.model}, Node ${results.machine.node}; load average at start ${results.machine.loadavg.join(' ')}, at end ${os
      .loadavg()
      .map((load) => load.toFixed(2))
      .join(' ')}`,
    '',
  );
  console.log(lines.join('\n'));
}

/** Runs a program, resolving with its wall time (and peak RSS and CPU time when `/usr/bin/time` is there). */
async function timed(program, programArgs, timeProgram) {
  const rssFile = path.join(OUT, 'time.out');
  const [command, commandArgs] = timeProgram
    ? [timeProgram, ['-f', '%M %U %S', '-o', rssFile, program, ...programArgs]]
    : [program, programArgs];
  const started = performance.now();
  const output = await spawnCollect(command, commandArgs);
  const ms = performance.now() - started;
  if (output.code !== 0) fail(`${program} failed (${output.code}):\n${output.stderr}`);
  if (!timeProgram) return { ms };
  const [rssKB, user, system] = (await fs.readFile(rssFile, 'utf8')).trim().split(/\s+/).map(Number);
  return { ms, maxRssMB: rssKB / 1024, cpuMs: (user + system) * 1000 };
}

function spawnCollect(program, programArgs) {
  return new Promise((resolve, reject) => {
    const proc = spawn(program, programArgs, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    proc.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    proc.on('error', reject);
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// --- The measured child: ours, as the server runs it -------------------------------------------------

async function child() {
  const started = performance.now();
  const { loadOpenPgpSigner } = await import(PLUGIN);
  const signer = await loadOpenPgpSigner({ keyFile: args.key, hash: args.hash });
  const loadMs = performance.now() - started;
  const rssBefore = process.memoryUsage().rss;
  let rssDuring = rssBefore;
  const sampler = setInterval(() => {
    rssDuring = Math.max(rssDuring, process.memoryUsage().rss);
  }, 10);
  // twice: the first in a fresh process (cold), the second as a server that has signed before (warm)
  const runs = [];
  let signature;
  for (let i = 0; i < 2; i++) {
    const signStarted = performance.now();
    const cpuStarted = process.cpuUsage();
    // as the publisher reads packages: a read stream
    signature = await signer.sign(
      createReadStream(args.data, { highWaterMark: Number(args['read-kb']) * 1024 }),
    );
    const cpu = process.cpuUsage(cpuStarted);
    runs.push({ ms: performance.now() - signStarted, cpuMs: (cpu.user + cpu.system) / 1000 });
  }
  clearInterval(sampler);
  rssDuring = Math.max(rssDuring, process.memoryUsage().rss);
  await fs.writeFile(args.out, signature);
  process.stdout.write(
    `${JSON.stringify({
      coldMs: runs[0].ms,
      signMs: runs[1].ms,
      signCpuMs: runs[1].cpuMs,
      loadMs,
      signingKey: signer.signingKeyFingerprint,
      rssBeforeMB: rssBefore / 2 ** 20,
      rssDuringMB: rssDuring / 2 ** 20,
      maxRssMB: process.resourceUsage().maxRSS / 1024,
    })}\n`,
  );
}

// --- Helpers ---------------------------------------------------------------------------------------

/** A pseudo-random file of `sizeMB` MB (incompressible, like a zstd package), reused between runs. */
async function generate(sizeMB) {
  const file = path.join(OUT, `package-${sizeMB}MB.pkg.tar.zst`);
  const stat = await fs.stat(file).catch(() => undefined);
  if (stat?.size === sizeMB * 2 ** 20) return file;
  log(`writing ${sizeMB} MB of pseudo-random data to ${path.relative(ROOT, file)}`);
  const out = createWriteStream(file);
  for (let i = 0; i < sizeMB; i++) {
    if (!out.write(randomBytes(2 ** 20))) await new Promise((resolve) => out.once('drain', resolve));
  }
  out.end();
  await finished(out);
  return file;
}

function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model,
    node: process.version,
    gpg: undefined,
    loadavg: os.loadavg().map((load) => load.toFixed(2)),
  };
}

function positiveInt(value, name) {
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0) fail(`${name} must be a positive integer`);
  return number;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function max(values) {
  const known = values.filter((value) => value !== undefined);
  return known.length > 0 ? Math.max(...known) : undefined;
}

function fmtMs(ms) {
  if (ms === undefined) return 'n/a';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

function fmtList(values) {
  return values.map((value) => fmtMs(value)).join(', ');
}

function fmtMB(mb) {
  return mb === undefined ? 'n/a' : `${mb.toFixed(0)} MB`;
}

function log(message) {
  process.stderr.write(`${message}\n`);
}

function fail(message) {
  process.stderr.write(`sign bench: ${message}\n`);
  process.exit(1);
}
