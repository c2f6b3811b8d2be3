// BUILD_CLI end to end: the server makes serene-cli from its own CLI, makepkg builds it on this
// machine (the local runner of examples/custom-runner, as user serene-build), and real pacman installs
// what /x86_64/package/serene-cli redirects to into a temporary root, whose `serene` runs with this
// machine's node.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createMemoryLogger, createSourceFactory, type LogRecord, type Runner } from '@serene/core';
import { createPacmanSandbox, hasProgram, type PacmanSandbox } from '@serene/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalRunner } from '../../../examples/custom-runner/local-runner.js';
import {
  createMakepkgSrcinfoGenerator,
  makepkgSrcinfoUnavailable,
} from '../../core/src/sources/testing-srcinfo.js';
import {
  buildCliBundle,
  CLI_BASE,
  CLI_SOURCE_TYPE,
  type CliBundle,
  cliPackageFiles,
  cliSourceKind,
  cliState,
  loadCliBundle,
  serverVersion,
  writeCliBundle,
} from './cli-package.js';
import { readConfig } from './config.js';
import { type PartOverrides, startServer } from './server.js';
import { api, createDataDir, testEnv } from './testing/host-harness.js';

const exec = promisify(execFile);
const cliVersion = JSON.parse(
  await fs.readFile(new URL('../../cli/package.json', import.meta.url), 'utf8'),
) as { version: string };

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

let bundle: CliBundle;
beforeAll(async () => {
  bundle = await buildCliBundle();
}, 120_000);

describe('the serene-cli bundle', () => {
  it('is one ES module with the CLI version, and runs with this machine node', async () => {
    expect(bundle.version).toBe(cliVersion.version);
    expect(JSON.parse(bundle.packageJson)).toEqual({
      name: '@serene/cli',
      version: cliVersion.version,
      private: true,
      type: 'module',
    });
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    const dir = path.join(data.root, 'prebuilt');
    await writeCliBundle(dir, bundle);
    // what the image carries is read back as it is, not made again
    const loaded = await loadCliBundle(dir);
    expect(Buffer.from(loaded.main).equals(Buffer.from(bundle.main))).toBe(true);
    const { stdout } = await exec(process.execPath, [path.join(dir, 'dist', 'main.js'), '--version']);
    expect(stdout.trim()).toContain(cliVersion.version);
  });

  it('changes its state with the server version and with the CLI code', () => {
    const files = cliPackageFiles(bundle, '0.1.0');
    expect(cliState(files, bundle.version)).toBe(cliState(cliPackageFiles(bundle, '0.1.0'), bundle.version));
    expect(cliState(cliPackageFiles(bundle, '0.2.0'), bundle.version)).not.toBe(
      cliState(files, bundle.version),
    );
    const other = { ...bundle, main: Buffer.concat([Buffer.from(bundle.main), Buffer.from('\n')]) };
    expect(cliState(cliPackageFiles(other, '0.1.0'), bundle.version)).not.toBe(
      cliState(files, bundle.version),
    );
    expect(files.PKGBUILD).toContain(`pkgver=${cliVersion.version.replace(/-/g, '_')}`);
    expect(files.PKGBUILD).toContain("depends=('nodejs')");
    expect(files.PKGBUILD).not.toMatch(/npm|registry/);
  });
});

describe.skipIf(makepkgSrcinfoUnavailable() !== undefined)(
  `the serene-cli PKGBUILD (${makepkgSrcinfoUnavailable() ?? 'makepkg as serene-build'})`,
  () => {
    it('has the .SRCINFO makepkg --printsrcinfo makes of it', { timeout: 180_000 }, async () => {
      const data = await createDataDir();
      cleanups.push(data.cleanup);
      const dir = path.join(data.root, 'source');
      await fs.mkdir(dir);
      const files = cliPackageFiles(bundle);
      for (const [name, content] of Object.entries(files)) await fs.writeFile(path.join(dir, name), content);
      expect(files['.SRCINFO']).toBe(await createMakepkgSrcinfoGenerator()(dir));
    });
  },
);

const missing = ['makepkg', 'pacman'].filter((tool) => !hasProgram(tool));
const noMakepkg = makepkgSrcinfoUnavailable();

