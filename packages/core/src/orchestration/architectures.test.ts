import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type AurTestPackage, startAurEmulator } from '../../../../test/fixtures/aur/index.js';
import type { PackageRecord } from '../contracts/store.js';
import { createFilesystemRepository } from '../pacman/filesystem-repository.js';
import { createSourceFactory } from '../sources/source-factory.js';
import { createKnexStore } from '../store/knex-store.js';
import { createInstantRunner } from '../testing/instant-runner.js';
import { createPacmanSandbox, hasProgram } from '../testing/pacman.js';
import { setupMissing } from '../testing/setup.js';
import { samplePackage } from '../testing/store-suite.js';
import { BuildOrchestrator, type RunSettings } from './orchestrator.js';

// Several architectures (docs/engines.md#architectures): the instant runner stands in for engines of
// x86_64 and aarch64 (it writes packages named for the job's architecture); the repositories and
// pacman, which reads them as a client of each architecture, are real.

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const manual: RunSettings = { reason: 'manual', resolve: true, clean: false, force: false };
const scheduled: RunSettings = { reason: 'schedule', resolve: true, clean: false, force: false };

async function setUp(
  packages: AurTestPackage[],
  behaviour?: (base: string, arch: string) => 'success' | 'failure' | 'hang',
) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-arches-'));
  const aur = await startAurEmulator({ packages });
  const store = createKnexStore({ filename: ':memory:' });
  await store.open();
  const runner = createInstantRunner({
    behaviour: (job) => behaviour?.(job.base, job.arch ?? '') ?? 'success',
  });
  const repository = (arch: string) =>
    createFilesystemRepository({ dir: path.join(root, `repository-${arch}`), name: 'serene' });
  const x86 = repository('x86_64');
  const arm = repository('aarch64');
  await x86.init();
  await arm.init();
  const sources = createSourceFactory({
    generateSrcinfo: (dir) => runner.printSrcinfo(dir),
    aur: { baseUrl: aur.url },
  });
  const orchestrator = new BuildOrchestrator({
    store,
    sources,
    runner,
    publisher: x86,
    arch: 'x86_64',
    arches: ['x86_64', 'aarch64'],
    publishers: { aarch64: arm },
    sourcesDir: path.join(root, 'sources'),
    workDir: path.join(root, 'work'),
    ownRepositoryUrl: 'http://serene.lan/x86_64/',
  });
  cleanups.push(async () => {
    await orchestrator.stop();
    await store.close();
    await aur.close();
    await fs.rm(root, { recursive: true, force: true });
  });
  const add = async (name: string, flags: PackageRecord['flags'] = []) => {
    const source = await sources.create({ type: 'aur', name });
    await source.initialize(orchestrator.sourceDir(source.inner.base!));
    const base = source.inner.base!;
    await store.insertPackage(
      samplePackage(base, { added: new Date(), source: source.toJSON(), clean: false, flags }),
    );
  };
  const run = async (bases: string[], settings = manual) => (await orchestrator.start(bases, settings)).done;
  return { root, store, runner, orchestrator, x86, arm, add, run };
}

