// Switching from serene-aur: the server started on a data folder the original left (its serene.db,
// log files, source checkouts, repository made by repo-add with its bases.json), with real pacman
// syncing the repository before and after the switch. The runner is the instant one (no makepkg
// needed); the AUR is the emulator on loopback (the public AUR cannot be reached here).
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  createInstantRunner,
  createPacmanSandbox,
  createSereneAurInstall,
  hasProgram,
  type PacmanSandbox,
  run,
  tablesOf,
  writeSyntheticPackage,
} from '@serene/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AurEmulator,
  renderPkgbuild,
  renderSrcinfo,
  startAurEmulator,
} from '../../../test/fixtures/aur/index.js';
import { readConfig } from './config.js';
import { startServer } from './server.js';
import { api, createDataDir, testEnv, until } from './testing/host-harness.js';

const ready = hasProgram('pacman') && hasProgram('repo-add') && hasProgram('git');
if (!ready && process.env.CI === 'true') throw new Error('pacman, repo-add and git are needed');

const DUO = { base: 'duo', pkgver: '1.0', members: [{ name: 'duo-a' }, { name: 'duo-b' }] };

let aur: AurEmulator;
const cleanups: (() => Promise<void>)[] = [];
beforeAll(async () => {
  aur = await startAurEmulator({ packages: [DUO] });
});
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await aur.close();
});

