#!/usr/bin/env node
// Prepares this machine for `npm test`: installs the system packages the tests use when they are
// missing (as root, on a Debian-like system) and creates the unprivileged user makepkg runs as.
// Where it cannot (not root, no apt), it says what is missing; tests that need it then skip with
// that reason.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';

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
  // the dashboard's browser test (packages/plugin-dashboard)
  chromium: 'chromium',
};

const BUILD_USER = 'serene-build';

function has(program) {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((dir) => dir && existsSync(path.join(dir, program)));
}

function say(message) {
  process.stderr.write(`setup: ${message}\n`);
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const missing = [...new Set(Object.entries(PROGRAMS).filter(([program]) => !has(program)).map(([, pkg]) => pkg))];

if (missing.length > 0) {
  if (isRoot && has('apt-get')) {
    say(`installing ${missing.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    if (update.status !== 0) say('apt-get update failed; trying the install anyway');
    const install = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
      stdio: 'inherit',
      env,
    });
    if (install.status !== 0) {
      say(`apt-get install failed (exit ${install.status}); tests that need ${missing.join(', ')} will skip`);
    }
  } else {
    say(`missing ${missing.join(', ')} (run as root on Debian to install them); tests that need them will skip`);
  }
}

if (isRoot && has('useradd')) {
  const known = spawnSync('id', ['-u', BUILD_USER], { stdio: 'ignore' });
  if (known.status !== 0) {
    say(`creating user ${BUILD_USER} for makepkg`);
    execFileSync('useradd', ['--system', '--create-home', '--shell', '/bin/bash', BUILD_USER], { stdio: 'inherit' });
  }
}

// PostgreSQL for the store's conformance suite (writes .cache/postgres-url, or the reason it could not)
spawnSync(process.execPath, [new URL('./setup-postgres.mjs', import.meta.url).pathname], { stdio: 'inherit' });

// A Docker Engine and the local runner image for the DockerRunner tests (idempotent; the debootstrap
// root is cached under .cache/, so only the first run takes minutes)
spawnSync(process.execPath, [new URL('./setup-docker.mjs', import.meta.url).pathname], { stdio: 'inherit' });

// The server image serene:local for test/e2e/host-image.test.ts (reused when its inputs are unchanged)
spawnSync(process.execPath, [new URL('./build-host-image.mjs', import.meta.url).pathname], { stdio: 'inherit' });
