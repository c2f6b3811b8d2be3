#!/usr/bin/env node
// Starts a PostgreSQL server for the store tests and writes its connection URL to
// .cache/postgres-url, which packages/core/src/store/knex-store.test.ts reads.
//
// As root on Debian it installs `postgresql` with apt when it is missing. It never touches the
// system's clusters: it runs its own throw-away cluster (initdb + pg_ctl, as the `postgres` user
// when run as root) in this clone's folder (TEST_POSTGRES_DIR of scripts/clone.mjs:
// <tmp>/serene-test-postgres-<clone id>, or $SERENE_TEST_POSTGRES_DIR), listening on 127.0.0.1 only, on
// a free port, with fsync off; the password is this clone's (.cache/postgres-password), so two clones
// never reset each other's. A running cluster is reused. The tests connect as
// role `serene_test` (LOGIN CREATEDB, password auth) and create one database per test.
//
// It prints one line per step, never the URL or the password (apt and initdb output go to
// .cache/setup.log). When it cannot, it says why, writes the reason to .cache/postgres-unavailable and
// exits 0; the PostgreSQL tests then skip with that reason (fail with it under CI=true). With SERENE_TEST_POSTGRES_URL set (a server of your
// own, e.g. a CI service; the role needs CREATEDB) it only records that URL.
//
// Usage: node scripts/setup-postgres.mjs [--stop]
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { CACHE, TEST_POSTGRES_DIR } from './clone.mjs';
import { hasProgram } from './programs.mjs';
import { logged, say as sayTo } from './setup-log.mjs';

const URL_FILE = path.join(CACHE, 'postgres-url');
const REASON_FILE = path.join(CACHE, 'postgres-unavailable');
const PASSWORD_FILE = path.join(CACHE, 'postgres-password');
const DATA = TEST_POSTGRES_DIR;
const ROLE = 'serene_test';
const DATABASE = 'serene_test';
const SERVER_USER = 'postgres';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

const say = (message) => sayTo('setup-postgres', message);

class Unavailable extends Error {}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (result.error) return { status: -1, stdout: '', stderr: String(result.error.message) };
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/** Runs a PostgreSQL program as the server's user (root cannot run initdb or postgres). */
function runAsServer(command, args, options = {}) {
  return isRoot
    ? run('runuser', ['-u', SERVER_USER, '--', command, ...args], options)
    : run(command, args, options);
}