describe.skipIf(!ready)('moving from serene-aur (skipped without pacman, repo-add and git)', () => {
  it('starts on the original install as it is, keeps everything, and pacman keeps syncing', async () => {
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    const dir = data.dataDir;

    // --- the original's /app: its checkout, its repository, its database and log files -----------
    const checkout = await run('git', [
      'clone',
      '-q',
      `${aur.url}/duo.git`,
      path.join(dir, 'sources', 'duo'),
    ]);
    expect(checkout.code, checkout.stderr).toBe(0);
    const repository = path.join(dir, 'repository');
    await fs.mkdir(repository, { recursive: true });
    const files: string[] = [];
    for (const name of ['duo-a', 'duo-b']) {
      files.push(
        path.basename(
          await writeSyntheticPackage(repository, { name, base: 'duo', version: '1.0-1', arch: 'any' }),
        ),
      );
    }
    const added = await run('repo-add', ['-q', 'serene.db.tar.gz', ...files], { cwd: repository });
    expect(added.code, added.stderr).toBe(0);
    const bases = {
      duo: [
        { name: 'duo-a', file: files[0] },
        { name: 'duo-b', file: files[1] },
      ],
    };
    await fs.writeFile(path.join(repository, 'bases.json'), JSON.stringify(bases));
    const source = {
      devel: false,
      srcinfo_override: false,
      srcinfo: null,
      devel_revisions: {},
      inner: { type: 'AurSource', base: 'duo', version: '1.0-1', mirror: false },
    };
    await createSereneAurInstall(dir, {
      packages: [
        {
          base: 'duo',
          added: '2025-03-01 10:00:00.5',
          source: JSON.stringify(source),
          srcinfo: renderSrcinfo(DUO),
          pkgbuild: renderPkgbuild(DUO),
          enabled: 1,
          clean: 0,
          schedule: null,
          prepare: 'echo prepared',
          flags: '["nocheck"]',
          dependency: 0,
          built_state: '1.0-1',
          private: 0,
        },
      ],
      builds: [
        {
          package: 'duo',
          started: '2025-03-01 10:00:01',
          ended: '2025-03-01 10:01:00',
          state: 'failure',
          run_success: 0,
          reason: 'initial',
        },
        {
          package: 'duo',
          started: '2025-03-08 12:00:01.123456789',
          ended: '2025-03-08 12:05:00',
          state: 'success',
          version: '1.0',
          run_success: 1,
          run_started: '2025-03-08 12:00:02',
          run_ended: '2025-03-08 12:04:59',
          reason: 'manual',
          mem_peak: 1000,
          cpu_user: 2000,
          cpu_system: 300,
          io_tbr: 4,
          io_tbw: 5,
        },
      ],
      files: {
        'logs/duo/2025-03-01T10:00:01.log': '==> ERROR: A failure occurred in build().\n',
        'logs/duo/2025-03-08T12:00:01.log': '==> Making package: duo 1.0-1\n==> Finished making\n',
      },
    });

    // --- pacman on the original's repository -----------------------------------------------------
    const sandbox: PacmanSandbox = await createPacmanSandbox([
      { name: 'serene', server: `file://${repository}` },
    ]);
    cleanups.push(() => sandbox.cleanup());
    expect((await sandbox.pacman(['-Sy'])).code).toBe(0);
    const installed = await sandbox.pacman(['-S', 'duo-a', 'duo-b']);
    expect(installed.code, installed.stderr).toBe(0);

    // --- the switch: the same folder, our server --------------------------------------------------
    const runner = createInstantRunner();
    const server = await startServer({
      config: readConfig(testEnv(dir, { AUR_URL: aur.url, ARCH: 'x86_64' })),
      parts: { runner },
    });
    cleanups.push(() => server.close());
    expect(await tablesOf(path.join(dir, 'serene.db.serene-aur-backup'))).toContain('_sqlx_migrations');

    const list = (await api(server.url, '/package/list')).json as Record<string, unknown>[];
    expect(list).toEqual([
      expect.objectContaining({
        base: 'duo',
        members: ['duo-a', 'duo-b'],
        version: '1.0',
        enabled: true,
        added: '2025-03-01T10:00:00.500Z',
        build: expect.objectContaining({ state: { state: 'success' }, reason: 'manual' }),
      }),
    ]);
    const info = (await api(server.url, '/package/duo')).json as Record<string, unknown>;
    expect(info).toMatchObject({ builds: 2, prepare_commands: 'echo prepared', makepkg_flags: ['nocheck'] });
    // a build's start is its identity, to the millisecond as the API shows it
    const build = await api(server.url, '/package/duo/build/2025-03-08T12:00:01.123Z');
    expect(build.json).toMatchObject({
      started: '2025-03-08T12:00:01.123Z',
      version: '1.0',
      mem_peak: 1000,
      cpu_user: 2000,
    });
    expect((await api(server.url, '/package/duo/build/2025-03-08T12:00:01.123Z/logs')).json).toBe(
      '==> Making package: duo 1.0-1\n==> Finished making\n',
    );
    expect((await api(server.url, '/package/duo/build/0/logs')).json).toBe(
      '==> ERROR: A failure occurred in build().\n',
    );
    // the repository's own files, as they were
    expect(await (await fetch(`${server.url}/x86_64/bases.json`)).json()).toEqual(bases);
    const redirect = await fetch(`${server.url}/x86_64/package/duo-b`, { redirect: 'manual' });
    expect(redirect.status).toBe(307);
    expect(redirect.headers.get('location')).toBe(`/x86_64/${files[1]}`);

    // pacman, pointed at the new server, sees the same repository
    const config = await fs.readFile(sandbox.config, 'utf8');
    await fs.writeFile(sandbox.config, config.replace(`file://${repository}`, `${server.url}/x86_64`));
    const synced = await sandbox.pacman(['-Syu']);
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stdout).toMatch(/there is nothing to do/);

    // a new version drops duo-b: it leaves the repository; duo-a is upgraded
    await aur.bump('duo', { pkgver: '1.1', members: [{ name: 'duo-a' }] });
    const requested = await api(server.url, '/build', {
      method: 'POST',
      body: { packages: ['duo'], resolve: true, clean: false, force: false },
    });
    expect(requested.status, requested.text).toBe(200);
    await until(async () => (await server.store.countBuilds('duo')) === 3);
    await server.orchestrator.idle();
    expect((await server.store.getLatestBuild('duo'))?.state).toEqual({ state: 'success' });
    expect(JSON.parse(await fs.readFile(path.join(repository, 'bases.json'), 'utf8'))).toEqual({
      duo: [{ name: 'duo-a', file: 'duo-a-1.1-1-any.pkg.tar.gz' }],
    });
    expect((await fs.readdir(repository)).filter((file) => file.startsWith('duo-b'))).toEqual([]);
    const upgraded = await sandbox.pacman(['-Syu']);
    expect(upgraded.code, upgraded.stderr).toBe(0);
    expect((await sandbox.pacman(['-Q', 'duo-a'])).stdout).toMatch(/duo-a 1\.1-1/);
    expect((await sandbox.pacman(['-Si', 'duo-b'])).code).not.toBe(0);

    // removing the package removes what the record names and the log files
    expect((await api(server.url, '/package/duo', { method: 'DELETE' })).status).toBe(200);
    expect(JSON.parse(await fs.readFile(path.join(repository, 'bases.json'), 'utf8'))).toEqual({});
    await expect(fs.access(path.join(dir, 'logs', 'duo'))).rejects.toThrow();
    expect((await fs.readdir(repository)).filter((file) => file.startsWith('duo'))).toEqual([]);
  });
});
