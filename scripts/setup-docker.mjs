#!/usr/bin/env node
// Prepares this machine for the Docker Engine tests: installs Debian's docker.io when `dockerd` is
// missing (the docker client alone cannot start an engine), starts `dockerd --bridge=none
// --iptables=false` when no engine answers, and builds this clone's runner image (TEST_RUNNER_IMAGE
// of scripts/clone.mjs; quick when it is up to date; the debootstrap root is cached under .cache/).
// Idempotent. One line per step on the terminal, the rest in .cache/setup.log.
//
// Where it cannot do a step (not root, no apt, no debootstrap mirror), it says why, writes the reason
// to .cache/docker-unavailable and exits 0: the engine tests then skip with that reason, or fail
// with it under CI=true.
//
//   node scripts/setup-docker.mjs           # everything
//   node scripts/setup-docker.mjs --no-image
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CACHE, REPO, TEST_RUNNER_IMAGE } from './clone.mjs';
import { hasProgram } from './programs.mjs';
import { LOG, logged, say as sayTo } from './setup-log.mjs';

const REASON_FILE = path.join(CACHE, 'docker-unavailable');

const { values: args } = parseArgs({
  options: { 'no-image': { type: 'boolean', default: false } },
});

const say = (message) => sayTo('setup-docker', message);

function engineAnswers() {
  const result = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], {
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 15_000,
  });
  return result.status === 0;
}

/** Gives up on the engine tests: the reason goes to the terminal and to .cache/docker-unavailable. */
function unavailable(reason) {
  say(`${reason}; the Docker Engine tests will skip (fail under CI=true)`);
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(REASON_FILE, `${reason}\n`);
  process.exit(0);
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
mkdirSync(CACHE, { recursive: true });
rmSync(REASON_FILE, { force: true });

// --- docker.io (dockerd and the client) and debootstrap ---

/** program -> Debian package */
// dockerd only when no engine answers already (one on another host, through DOCKER_HOST, needs none)
const wanted = [
  ...(engineAnswers() ? [] : [['dockerd', 'docker.io']]),
  ['docker', 'docker.io'],
  ['debootstrap', 'debootstrap'],
].filter(([program]) => !hasProgram(program));
if (wanted.length > 0) {
  const packages = [...new Set(wanted.map(([, pkg]) => pkg))];
  const programs = wanted.map(([program]) => program).join(', ');
  if (isRoot && hasProgram('apt-get')) {
    say(`installing ${packages.join(' ')} (missing ${programs}; apt output in ${LOG})`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    logged('apt-get', ['update', '-qq'], { env });
    const install = logged('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], {
      env,
    });
    if (install.status !== 0)
      say(`apt-get install ${packages.join(' ')} failed (exit ${install.status}; see ${LOG})`);
  } else {
    say(`missing ${programs} (as root on Debian: apt-get install ${packages.join(' ')})`);
  }
}

// --- the engine ---

if (!engineAnswers()) {
  if (!hasProgram('docker')) unavailable('no docker client (apt-get install docker.io)');
  if (process.env.DOCKER_HOST)
    unavailable(`no Docker Engine answers at DOCKER_HOST=${process.env.DOCKER_HOST}`);
  const running = spawnSync('pgrep', ['-x', 'dockerd'], { stdio: 'ignore' }).status === 0;
  if (running && !isRoot) {
    unavailable('a dockerd runs but does not answer this user (no permission for /var/run/docker.sock?)');
  }
  if (!running) {
    if (!hasProgram('dockerd'))
      unavailable('no Docker Engine answers and dockerd is not installed (apt-get install docker.io)');
    if (!isRoot) unavailable('no Docker Engine answers and starting dockerd needs root');
    const log = path.join(CACHE, 'dockerd.log');
    say(`starting dockerd --bridge=none --iptables=false (log: ${path.relative(REPO, log)})`);
    const fd = openSync(log, 'a');
    const daemon = spawn('dockerd', ['--bridge=none', '--iptables=false'], {
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    daemon.on('error', (error) => unavailable(`dockerd could not start: ${error.message}`));
    daemon.unref();
  } else {
    say('dockerd is running but not answering yet; waiting');
  }
  const deadline = Date.now() + 60_000;
  while (!engineAnswers()) {
    if (Date.now() > deadline)
      unavailable('the Docker Engine did not answer within 60 s (see .cache/dockerd.log)');
    await sleep(500);
  }
  say('the Docker Engine is up');
}

// --- the runner image ---

if (args['no-image']) {
  say('the Docker Engine answers (image step skipped)');
  process.exit(0);
}
say(`runner image ${TEST_RUNNER_IMAGE} (first time: debootstrap, a few minutes; output in ${LOG})`);
const build = logged(process.execPath, [
  path.join(REPO, 'packages/plugin-docker/runner/build-local-image.mjs'),
  '--tag',
  TEST_RUNNER_IMAGE,
  '--cache',
  CACHE,
]);
if (build.status !== 0) unavailable(`could not build ${TEST_RUNNER_IMAGE} (see ${LOG})`);
say(`the Docker Engine and ${TEST_RUNNER_IMAGE} are ready`);
