#!/usr/bin/env node
// DockerRunner against a raw `docker run` of the same image with the same script, in the same run:
// time from the start of a job to the package files in hand, for one trivial PKGBUILD. Goal: ours
// at most 1.2x the raw run. Prints the per-build overhead in seconds.
//
//   npm run build && node bench/docker-runner.mjs [--docker-runs 7] [--image serene-runner:local]
//
// Ours runs clean builds (a new container each time, as the raw run has) and, for reference,
// reused-container builds (the default for a package built before). The raw run bind-mounts the
// sources and the output folder (`docker run -v src:/app/build -v out:/app/target`), the cheapest
// way to get files in and out with the docker CLI; its container is removed after the clock stops.
// Builds on a busy machine vary by seconds, so the overhead is also measured precisely: the time
// outside the container's own run window, per build. Needs a Docker Engine and the image
// (node scripts/setup-docker.mjs); without them it says so and exits 0.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  strict: false,
  options: {
    'docker-runs': { type: 'string', default: '7' },
    image: { type: 'string', default: 'serene-runner:local' },
    socket: { type: 'string', default: '/var/run/docker.sock' },
  },
});
const RUNS = Math.max(1, Number(args['docker-runs']) || 7);
const IMAGE = String(args.image);
const GOAL = 1.2;

if (spawnSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' }).status !== 0) {
  console.log(`docker-runner: skipped (no Docker Engine or no ${IMAGE}; run node scripts/setup-docker.mjs)`);
  process.exit(0);
}

const { createDockerRunner } = await import('@serene/plugin-docker');

const BASE = 'serene-bench-trivial';
const PKGBUILD = `pkgname=${BASE}
pkgver=1.0
pkgrel=1
pkgdesc='serene bench'
arch=('any')
license=('MIT')
options=('!strip' '!debug')
build() { echo "building"; }
package() { mkdir -p "$pkgdir/usr/share/$pkgname"; echo hello > "$pkgdir/usr/share/$pkgname/hello"; }
`;
const INPUTS = { customRepo: '', prepare: '', makepkgFlags: '' };
const PREFIX = `serene-bench-${process.pid}-`;

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-bench-docker-'));
await fs.chmod(root, 0o755);

async function jobFolder(name) {
  const dir = path.join(root, name);
  await fs.mkdir(path.join(dir, 'src'), { recursive: true });
  await fs.mkdir(path.join(dir, 'out'), { recursive: true });
  await fs.writeFile(path.join(dir, 'src', 'PKGBUILD'), PKGBUILD);
  return dir;
}

async function packagesIn(dir) {
  return (await fs.readdir(dir)).filter((name) => /\.pkg\.tar(\.\w+)?$/.test(name));
}