describe('BuildOrchestrator with several architectures', () => {
  it('builds each package for each of its architectures, any once into both repositories', async () => {
    const h = await setUp([
      { base: 'noarch', pkgver: '1.0', arch: ['any'] },
      { base: 'both', pkgver: '2.0', arch: ['x86_64', 'aarch64'], depends: ['noarch'] },
      { base: 'pc', pkgver: '3.0', arch: ['x86_64'] },
      { base: 'pi', pkgver: '4.0', arch: ['aarch64', 'armv7h'] },
      { base: 'riscy', pkgver: '5.0', arch: ['riscv64'] },
    ]);
    for (const name of ['noarch', 'both', 'pc', 'pi', 'riscy']) await h.add(name);
    await h.run(['noarch', 'both', 'pc', 'pi', 'riscy']);

    const jobs = h.runner.jobs.map((job) => `${job.base}/${job.arch}`).sort();
    expect(jobs).toEqual(['both/aarch64', 'both/x86_64', 'noarch/x86_64', 'pc/x86_64', 'pi/aarch64']);
    // each build's runner syncs from the repository of its own architecture
    const armJob = h.runner.jobs.find((job) => job.arch === 'aarch64');
    expect(armJob?.inputs.customRepo).toContain('Server = http://serene.lan/aarch64\n');
    const pcJob = h.runner.jobs.find((job) => job.base === 'pc');
    expect(pcJob?.inputs.customRepo).toContain('Server = http://serene.lan/x86_64/\n');
    // `both` waited for `noarch` (its dependency, in each architecture): both builds started after it
    const order = h.runner.jobs.map((job) => `${job.base}/${job.arch}`);
    expect(order.indexOf('noarch/x86_64')).toBeLessThan(order.indexOf('both/x86_64'));
    expect(order.indexOf('noarch/x86_64')).toBeLessThan(order.indexOf('both/aarch64'));

    expect((await h.x86.list()).map((entry) => entry.filename)).toEqual([
      'both-2.0-1-x86_64.pkg.tar.gz',
      'noarch-1.0-1-any.pkg.tar.gz',
      'pc-3.0-1-x86_64.pkg.tar.gz',
    ]);
    expect((await h.arm.list()).map((entry) => entry.filename)).toEqual([
      'both-2.0-1-aarch64.pkg.tar.gz',
      'noarch-1.0-1-any.pkg.tar.gz',
      'pi-4.0-1-aarch64.pkg.tar.gz',
    ]);

    // every build records its architecture
    const both = await h.store.listBuilds('both');
    expect(both.map((build) => [build.arch, build.state.state]).sort()).toEqual([
      ['aarch64', 'success'],
      ['x86_64', 'success'],
    ]);
    expect((await h.store.listBuilds('noarch')).map((build) => build.arch)).toEqual(['x86_64']);
    // a package for none of the served architectures fails with a message naming both sides
    const [riscy] = await h.store.listBuilds('riscy');
    expect(riscy?.state).toEqual({
      state: 'fatal',
      info: ['package riscy is built for riscv64, but this server builds for x86_64, aarch64', 'resolve'],
    });
  });

  it('builds again on schedule only the architecture whose last build failed', async () => {
    let armFails = true;
    const h = await setUp([{ base: 'both', pkgver: '2.0', arch: ['x86_64', 'aarch64'] }], (_, arch) =>
      arch === 'aarch64' && armFails ? 'failure' : 'success',
    );
    await h.add('both');
    await h.run(['both']);
    expect((await h.arm.list()).length).toBe(0);
    expect((await h.x86.list()).length).toBe(1);
    armFails = false;
    const before = h.runner.jobs.length;
    await h.run(['both'], scheduled);
    expect(h.runner.jobs.slice(before).map((job) => job.arch)).toEqual(['aarch64']);
    expect((await h.arm.list()).map((entry) => entry.filename)).toEqual(['both-2.0-1-aarch64.pkg.tar.gz']);
    // now both are up to date: nothing runs
    await h.run(['both'], scheduled);
    expect(h.runner.jobs.length).toBe(before + 1);
  });

  it('cancels the builds of every architecture of a package together', async () => {
    const h = await setUp([{ base: 'both', pkgver: '2.0', arch: ['x86_64', 'aarch64'] }], () => 'hang');
    await h.add('both');
    const { done } = await h.orchestrator.start(['both'], manual);
    while (h.runner.jobs.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    const inFlight = h.orchestrator.inFlight();
    expect(inFlight.map((build) => build.arch).sort()).toEqual(['aarch64', 'x86_64']);
    expect(h.orchestrator.cancel('both')).toBe(true);
    await done;
    const states = (await h.store.listBuilds('both')).map((build) => build.state.state);
    expect(states).toEqual(['cancelled', 'cancelled']);
  });

  it.skipIf(
    setupMissing(
      'architectures with pacman',
      hasProgram('pacman') ? [] : ['pacman (Debian pacman-package-manager)'],
    ),
  )('pacman of each architecture installs from its own repository, the any package from both', async () => {
    const h = await setUp([
      { base: 'noarch', pkgver: '1.0', arch: ['any'] },
      { base: 'both', pkgver: '2.0', arch: ['x86_64', 'aarch64'], depends: ['noarch'] },
    ]);
    await h.add('noarch');
    await h.add('both');
    await h.run(['noarch', 'both']);
    for (const arch of ['x86_64', 'aarch64']) {
      const sandbox = await createPacmanSandbox(
        [{ name: 'serene', server: `file://${path.join(h.root, `repository-${arch}`)}` }],
        { architecture: arch },
      );
      cleanups.push(() => sandbox.cleanup());
      const sync = await sandbox.pacman(['-Sy']);
      expect(sync.code, sync.stderr).toBe(0);
      const list = await sandbox.pacman(['-Sl', 'serene']);
      expect(list.stdout.trim().split('\n').sort()).toEqual(['serene both 2.0-1', 'serene noarch 1.0-1']);
      const install = await sandbox.pacman(['-S', 'both']);
      expect(install.code, install.stderr).toBe(0);
      const query = await sandbox.pacman(['-Qi', 'both']);
      expect(query.stdout).toMatch(new RegExp(`Architecture\\s+: ${arch}`));
    }
  });
});
