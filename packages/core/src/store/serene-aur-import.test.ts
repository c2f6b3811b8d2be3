import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { createMemoryLogger, type LogRecord } from '../logger.js';
import {
  createSereneAurInstall,
  dumpTable,
  openSqlite,
  SERENE_AUR_SCHEMA_STEPS,
  tablesOf,
} from '../testing/serene-aur-install.js';
import { createKnexStore } from './knex-store.js';
import { sqlxTimestamp } from './serene-aur-import.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-aur-import-'));
  dirs.push(dir);
  return dir;
}

const AUR = {
  devel: false,
  srcinfo_override: false,
  srcinfo: null,
  devel_revisions: {},
  inner: { type: 'AurSource', base: 'alpha', version: '1:2.0-3', mirror: false },
};
const GIT_DEVEL = {
  devel: true,
  srcinfo_override: true,
  srcinfo: 'pkgbase = beta-git\n\tpkgver = r10.abc\n\tpkgrel = 1\n\tarch = any\n\npkgname = beta-git\n',
  devel_revisions: { 'https://z.example/b.git': 'ccc', 'https://a.example/a.git': 'aaa' },
  inner: { type: 'GitSource', repository: 'https://git.example/beta.git', last_commit: 'f00d' },
};
const RAW = {
  devel: false,
  srcinfo_override: false,
  srcinfo: 'pkgbase = gamma\n\tpkgver = 1\n\tpkgrel = 1\n\tarch = any\n\npkgname = gamma\n',
  devel_revisions: {},
  inner: { type: 'RawSource', pkgbuild: 'pkgname=gamma\npkgver=1\npkgrel=1\narch=(any)\n' },
};
const CLI = {
  devel: false,
  srcinfo_override: false,
  srcinfo: null,
  devel_revisions: {},
  inner: { type: 'CliSource', state: 'v0.4.3' },
};

const packageRow = (base: string, source: unknown, extra: Record<string, string | number | null> = {}) => ({
  base,
  added: '2024-02-10 16:44:01.123456789',
  source: JSON.stringify(source),
  srcinfo: `pkgbase = ${base}\n\tpkgver = 1\n\tpkgrel = 1\n\tarch = any\n\npkgname = ${base}\n`,
  pkgbuild: `pkgname=${base}\n`,
  enabled: 1,
  clean: 0,
  schedule: null,
  prepare: null,
  ...extra,
});