/** `docker run` of the image's build script on bind-mounted folders; resolves with seconds. */
async function raw(index) {
  const dir = await jobFolder(`raw-${index}`);
  const src = path.join(dir, 'src');
  await fs.writeFile(path.join(src, 'custom-repo'), INPUTS.customRepo);
  await fs.writeFile(path.join(src, 'serene-prepare.sh'), INPUTS.prepare);
  await fs.writeFile(path.join(src, 'makepkg-flags'), INPUTS.makepkgFlags);
  const start = performance.now();
  const code = await new Promise((resolve, reject) => {
    const child = spawn(
      'docker',
      [
        'run',
        '--network',
        'host',
        '--name',
        `${PREFIX}raw-${index}`,
        '-v',
        `${src}:/app/build`,
        '-v',
        `${path.join(dir, 'out')}:/app/target`,
        '--entrypoint',
        './build.sh',
        IMAGE,
      ],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    child.on('error', reject);
    child.on('close', resolve);
  });
  const seconds = (performance.now() - start) / 1000;
  const files = await packagesIn(path.join(dir, 'out'));
  if (code !== 0 || files.length !== 1)
    throw new Error(`raw docker run failed (exit ${code}, ${files.length} packages)`);
  // the container's own run window, read after the clock stopped (as `--rm` would remove it)
  const name = `${PREFIX}raw-${index}`;
  const window = spawnSync(
    'docker',
    ['inspect', '--format', '{{.State.StartedAt}} {{.State.FinishedAt}}', name],
    {
      encoding: 'utf8',
    },
  ).stdout.trim();
  spawnSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
  const [startedAt, finishedAt] = window.split(' ').map((text) => Date.parse(text));
  return { seconds, inside: (finishedAt - startedAt) / 1000 };
}

const runner = createDockerRunner({
  url: String(args.socket),
  image: IMAGE,
  prefix: PREFIX,
  srcinfoName: `${PREFIX}srcinfo`,
  network: 'host',
  pruneImages: false,
});

/** One build through DockerRunner; resolves with seconds. */
async function ours(index, clean) {
  const dir = await jobFolder(`ours-${clean ? 'clean' : 'reuse'}-${index}`);
  const start = performance.now();
  const result = await runner.run({
    base: BASE,
    sourceDir: path.join(dir, 'src'),
    outputDir: path.join(dir, 'out'),
    inputs: INPUTS,
    clean,
  });
  const seconds = (performance.now() - start) / 1000;
  if (!result.success || result.packages.length !== 1)
    throw new Error(`DockerRunner build failed:\n${result.logs}`);
  return { seconds, inside: (result.ended.getTime() - result.started.getTime()) / 1000 };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmt = (seconds) => `${seconds.toFixed(2)} s`;

const times = { raw: [], clean: [], reuse: [] };
/** seconds outside the container's run window: the runner's own cost per build */
const outside = { raw: [], clean: [], reuse: [] };
const record = (kind, { seconds, inside }) => {
  times[kind].push(seconds);
  outside[kind].push(seconds - inside);
};
try {
  // warm-up: page cache, image layers, the first container of the package
  await raw('warmup');
  await ours('warmup', true);
  for (let i = 0; i < RUNS; i++) {
    // alternate the order so that neither side always runs on a warmer machine
    if (i % 2 === 0) {
      record('raw', await raw(i));
      record('clean', await ours(i, true));
    } else {
      record('clean', await ours(i, true));
      record('raw', await raw(i));
    }
    record('reuse', await ours(i, false));
    console.log(
      `run ${i + 1}/${RUNS}: raw ${fmt(times.raw.at(-1))}, ours new container ${fmt(times.clean.at(-1))}, ` +
        `ours reused container ${fmt(times.reuse.at(-1))}`,
    );
  }
} finally {
  await runner.remove(BASE).catch(() => undefined);
  await runner.dispose();
  await fs.rm(root, { recursive: true, force: true }).catch(() => undefined);
}

const rawMedian = median(times.raw);
const cleanMedian = median(times.clean);
const reuseMedian = median(times.reuse);
const ratio = cleanMedian / rawMedian;
const rows = [
  ['raw docker run (bind mounts)', rawMedian, 'raw'],
  ['DockerRunner, new container', cleanMedian, 'clean'],
  ['DockerRunner, reused container', reuseMedian, 'reuse'],
];
console.log('');
console.log(`| build (median of ${RUNS}) | job start to files in hand | vs raw | outside the container |`);
console.log('|---|---:|---:|---:|');
for (const [label, value, kind] of rows) {
  console.log(
    `| ${label} | ${fmt(value)} | ${(value / rawMedian).toFixed(2)}x | ${fmt(median(outside[kind]))} |`,
  );
}
console.log('');
const overhead = median(outside.clean) - median(outside.raw);
// each iteration ran both back to back: their ratio sees (nearly) the same load on the machine
const paired = median(times.clean.map((value, i) => value / times.raw[i]));
// both run the same script in the same image: the work inside is the same, only the outside differs
const work = median(times.raw.map((value, i) => value - outside.raw[i]));
const expected = (work + median(outside.clean)) / (work + median(outside.raw));
console.log(
  `per-build overhead of DockerRunner: ${median(outside.clean).toFixed(2)} s outside the container`,
);
console.log(
  `  (raw docker run: ${median(outside.raw).toFixed(2)} s; difference ${overhead >= 0 ? '+' : ''}${overhead.toFixed(2)} s per build)`,
);
console.log(
  `ratio ours/raw: ${ratio.toFixed(2)}x of the medians, ${paired.toFixed(2)}x paired by iteration, ` +
    `${expected.toFixed(2)}x for the same work inside; goal <= ${GOAL}x: ${paired <= GOAL ? 'met' : 'MISSED'} (paired)`,
);

await fs.mkdir(path.join(import.meta.dirname, 'out'), { recursive: true });
await fs.writeFile(
  path.join(import.meta.dirname, 'out', 'docker-runner.json'),
  `${JSON.stringify({ image: IMAGE, runs: RUNS, seconds: times, outside, medians: { raw: rawMedian, clean: cleanMedian, reuse: reuseMedian }, overhead, ratio, paired, expected, goal: GOAL }, null, 2)}\n`,
);
