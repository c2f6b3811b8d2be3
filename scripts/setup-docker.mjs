#!/usr/bin/env node
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import * as path from 'node:path';
// Prepares this machine for the DockerRunner tests: installs Debian's docker.io when the docker
// program is missing, starts `dockerd --bridge=none --iptables=false` when no engine answers, and
// builds the local runner image `serene-runner:local` (quick when it is up to date; the debootstrap
// root is cached under .cache/). Idempotent. Where it cannot do a step (not root, no apt, no
// debootstrap mirror), it says so and exits 0: the engine tests then skip with that reason.
//
//   node scripts/setup-docker.mjs           # everything
//   node scripts/setup-docker.mjs --no-image
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const REPO = path.resolve(import.meta.dirname, '..');
const CACHE = path.join(REPO, '.cache');
const IMAGE = 'serene-runner:local';

const { values: args } = parseArgs({
  options: { 'no-image': { type: 'boolean', default: false } },
});

function say(message) {
  process.stderr.write(`setup-docker: ${message}\n`);
}

function has(program) {
  return (process.env.PATH ?? '/usr/bin:/bin')
    .split(':')
    .some((dir) => dir && existsSync(path.join(dir, program)));
}

function engineAnswers() {
  const result = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], {
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 15_000,
  });
  return result.status === 0;
}

function done(message) {
  say(message);
  process.exit(0);
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

// --- docker.io and debootstrap ---

const wanted = [
  ['docker', 'docker.io'],
  ['debootstrap', 'debootstrap'],
].filter(([program]) => !has(program));
if (wanted.length > 0) {
  const packages = wanted.map(([, pkg]) => pkg);
  if (!isRoot || !has('apt-get')) {
    if (!has('docker'))
      done(`docker is not installed (apt-get install docker.io as root); engine tests will skip`);
    say(`missing ${packages.join(', ')}; the runner image cannot be built here`);
  } else {
    say(`installing ${packages.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    const install = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], {
      stdio: 'inherit',
      env,
    });
    if (install.status !== 0 && !has('docker')) done('could not install docker.io; engine tests will skip');
  }
}

// --- the engine ---

if (!engineAnswers()) {
  if (!isRoot) done('no Docker Engine answers and starting one needs root; engine tests will skip');
  const running = spawnSync('pgrep', ['-x', 'dockerd'], { stdio: 'ignore' }).status === 0;
  if (!running) {
    mkdirSync(CACHE, { recursive: true });
    const log = openSync(path.join(CACHE, 'dockerd.log'), 'a');
    say(
      `starting dockerd --bridge=none --iptables=false (log: ${path.relative(REPO, path.join(CACHE, 'dockerd.log'))})`,
    );
    const daemon = spawn('dockerd', ['--bridge=none', '--iptables=false'], {
      detached: true,
      stdio: ['ignore', log, log],
    });
    daemon.unref();
  } else {
    say('dockerd is running but not answering yet; waiting');
  }
  const deadline = Date.now() + 60_000;
  while (!engineAnswers()) {
    if (Date.now() > deadline) done('the Docker Engine did not come up within 60 s; engine tests will skip');
    await sleep(500);
  }
  say('the Docker Engine is up');
}

// --- the runner image ---

if (args['no-image']) done('engine ready (image step skipped)');
const build = spawnSync(
  process.execPath,
  [path.join(REPO, 'packages/plugin-docker/runner/build-local-image.mjs'), '--tag', IMAGE, '--cache', CACHE],
  { stdio: 'inherit' },
);
if (build.status !== 0) done(`could not build ${IMAGE}; engine tests will skip`);
done(`engine and ${IMAGE} ready`);
