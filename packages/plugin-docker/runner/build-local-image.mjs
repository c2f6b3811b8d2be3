#!/usr/bin/env node
// Builds the runner image on a machine without a container registry: a Debian root made with
// debootstrap (cached as a tarball under .cache/), imported with `docker import`, then this folder's
// Dockerfile on top of it (`docker build --build-arg BASE=<that root>`).
//
//   npm run runner-image -w @serene/plugin-docker                 # builds serene-runner:local if stale
//   node packages/plugin-docker/runner/build-local-image.mjs --force --tag other:tag
//
// Options: --tag NAME (default serene-runner:local), --force (rebuild even when up to date),
// --cache DIR (default <repo>/.cache), --mirror URL (default: the first apt source of this machine
// that carries the suite), --suite NAME (default bookworm).
//
// Quick when nothing changed: the image carries a label with the hash of its inputs (this folder and
// the package list), and is left alone when that label matches.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const HERE = import.meta.dirname;
const REPO = path.resolve(HERE, '../../..');

/** Debian packages the local image needs: makepkg and pacman, and what makepkg builds with. */
const PACKAGES = [
  'makepkg',
  'pacman-package-manager',
  'sudo',
  'git',
  'build-essential',
  'fakeroot',
  'libarchive-tools',
  'zstd',
  'xz-utils',
  'gzip',
  'bzip2',
  'ca-certificates',
  'curl',
  'file',
  'gnupg',
];

/** The label that records which inputs an image was built from. */
const HASH_LABEL = 'serene.runner.hash';

const { values: args } = parseArgs({
  options: {
    tag: { type: 'string', default: 'serene-runner:local' },
    force: { type: 'boolean', default: false },
    cache: { type: 'string', default: path.join(REPO, '.cache') },
    mirror: { type: 'string' },
    suite: { type: 'string', default: 'bookworm' },
  },
});

function say(message) {
  process.stderr.write(`runner-image: ${message}\n`);
}

function fail(message) {
  say(message);
  process.exit(1);
}

/** Runs a program with inherited output; exits on failure. */
function sh(program, argv, options = {}) {
  const result = spawnSync(program, argv, { stdio: 'inherit', ...options });
  if (result.status !== 0) fail(`${program} ${argv.join(' ')} failed (${result.status ?? result.signal})`);
  return result;
}

/** Runs a program quietly and returns its exit code and stdout. */
function probe(program, argv) {
  const result = spawnSync(program, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: result.status ?? -1, stdout: result.stdout ?? '' };
}

/** The first apt mirror of this machine that carries `suite` (deb822 `.sources` or `sources.list`). */
function aptMirror(suite) {
  const files = [];
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) files.push(path.join(dir, name));
  }
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (key) =>
          stanza
            .match(new RegExp(`^${key}:\\s*(.+)$`, 'mi'))?.[1]
            ?.trim()
            .split(/\s+/) ?? [];
        if (field('Types').includes('deb') && field('Suites').includes(suite)) {
          const uri = field('URIs')[0];
          if (uri) return uri;
        }
      }
    } else if (file.endsWith('.list')) {
      for (const line of text.split('\n')) {
        const match = line.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/);
        if (match && match[2] === suite) return match[1];
      }
    }
  }
  return undefined;
}

async function hashFolder(dir, hash) {
  for (const entry of (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      hash.update(`dir ${entry.name}\n`);
      await hashFolder(file, hash);
    } else if (entry.isFile()) {
      const stat = await fs.stat(file);
      hash.update(`file ${entry.name} ${stat.mode & 0o111 ? 'x' : '-'}\n`);
      hash.update(await fs.readFile(file));
    }
  }
}

// --- engine ---

if (probe('docker', ['version', '--format', '{{.Server.Version}}']).code !== 0) {
  fail('the Docker Engine is not reachable (run scripts/setup-docker.mjs, or start dockerd)');
}

const rootKey = createHash('sha256')
  .update(`${args.suite}\n${PACKAGES.join(' ')}\n`)
  .digest('hex')
  .slice(0, 12);
const baseTag = `serene-runner-root:${args.suite}-${rootKey}`;
const inputs = createHash('sha256').update(`${baseTag}\n`);
await hashFolder(HERE, inputs);
const inputHash = inputs.digest('hex').slice(0, 16);

if (!args.force) {
  const current = probe('docker', [
    'image',
    'inspect',
    '--format',
    `{{index .Config.Labels "${HASH_LABEL}"}}`,
    args.tag,
  ]);
  if (current.code === 0 && current.stdout.trim() === inputHash) {
    say(`${args.tag} is up to date (${inputHash})`);
    process.exit(0);
  }
}

// --- the Debian root, cached as a tarball ---

if (probe('docker', ['image', 'inspect', baseTag]).code !== 0) {
  await fs.mkdir(args.cache, { recursive: true });
  const tarball = path.join(args.cache, `runner-root-${args.suite}-${rootKey}.tar`);
  if (!existsSync(tarball)) {
    const mirror = args.mirror ?? aptMirror(args.suite);
    if (!mirror) fail(`no apt source for '${args.suite}' on this machine; pass --mirror URL`);
    if (probe('debootstrap', ['--version']).code !== 0)
      fail('debootstrap is not installed (apt-get install debootstrap)');
    const root = await fs.mkdtemp(path.join(args.cache, 'runner-root-'));
    try {
      say(`debootstrap ${args.suite} from ${mirror} (a few minutes, once)`);
      sh('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, args.suite, root, mirror]);
      // smaller tarball: no downloaded .debs, no apt lists
      sh('sh', [
        '-c',
        'rm -rf "$0"/var/cache/apt/archives/*.deb "$0"/var/lib/apt/lists/* "$0"/debootstrap',
        root,
      ]);
      sh('sh', ['-c', 'tar -C "$0" -c . > "$1.tmp" && mv "$1.tmp" "$1"', root, tarball]);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  }
  say(`docker import ${path.relative(REPO, tarball)} as ${baseTag}`);
  sh('sh', ['-c', 'docker import - "$1" < "$0" > /dev/null', tarball, baseTag]);
}

// --- the Dockerfile's steps on top ---

const previous = probe('docker', ['image', 'inspect', '--format', '{{.Id}}', args.tag]).stdout.trim();
say(`docker build ${args.tag} on ${baseTag}`);
sh(
  'docker',
  [
    'build',
    '--network',
    'host',
    '--build-arg',
    `BASE=${baseTag}`,
    '--label',
    `${HASH_LABEL}=${inputHash}`,
    '--tag',
    args.tag,
    HERE,
  ],
  { env: { ...process.env, DOCKER_BUILDKIT: '0' } },
);
// the image this one replaces is left without a tag: remove it (not while containers still use it)
const current = probe('docker', ['image', 'inspect', '--format', '{{.Id}}', args.tag]).stdout.trim();
if (previous !== '' && previous !== current) probe('docker', ['image', 'rm', previous]);
say(`built ${args.tag} (${inputHash}); use it with RUNNER_IMAGE=${args.tag}`);