describe('opening a serene-aur database', () => {
  it('imports every package and build of the final schema, with the logs, after keeping a copy', async () => {
    const dir = await tempDir();
    const file = await createSereneAurInstall(dir, {
      packages: [
        packageRow('alpha', AUR, {
          dependency: 1,
          built_state: '1:2.0-3',
          private: 1,
          schedule: '0 0 3 * * *',
          prepare: 'gpg --recv-keys ABC',
          flags: '["nocheck","skippgpcheck"]',
        }),
        packageRow('beta-git', GIT_DEVEL, { clean: 1, enabled: 0, built_state: 'init' }),
        packageRow('gamma', RAW, { built_state: 'something' }),
        packageRow('serene-cli', CLI, { built_state: 'v0.4.3', clean: 1 }),
        // serde leaves out a None srcinfo
        packageRow(
          'omega',
          {
            devel: false,
            srcinfo_override: false,
            devel_revisions: {},
            inner: { ...AUR.inner, base: 'omega' },
          },
          { built_state: '1:2.0-3' },
        ),
      ],
      builds: [
        {
          package: 'alpha',
          started: '2024-05-01 12:00:00.123456789',
          ended: '2024-05-01 12:10:00.5',
          state: 'success',
          version: '2.0',
          run_success: 1,
          run_started: '2024-05-01 12:00:01',
          run_ended: '2024-05-01 12:09:59.999',
          reason: 'schedule',
          mem_peak: 123456789012,
          cpu_user: 5000000,
          cpu_system: 250000,
          io_tbr: 4096,
          io_tbw: 8192,
        },
        {
          package: 'alpha',
          started: '2024-05-02 12:00:00',
          ended: '2024-05-02 12:00:00',
          state: 'fatal',
          progress: 'publish',
          fatal: 'version mismatch on package alpha, expected 2.0 but built 2.1',
          reason: 'manual',
        },
        {
          package: 'beta-git',
          started: '2024-05-03 08:00:00.000001',
          ended: '2024-05-03 08:00:02',
          state: 'cancelled',
          fatal: 'missing dependencies: libfoo',
          reason: 'webhook',
        },
        {
          package: 'gamma',
          started: '2024-05-04 09:30:00.25',
          ended: '2024-05-04 09:31:00',
          state: 'failure',
          run_success: 0,
          run_logs: 'legacy log kept in the database\n',
          reason: 'initial',
        },
        { package: 'serene-cli', started: '2024-05-05 00:00:00', state: 'running', progress: 'build' },
      ],
      files: {
        'logs/alpha/2024-05-01T12:00:00.log': '==> Making package: alpha 2.0\n\u00e9t\u00e9 done\n',
        'logs/alpha/2024-05-02T12:00:00.log': 'second build\n',
        'logs/beta-git/2024-05-03T08:00:00.log': '',
        'logs/orphan/2020-01-01T00:00:00.log': 'a log of no build',
      },
    });
    const before = {
      packages: await dumpTable(file, 'package'),
      builds: await dumpTable(file, 'build'),
      sqlx: await dumpTable(file, '_sqlx_migrations'),
    };

    const records: LogRecord[] = [];
    const store = createKnexStore({ filename: file, logger: createMemoryLogger(records) });
    await store.open();

    const alpha = await store.getPackage('alpha');
    expect(alpha).toEqual({
      base: 'alpha',
      added: new Date('2024-02-10T16:44:01.123Z'),
      source: AUR,
      srcinfo: 'pkgbase = alpha\n\tpkgver = 1\n\tpkgrel = 1\n\tarch = any\n\npkgname = alpha\n',
      pkgbuild: 'pkgname=alpha\n',
      enabled: true,
      clean: false,
      private: true,
      dependency: true,
      schedule: '0 0 3 * * *',
      prepare: 'gpg --recv-keys ABC',
      flags: ['nocheck', 'skippgpcheck'],
      builtState: '1:2.0-3',
      failedState: null,
    });
    const beta = await store.getPackage('beta-git');
    expect(beta).toMatchObject({
      source: GIT_DEVEL,
      enabled: false,
      clean: true,
      builtState: 'init',
      flags: [],
    });
    expect((await store.getPackage('gamma'))?.source).toEqual(RAW);
    expect((await store.getPackage('serene-cli'))?.source).toEqual(CLI);
    expect((await store.getPackage('omega'))?.source).toEqual({
      ...AUR,
      inner: { ...AUR.inner, base: 'omega' },
    });

    // the build's identity: its start, to the millisecond as the API shows it
    expect(await store.getBuild('alpha', '2024-05-01T12:00:00.123456789Z')).toBeUndefined();
    const first = await store.getBuild('alpha', '2024-05-01T12:00:00.123Z');
    expect(first).toEqual({
      package: 'alpha',
      started: new Date('2024-05-01T12:00:00.123Z'),
      ended: new Date('2024-05-01T12:10:00.500Z'),
      state: { state: 'success' },
      reason: 'schedule',
      version: '2.0',
      runSuccess: true,
      runStarted: new Date('2024-05-01T12:00:01Z'),
      runEnded: new Date('2024-05-01T12:09:59.999Z'),
      stats: { memoryPeak: 123456789012, cpuUser: 5000000, cpuSystem: 250000, ioRead: 4096, ioWritten: 8192 },
    });
    expect((await store.getBuild('alpha', '2024-05-02T12:00:00Z'))?.state).toEqual({
      state: 'fatal',
      info: ['version mismatch on package alpha, expected 2.0 but built 2.1', 'publish'],
    });
    expect(await store.getBuild('beta-git', '2024-05-03T08:00:00Z')).toMatchObject({
      state: { state: 'cancelled', info: 'missing dependencies: libfoo' },
      reason: 'webhook',
      runSuccess: null,
      stats: null,
    });
    expect(await store.getBuild('gamma', '2024-05-04T09:30:00.25Z')).toMatchObject({
      state: { state: 'failure' },
      runSuccess: false,
      reason: 'initial',
    });
    expect((await store.getBuild('serene-cli', '2024-05-05T00:00:00Z'))?.state).toEqual({
      state: 'running',
      info: 'build',
    });
    expect(await store.countBuilds('alpha')).toBe(2);

    // kept to the millisecond, as the API shows it
    expect(await store.readLog('alpha', '2024-05-01T12:00:00.123Z')).toBe(
      '==> Making package: alpha 2.0\n\u00e9t\u00e9 done\n',
    );
    expect(await store.readLog('alpha', '2024-05-02T12:00:00Z')).toBe('second build\n');
    expect(await store.readLog('beta-git', '2024-05-03T08:00:00.000Z')).toBe('');
    expect(await store.readLog('gamma', '2024-05-04T09:30:00.25Z')).toBe('legacy log kept in the database\n');
    expect(await store.readLog('serene-cli', '2024-05-05T00:00:00Z')).toBeUndefined();
    expect(
      records.find((record) => record.message === 'imported the serene-aur database')?.meta,
    ).toMatchObject({
      packages: 5,
      builds: 5,
      logs: 4,
      orphanBuilds: 0,
    });
    await store.close();

    // the original's tables are gone; the copy beside it is the original, whole
    const backup = `${file}.serene-aur-backup`;
    expect(await tablesOf(file)).not.toContain('_sqlx_migrations');
    expect(await tablesOf(backup)).toEqual(expect.arrayContaining(['_sqlx_migrations', 'build', 'package']));
    expect(await tablesOf(backup)).not.toContain('build_log');
    expect(await dumpTable(backup, 'package')).toEqual(before.packages);
    expect(await dumpTable(backup, 'build')).toEqual(before.builds);
    expect(await dumpTable(backup, '_sqlx_migrations')).toEqual(before.sqlx);
    // log files stay where they were
    expect(existsSync(path.join(dir, 'logs/alpha/2024-05-01T12:00:00.log'))).toBe(true);

    // a second start opens our database as it is
    const again = createKnexStore({ filename: file });
    await again.open();
    expect((await again.listPackages()).map((record) => record.base)).toEqual([
      'alpha',
      'beta-git',
      'gamma',
      'omega',
      'serene-cli',
    ]);
    await again.close();
  });

  it('imports the oldest schema and its legacy source JSON, as the original converts them', async () => {
    const dir = await tempDir();
    const oldest = SERENE_AUR_SCHEMA_STEPS.findIndex((step) => step.name === 'makepkg flags');
    const file = await createSereneAurInstall(dir, {
      steps: oldest,
      packages: [
        {
          ...packageRow('delta', {
            type: 'NormalSource',
            repository: 'https://aur.archlinux.org/delta.git',
            last_commit: 'abc',
          }),
          version: '2.5',
        },
        {
          ...packageRow('eps-git', {
            type: 'DevelGitSource',
            repository: 'https://git.example/eps.git',
            last_commit: 'e1',
            last_source_commits: { 'https://up.example/eps.git': 'u1' },
          }),
          version: 'r1',
        },
        {
          ...packageRow('zeta', {
            type: 'SingleSource',
            pkgbuild: 'pkgname=zeta\n',
            srcinfo: 'pkgbase = zeta\n',
            devel: false,
            last_source_commits: {},
          }),
          version: '1',
        },
        { ...packageRow('serene-cli', { type: 'SereneCliSource', last_commit: 'deadbeef' }), version: null },
      ],
      builds: [
        { package: 'delta', started: '2024-02-11 10:00:00.5', state: 'success', run_logs: 'delta log\n' },
        { package: 'eps-git', started: '2024-02-11 11:00:00', state: 'failure' },
        { package: 'zeta', started: '2024-02-11 12:00:00', state: 'success' },
      ],
      files: {
        'sources/delta/.SRCINFO':
          'pkgbase = delta\n\tpkgver = 2.5\n\tpkgrel = 2\n\tepoch = 1\n\tarch = any\n\npkgname = delta\n',
        'logs/eps-git/2024-02-11T11:00:00.log': 'eps failed\n',
      },
    });
    const store = createKnexStore({ filename: file });
    await store.open();
    const delta = await store.getPackage('delta');
    expect(delta).toMatchObject({
      source: {
        devel: false,
        srcinfo_override: false,
        srcinfo: null,
        devel_revisions: {},
        inner: { type: 'AurSource', base: 'delta', version: '1:2.5-2', mirror: false },
      },
      private: false,
      dependency: false,
      flags: [],
      // newest build succeeded: up to date with its source, as the original's heuristic decides
      builtState: '1:2.5-2',
    });
    expect(await store.getPackage('eps-git')).toMatchObject({
      source: {
        devel: true,
        devel_revisions: { 'https://up.example/eps.git': 'u1' },
        inner: { type: 'GitSource', repository: 'https://git.example/eps.git', last_commit: 'e1' },
      },
      // newest build failed: built again at the next chance
      builtState: 'migrated',
    });
    const zeta = await store.getPackage('zeta');
    expect(zeta?.source).toMatchObject({
      devel: false,
      inner: { type: 'RawSource', pkgbuild: 'pkgname=zeta\n' },
    });
    expect(zeta?.builtState).toBe(
      (await import('node:crypto')).createHash('sha256').update('pkgname=zeta\n').digest('base64'),
    );
    expect((await store.getPackage('serene-cli'))?.source).toMatchObject({
      devel: false,
      inner: { type: 'CliSource', state: 'deadbeef' },
    });
    expect(await store.getBuild('delta', '2024-02-11T10:00:00.5Z')).toMatchObject({
      reason: 'unknown',
      stats: null,
    });
    expect(await store.readLog('delta', '2024-02-11T10:00:00.5Z')).toBe('delta log\n');
    expect(await store.readLog('eps-git', '2024-02-11T11:00:00Z')).toBe('eps failed\n');
    await store.close();
  });

  it('imports every schema version of the original', async () => {
    for (let steps = 2; steps <= SERENE_AUR_SCHEMA_STEPS.length; steps++) {
      const dir = await tempDir();
      const file = await createSereneAurInstall(dir, {
        steps,
        packages: [packageRow('alpha', AUR)],
        builds: [{ package: 'alpha', started: '2024-05-01 12:00:00', state: 'success' }],
      });
      const store = createKnexStore({ filename: file });
      await store.open();
      expect((await store.getPackage('alpha'))?.source, `after ${steps} steps`).toEqual(AUR);
      expect((await store.getLatestBuild('alpha'))?.state).toEqual({ state: 'success' });
      await store.close();
    }
  });

  it('leaves the original as it was when a row cannot be read, and imports it once fixed', async () => {
    const dir = await tempDir();
    const file = await createSereneAurInstall(dir, {
      packages: [
        packageRow('alpha', AUR),
        packageRow('beta', { ...AUR, inner: { ...AUR.inner, base: 'beta' } }),
      ],
      builds: [
        { package: 'alpha', started: '2024-05-01 12:00:00', state: 'success' },
        { package: 'beta', started: 'yesterday', state: 'success' },
      ],
      files: { 'logs/alpha/2024-05-01T12:00:00.log': 'log\n' },
    });
    const before = { packages: await dumpTable(file, 'package'), builds: await dumpTable(file, 'build') };
    const store = createKnexStore({ filename: file });
    const error = await store.open().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/build of 'beta' started at yesterday: started/);
    expect(await tablesOf(file)).not.toContain('build_log');
    expect(await tablesOf(file)).toEqual(expect.arrayContaining(['_sqlx_migrations', 'build', 'package']));
    expect(await dumpTable(file, 'package')).toEqual(before.packages);
    expect(await dumpTable(file, 'build')).toEqual(before.builds);

    const db = openSqlite(file);
    await db('build').where({ package: 'beta' }).update({ started: '2024-05-02 12:00:00' });
    await db.destroy();
    const retry = createKnexStore({ filename: file });
    await retry.open();
    expect((await retry.listLatestBuilds()).map((build) => build.package)).toEqual(['alpha', 'beta']);
    await retry.close();
  });

  it('survives being killed in the middle of the import: the original stays, the next start imports', async () => {
    const dir = await tempDir();
    const file = await createSereneAurInstall(dir, {
      packages: [packageRow('alpha', AUR)],
      builds: [{ package: 'alpha', started: '2024-05-01 12:00:00', state: 'success' }],
    });
    const before = await dumpTable(file, 'package');
    // a log "file" that is a pipe nobody writes to: the import blocks on it, inside its transaction
    const fifo = path.join(dir, 'logs', 'alpha', '2024-05-01T12:00:00.log');
    await fs.mkdir(path.dirname(fifo), { recursive: true });
    execFileSync('mkfifo', [fifo]);
    const here = path.dirname(fileURLToPath(import.meta.url));
    const script = `
      import { createKnexStore } from ${JSON.stringify(path.join(here, 'knex-store.ts'))};
      const store = createKnexStore({ filename: ${JSON.stringify(file)}, logger: {
        error() {}, warn() {}, debug() {}, child() { return this; },
        info(message) { console.log(message); } } });
      console.log('opening');
      await store.open();
      console.log('opened');`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: here,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (data: Buffer) => {
      output += data.toString();
    });
    child.stderr.on('data', (data: Buffer) => {
      output += data.toString();
    });
    // the copy is made before the import starts; then the child hangs on the pipe
    const deadline = Date.now() + 60_000;
    while (!existsSync(`${file}.serene-aur-backup`) && Date.now() < deadline) {
      await sleep(50);
    }
    await sleep(500);
    expect(output).not.toMatch(/opened/);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(existsSync(`${file}.serene-aur-backup`), output).toBe(true);

    expect(await tablesOf(file)).toEqual(expect.arrayContaining(['_sqlx_migrations', 'build', 'package']));
    expect(await tablesOf(file)).not.toContain('build_log');
    expect(await dumpTable(file, 'package')).toEqual(before);

    await fs.rm(fifo);
    await fs.writeFile(fifo, 'the real log\n');
    const store = createKnexStore({ filename: file });
    await store.open();
    expect(await store.readLog('alpha', '2024-05-01T12:00:00Z')).toBe('the real log\n');
    await store.close();
  });

  it('reads the naive UTC text sqlx writes, with any number of fraction digits', () => {
    expect(sqlxTimestamp('2024-05-01 12:34:56')).toBe('2024-05-01T12:34:56.000000000Z');
    expect(sqlxTimestamp('2024-05-01 12:34:56.1')).toBe('2024-05-01T12:34:56.100000000Z');
    expect(sqlxTimestamp('2024-05-01 12:34:56.123456789')).toBe('2024-05-01T12:34:56.123456789Z');
    expect(sqlxTimestamp('2024-05-01T12:34:56.5+02:00')).toBe('2024-05-01T10:34:56.500000000Z');
    expect(sqlxTimestamp('2024-02-30 00:00:00')).toBeUndefined();
    expect(sqlxTimestamp('1714566896')).toBeUndefined();
  });
});
