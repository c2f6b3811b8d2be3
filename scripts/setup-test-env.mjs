#!/usr/bin/env node
// Prepares this machine for `npm test`, one line per step (details in .cache/setup.log): installs
// the system packages the tests use when they are missing (as root, on a Debian-like system),
// creates the unprivileged user makepkg runs as, then runs this clone's PostgreSQL
// (setup-postgres.mjs), the Docker Engine and runner image (setup-docker.mjs) and the server image
// (build-host-image.mjs). Where a step cannot be done (not root, no apt), it says what is missing;
// the tests that need it skip with that reason, or fail with it under CI=true.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CACHE, CLONE_ID, REPO, TEST_HOST_IMAGE } from './clone.mjs';
import { hasProgram } from './programs.mjs';
import { LOG, logged, say as sayTo, startLog } from './setup-log.mjs';

/** program -> Debian package that provides it */
const PROGRAMS = {
  makepkg: 'makepkg',
  'repo-add': 'pacman-package-manager',
  pacman: 'pacman-package-manager',
  'pacman-key': 'pacman-package-manager',
  vercmp: 'pacman-package-manager',
  bsdtar: 'libarchive-tools',
  fakeroot: 'fakeroot',
  gpg: 'gnupg',
  zstd: 'zstd',
  xz: 'xz-utils',
  git: 'git',
  debootstrap: 'debootstrap',
  bzip2: 'bzip2',
  // the CLI's onboarding through a pty and the elevator (packages/cli/src/onboarding.test.ts)
  script: 'bsdutils',
  sudo: 'sudo',
  // the CLI's completions, parsed and run by each shell (packages/cli/src/completions.test.ts)
  zsh: 'zsh',
  fish: 'fish',
  // the dashboard's browser test (packages/plugin-dashboard)
  chromium: 'chromium',
};

const BUILD_USER = 'serene-build';
const HOST_IMAGE_REASON = path.join(CACHE, 'host-image-unavailable');

const say = (message) => sayTo('setup', message);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

startLog();
say(
  `this clone's test resources carry the id ${CLONE_ID} (node scripts/clone.mjs lists them); details in ${LOG}`,
);

const missing = [
  ...new Set(
    Object.entries(PROGRAMS)
      .filter(([program]) => !hasProgram(program))
      .map(([, pkg]) => pkg),
  ),
];
if (missing.length > 0) {
  if (isRoot && hasProgram('apt-get')) {
    say(`installing ${missing.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const update = logged('apt-get', ['update', '-qq'], { env });
    if (update.status !== 0) say(`apt-get update failed (see ${LOG}); trying the install anyway`);
    const install = logged('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
      env,
    });
    if (install.status !== 0) {
      say(
        `apt-get install failed (exit ${install.status}, see ${LOG}); tests that need ${missing.join(', ')} will skip`,
      );
    }
  } else {
    say(
      `missing ${missing.join(', ')} (run as root on Debian to install them); tests that need them will skip`,
    );
  }
}

if (isRoot && hasProgram('useradd')) {
  const known = spawnSync('id', ['-u', BUILD_USER], { stdio: 'ignore' });
  if (known.status !== 0) {
    say(`creating user ${BUILD_USER} for makepkg`);
    logged('useradd', ['--system', '--create-home', '--shell', '/bin/bash', BUILD_USER]);
  }
}

// PostgreSQL for the store's conformance suite (writes .cache/postgres-url, or the reason it could not)
spawnSync(process.execPath, [path.join(REPO, 'scripts/setup-postgres.mjs')], {
  stdio: ['ignore', 'ignore', 'inherit'],
});

// A Docker Engine and the runner image for the DockerRunner and end-to-end tests (idempotent; the
// debootstrap root is cached under .cache/, so only the first run takes minutes)
spawnSync(process.execPath, [path.join(REPO, 'scripts/setup-docker.mjs')], { stdio: 'inherit' });

// The server image for test/e2e/host-image.test.ts (reused when its inputs are unchanged)
say(`server image ${TEST_HOST_IMAGE} (first time about 10 minutes; output in ${LOG})`);
rmSync(HOST_IMAGE_REASON, { force: true });
const host = logged(process.execPath, [
  path.join(REPO, 'scripts/build-host-image.mjs'),
  '--tag',
  TEST_HOST_IMAGE,
]);
if (host.status === 0) say(`${TEST_HOST_IMAGE} is ready`);
else {
  const reason = `could not build ${TEST_HOST_IMAGE} (see ${LOG})`;
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(HOST_IMAGE_REASON, `${reason}\n`);
  say(`${reason}; the host image test will skip (fail under CI=true)`);
}
say('done');