describe.skipIf(missing.length > 0 || noMakepkg !== undefined)(
  `BUILD_CLI with makepkg and pacman (${[...missing.map((tool) => `missing ${tool}`), noMakepkg].filter(Boolean).join(', ') || 'makepkg as serene-build'})`,
  () => {
    let sandbox: PacmanSandbox | undefined;
    afterAll(async () => sandbox?.cleanup());

    it('builds serene-cli at start; pacman -U of /x86_64/package/serene-cli installs a serene that runs; a new server version rebuilds it', {
      timeout: 900_000,
    }, async () => {
      const data = await createDataDir();
      cleanups.push(data.cleanup);
      // makepkg runs as the unprivileged build user: it must reach the work folder
      await fs.chmod(data.root, 0o755);
      await fs.chmod(data.dataDir, 0o755);
      const workDir = path.join(data.root, 'local-runner');
      await fs.mkdir(workDir, { mode: 0o755 });
      const logs: LogRecord[] = [];
      const begin = async (server?: string) => {
        const runner: Runner = createLocalRunner({ workDir });
        // the bundle made once for this file (the sources may change while the test runs); `server`:
        // the same data folder under a server of another version
        const sources = createSourceFactory({
          generateSrcinfo: createMakepkgSrcinfoGenerator(),
          innerKinds: { [CLI_SOURCE_TYPE]: cliSourceKind({ load: async () => bundle, server }) },
        });
        const parts: PartOverrides = { runner, logger: createMemoryLogger(logs), sources };
        const config = readConfig(testEnv(data.dataDir, { BUILD_CLI: 'true', ARCH: 'x86_64' }));
        return startServer({ config, parts });
      };

      const first = await begin();
      await first.orchestrator.idle();
      const builds = await first.store.listBuilds(CLI_BASE);
      expect(builds.map((build) => [build.reason, build.state])).toEqual([['initial', { state: 'success' }]]);
      expect(logs.filter((line) => line.level === 'error')).toEqual([]);
      const record = await first.store.getPackage(CLI_BASE);
      expect(record?.clean).toBe(true);
      expect(record?.source.inner).toMatchObject({ type: CLI_SOURCE_TYPE });

      // as users are told: pacman -U of what the package URL redirects to
      const redirect = await fetch(`${first.url}/x86_64/package/${CLI_BASE}`, { redirect: 'manual' });
      expect(redirect.status).toBeGreaterThanOrEqual(300);
      expect(redirect.status).toBeLessThan(400);
      const location = new URL(redirect.headers.get('location')!, first.url).href;
      expect(location).toMatch(
        new RegExp(`/x86_64/${CLI_BASE}-${cliVersion.version}-1-any\\.pkg\\.tar\\.zst$`),
      );
      sandbox = await createPacmanSandbox([]);
      const installed = await sandbox.pacman(['-U', '--noscriptlet', '--nodeps', '--nodeps', location]);
      expect(installed.code, installed.stderr + installed.stdout).toBe(0);
      expect((await sandbox.pacman(['-Q', CLI_BASE])).stdout).toBe(`${CLI_BASE} ${cliVersion.version}-1\n`);
      const serene = path.join(sandbox.root, 'usr', 'bin', 'serene');
      expect(await fs.readlink(serene)).toBe('../lib/serene-cli/dist/main.js');
      const { stdout } = await exec(serene, ['--version'], {
        env: { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, HOME: data.root },
      });
      expect(stdout.trim()).toContain(cliVersion.version);
      // the package's own .PKGINFO says what it needs
      const info = await sandbox.pacman(['-Qi', CLI_BASE]);
      expect(info.stdout).toMatch(/Depends On\s+:\s+nodejs/);
      expect(info.stdout).toContain(`from server ${serverVersion()}`);
      await first.close();

      // the same server again: up to date, nothing built
      const second = await begin();
      await second.orchestrator.idle();
      expect((await second.store.listBuilds(CLI_BASE)).length).toBe(1);
      await second.close();

      // another server version: serene-cli is built again at start
      const third = await begin('99.0.0-test');
      await third.orchestrator.idle();
      const after = await third.store.listBuilds(CLI_BASE);
      expect(after.map((build) => [build.reason, build.state.state])).toEqual([
        ['schedule', 'success'],
        ['initial', 'success'],
      ]);
      const pkgbuild = await api(third.url, `/package/${CLI_BASE}/pkgbuild`);
      expect(pkgbuild.text).toContain('from server 99.0.0-test');
      await third.close();
    });
  },
);

describe('BUILD_CLI without Docker', () => {
  it('starts: serene-cli is added (no .SRCINFO to generate) and its build fails, saying so', {
    timeout: 120_000,
  }, async () => {
    const data = await createDataDir();
    cleanups.push(data.cleanup);
    const logs: LogRecord[] = [];
    // the host's own parts: the CLI bundled by esbuild at start, the Docker runner
    const parts: PartOverrides = { logger: createMemoryLogger(logs) };
    const config = readConfig(
      testEnv(data.dataDir, {
        BUILD_CLI: 'true',
        PULL_IMAGE: 'false',
        DOCKER_URL: path.join(data.root, 'no-docker.sock'),
      }),
    );
    const server = await startServer({ config, parts });
    cleanups.push(() => server.close());
    await server.orchestrator.idle();
    const [build] = await server.store.listBuilds(CLI_BASE);
    expect(build?.state.state).toBe('fatal');
    expect(JSON.stringify(build?.state)).toMatch(/Docker/);
    expect(((await api(server.url, '/package/list')).json as { base: string }[]).map((p) => p.base)).toEqual([
      CLI_BASE,
    ]);
  });
});