/** The bin folder of the newest installed PostgreSQL (Debian layout), or undefined. */
function findBin() {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((name) => /^\d+$/.test(name) && existsSync(path.join(base, name, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined
    ? undefined
    : { version: versions[0], bin: path.join(base, versions[0], 'bin') };
}

function install() {
  if (!isRoot || !hasProgram('apt-get')) {
    throw new Unavailable(
      'PostgreSQL is not installed (run this script as root on Debian to install it, or set SERENE_TEST_POSTGRES_URL)',
    );
  }
  say('installing postgresql with apt');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = logged('apt-get', ['update', '-qq'], { env });
  if (update.status !== 0) say('apt-get update failed; trying the install anyway');
  const result = logged('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'postgresql'], {
    env,
  });
  if (result.status !== 0) throw new Unavailable(`apt-get install postgresql failed (exit ${result.status})`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The port of the running cluster in DATA, or undefined when it is not running. */
function runningPort(bin) {
  const status = runAsServer(path.join(bin, 'pg_ctl'), ['status', '-D', DATA]);
  if (status.status !== 0) return undefined;
  // postmaster.pid: pid, data dir, start time, port, socket dir, listen address, ...
  const lines = readFileSync(path.join(DATA, 'postmaster.pid'), 'utf8').split('\n');
  const port = Number(lines[3]);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

function serverIds() {
  const uid = run('id', ['-u', SERVER_USER]);
  const gid = run('id', ['-g', SERVER_USER]);
  if (uid.status !== 0 || gid.status !== 0)
    throw new Unavailable(`there is no '${SERVER_USER}' user to run PostgreSQL`);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function initCluster(bin, version) {
  const versionFile = path.join(DATA, 'PG_VERSION');
  if (existsSync(versionFile) && readFileSync(versionFile, 'utf8').trim() === version) return;
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(DATA, { recursive: true, mode: 0o700 });
  if (isRoot) {
    const { uid, gid } = serverIds();
    chownSync(DATA, uid, gid);
  }
  say(`creating a PostgreSQL ${version} cluster in ${DATA}`);
  const common = [
    '-D',
    DATA,
    '-U',
    'postgres',
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '-E',
    'UTF8',
  ];
  // An ICU (linguistic) default collation, as production databases have, so the tests show the
  // store does not depend on the database's collation; plain C.UTF-8 where ICU is not built in.
  let result = runAsServer(path.join(bin, 'initdb'), [
    ...common,
    '--locale=C.UTF-8',
    '--locale-provider=icu',
    '--icu-locale=en-US',
  ]);
  if (result.status !== 0) {
    rmSync(DATA, { recursive: true, force: true });
    mkdirSync(DATA, { recursive: true, mode: 0o700 });
    if (isRoot) {
      const { uid, gid } = serverIds();
      chownSync(DATA, uid, gid);
    }
    result = runAsServer(path.join(bin, 'initdb'), [...common, '--locale=C.UTF-8']);
  }
  if (result.status !== 0)
    throw new Unavailable(`initdb failed: ${result.stderr.trim() || result.stdout.trim()}`);
}

async function startCluster(bin) {
  const running = runningPort(bin);
  if (running !== undefined) return running;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const options = [
      `-p ${port}`,
      '-c listen_addresses=127.0.0.1',
      `-c unix_socket_directories=${DATA}`,
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
    ].join(' ');
    const log = path.join(DATA, 'server.log');
    const result = runAsServer(path.join(bin, 'pg_ctl'), [
      'start',
      '-w',
      '-t',
      '60',
      '-D',
      DATA,
      '-l',
      log,
      '-o',
      options,
    ]);
    if (result.status === 0) {
      say(`started PostgreSQL on 127.0.0.1:${port}`);
      return port;
    }
    const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-5).join('\n') : result.stderr;
    say(`pg_ctl start failed (attempt ${attempt + 1}): ${tail.trim()}`);
  }
  throw new Unavailable(`could not start PostgreSQL in ${DATA} (see ${path.join(DATA, 'server.log')})`);
}

function password() {
  if (existsSync(PASSWORD_FILE)) return readFileSync(PASSWORD_FILE, 'utf8').trim();
  const value = randomBytes(18).toString('hex');
  writeFileSync(PASSWORD_FILE, `${value}\n`, { mode: 0o600 });
  return value;
}

function superuserSql(bin, port, sql) {
  const result = runAsServer(path.join(bin, 'psql'), [
    '-h',
    DATA,
    '-p',
    String(port),
    '-U',
    'postgres',
    '-d',
    'postgres',
    '-X',
    '-q',
    '-t',
    '-A',
    '-v',
    'ON_ERROR_STOP=1',
    '-c',
    sql,
  ]);
  if (result.status !== 0) throw new Unavailable(`psql failed: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

function createRole(bin, port, secret) {
  const quoted = `'${secret.replaceAll("'", "''")}'`;
  if (superuserSql(bin, port, `SELECT count(*) FROM pg_roles WHERE rolname = '${ROLE}'`) === '0') {
    superuserSql(bin, port, `CREATE ROLE ${ROLE}`);
  }
  superuserSql(bin, port, `ALTER ROLE ${ROLE} WITH LOGIN CREATEDB PASSWORD ${quoted}`);
  if (superuserSql(bin, port, `SELECT count(*) FROM pg_database WHERE datname = '${DATABASE}'`) === '0') {
    superuserSql(bin, port, `CREATE DATABASE ${DATABASE} OWNER ${ROLE}`);
  }
}

function check(bin, url) {
  const result = run(path.join(bin, 'psql'), [url, '-X', '-q', '-t', '-A', '-c', 'SELECT 1']);
  if (result.status !== 0 || result.stdout.trim() !== '1') {
    throw new Unavailable(`cannot connect as ${ROLE}: ${result.stderr.trim()}`);
  }
}

function record(url) {
  writeFileSync(URL_FILE, `${url}\n`, { mode: 0o600 });
  rmSync(REASON_FILE, { force: true });
  const { host } = new URL(url);
  say(`PostgreSQL ready on ${host} (its URL, with the password: .cache/postgres-url)`);
}

async function main() {
  mkdirSync(CACHE, { recursive: true });
  if (process.argv.includes('--stop')) {
    const found = findBin();
    if (found && existsSync(path.join(DATA, 'postmaster.pid'))) {
      runAsServer(path.join(found.bin, 'pg_ctl'), ['stop', '-m', 'fast', '-D', DATA], { stdio: 'inherit' });
    }
    rmSync(URL_FILE, { force: true });
    return;
  }
  const given = process.env.SERENE_TEST_POSTGRES_URL;
  if (given) {
    record(given);
    return;
  }
  let found = findBin();
  if (!found) {
    install();
    found = findBin();
    if (!found)
      throw new Unavailable(
        'postgresql was installed but no /usr/lib/postgresql/<version>/bin/pg_ctl was found',
      );
  }
  initCluster(found.bin, found.version);
  const port = await startCluster(found.bin);
  const secret = password();
  createRole(found.bin, port, secret);
  const url = `postgres://${ROLE}:${secret}@127.0.0.1:${port}/${DATABASE}`;
  check(found.bin, url);
  record(url);
}

main().catch((error) => {
  const reason =
    error instanceof Unavailable ? error.message : `unexpected error: ${error?.message ?? error}`;
  if (!(error instanceof Unavailable)) say(String(error?.stack ?? error));
  try {
    mkdirSync(CACHE, { recursive: true });
    writeFileSync(REASON_FILE, `${reason}\n`);
    rmSync(URL_FILE, { force: true });
  } catch {
    // nothing more to do; the tests then skip with a generic reason
  }
  say(`${reason}; the PostgreSQL store tests will skip (fail under CI=true)`);
});
