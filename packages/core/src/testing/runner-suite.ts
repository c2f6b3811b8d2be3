import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Runner, RunnerJob, RunResult } from '../contracts/runner.js';
import { hasProgram, run } from './pacman.js';

/** Options of {@link testRunner}. */
export interface RunnerSuiteOptions {
  /** creates the runner under test (once for the suite) */
  create: () => Promise<Runner> | Runner;
  /** releases what `create` made */
  cleanup?: () => Promise<void>;
  /**
   * skips the whole suite, e.g. when the runner's engine is not installed here
   * @default false
   */
  skip?: boolean;
  /**
   * the runner reports resource usage: successful builds must then carry numbers in `stats`
   * @default false
   */
  stats?: boolean;
  /**
   * the runner keeps a package's work folder between builds that are not clean (incremental builds)
   * @default false
   */
  incremental?: boolean;
  /**
   * package bases used by the suite start with this, so that suites sharing an engine do not meet
   * @default 'conform'
   */
  basePrefix?: string;
  /**
   * time limit of each test
   * @default 240_000
   */
  testTimeoutMs?: number;
  /**
   * how long the timeout test lets its build run (time for the runner to get makepkg going)
   * @default 8_000
   */
  buildTimeoutMs?: number;
  additionalTests?: (context: RunnerSuiteContext) => void;
}

/** What {@link RunnerSuiteOptions.additionalTests} get. */
export interface RunnerSuiteContext {
  runner(): Runner;
  /** an empty folder of the current test, removed after it */
  dir(): string;
  /** a job for a source folder holding `pkgbuild` (and `files`), with empty inputs and its own output folder */
  job(base: string, pkgbuild: string, extra?: RunnerJobExtras): Promise<RunnerJob>;
}

/** Changes to the defaults of a job made by {@link writeRunnerJob}. */
export interface RunnerJobExtras {
  /** more source files, by relative path */
  files?: Record<string, string>;
  inputs?: Partial<RunnerJob['inputs']>;
  clean?: boolean;
  timeoutMs?: number;
}

/** Writes a source folder with a PKGBUILD (and more files) under `dir` and returns a job for it. */
export async function writeRunnerJob(
  dir: string,
  base: string,
  pkgbuild: string,
  extra: RunnerJobExtras = {},
): Promise<RunnerJob> {
  const root = await fs.mkdtemp(path.join(dir, `${base}-`));
  const sourceDir = path.join(root, 'source');
  const outputDir = path.join(root, 'out');
  await fs.mkdir(sourceDir, { recursive: true });
  await fs.mkdir(outputDir, { recursive: true });
  await fs.writeFile(path.join(sourceDir, 'PKGBUILD'), pkgbuild);
  for (const [name, text] of Object.entries(extra.files ?? {})) {
    await fs.mkdir(path.dirname(path.join(sourceDir, name)), { recursive: true });
    await fs.writeFile(path.join(sourceDir, name), text);
  }
  return {
    base,
    sourceDir,
    outputDir,
    inputs: { customRepo: '', prepare: '', makepkgFlags: '', ...extra.inputs },
    clean: extra.clean ?? false,
    ...(extra.timeoutMs !== undefined ? { timeoutMs: extra.timeoutMs } : {}),
  };
}

/** A PKGBUILD that builds on any makepkg (no dependencies, nothing to strip, `arch=(any)`). */
export function simplePkgbuild(
  name: string,
  body: { build?: string; extra?: string; version?: string } = {},
): string {
  return [
    `pkgname=${name}`,
    `pkgver=${body.version ?? '1.0'}`,
    'pkgrel=1',
    "pkgdesc='serene runner conformance'",
    "arch=('any')",
    "license=('MIT')",
    "options=('!strip' '!debug')",
    body.extra ?? '',
    'build() {',
    `  ${body.build ?? 'true'}`,
    '}',
    'package() {',
    '  mkdir -p "$pkgdir/usr/share/$pkgname"',
    '  echo "hello from $pkgname" > "$pkgdir/usr/share/$pkgname/hello"',
    '}',
    '',
  ].join('\n');
}

const PACKAGE_FILE = /\.pkg\.tar(\.[a-z0-9]+)?$/;

/**
 * The `Runner` conformance suite: every implementation runs it. The PKGBUILDs build with Arch's and
 * Debian's makepkg alike (no dependencies, `arch=(any)`), so a runner may use either.
 */
export function testRunner(name: string, options: RunnerSuiteOptions): void {
  const prefix = options.basePrefix ?? 'conform';
  const timeout = options.testTimeoutMs ?? 240_000;
  const buildTimeoutMs = options.buildTimeoutMs ?? 8_000;

  describe.skipIf(options.skip === true)(`Runner conformance: ${name}`, () => {
    let runner: Runner;
    let root: string;
    let dir: string;
    const bases = new Set<string>();

    const job = (base: string, pkgbuild: string, extra?: RunnerJobExtras): Promise<RunnerJob> => {
      bases.add(base);
      return writeRunnerJob(dir, base, pkgbuild, extra);
    };
    const collect = async (build: RunnerJob, signal?: AbortSignal) => {
      const chunks: string[] = [];
      const result = await runner.run(build, {
        onLog: (chunk) => chunks.push(chunk),
        ...(signal ? { signal } : {}),
      });
      return { result, chunks };
    };
    const expectAborted = (result: RunResult, reason: 'timeout' | 'cancelled') => {
      expect(result.success).toBe(false);
      expect(result.aborted).toBe(reason);
      expect(result.packages).toEqual([]);
      if (result.message !== undefined) expect(result.message).not.toBe('');
    };

    beforeAll(async () => {
      runner = await options.create();
      root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-runner-'));
    });
    beforeEach(async () => {
      dir = await fs.mkdtemp(path.join(root, 'test-'));
    });
    afterEach(async () => {
      await fs.rm(dir, { recursive: true, force: true });
    });
    afterAll(async () => {
      for (const base of bases) await runner?.remove?.(base).catch(() => undefined);
      await runner?.dispose?.();
      await runner?.dispose?.(); // twice is harmless
      await options.cleanup?.();
      if (root) await fs.rm(root, { recursive: true, force: true });
    });

    it('has a name', () => {
      expect(runner.name).toMatch(/^[a-z][a-z0-9-]*$/);
    });

    it(
      'builds a package: its file, the .SRCINFO, the log as it came, exit code 0',
      async () => {
        const base = `${prefix}-single`;
        const build = await job(base, simplePkgbuild(base, { build: 'echo "conform-build-marker"' }));
        const { result, chunks } = await collect(build);
        expect(result.success, result.logs).toBe(true);
        expect(result.exitCode).toBe(0);
        expect(result.aborted).toBeUndefined();
        expect(result.logs).toContain('conform-build-marker');
        expect(chunks.join('')).toBe(result.logs);
        expect(result.started.getTime()).toBeLessThanOrEqual(result.ended.getTime());
        expect(result.packages).toHaveLength(1);
        const file = result.packages[0]!;
        expect(path.dirname(file)).toBe(build.outputDir);
        expect(path.basename(file)).toMatch(new RegExp(`^${base}-1\\.0-1-any\\.pkg\\.tar(\\.[a-z0-9]+)?$`));
        expect((await fs.stat(file)).size).toBeGreaterThan(0);
        expect(result.srcinfo).toContain(`pkgbase = ${base}`);
        expect(result.srcinfo).toContain('pkgver = 1.0');
        if (hasProgram('bsdtar')) {
          const list = await run('bsdtar', ['-tf', file]);
          expect(list.stdout).toContain('.PKGINFO');
          expect(list.stdout).toContain(`usr/share/${base}/hello`);
        }
        if (options.stats) {
          expect(result.stats).not.toBeNull();
          expect(result.stats!.memoryPeak).toBeGreaterThan(0);
          for (const value of Object.values(result.stats!)) {
            if (value !== null) expect(value).toBeGreaterThanOrEqual(0);
          }
          expect(result.stats!.cpuUser).not.toBeNull();
        }
      },
      timeout,
    );

    it(
      'builds every member of a split package',
      async () => {
        const base = `${prefix}-split`;
        const pkgbuild = [
          `pkgbase=${base}`,
          `pkgname=(${base}-one ${base}-two)`,
          'pkgver=2.1',
          'pkgrel=3',
          "arch=('any')",
          "license=('MIT')",
          "options=('!strip' '!debug')",
          `package_${base}-one() { mkdir -p "$pkgdir/usr/share/one"; echo 1 > "$pkgdir/usr/share/one/file"; }`,
          `package_${base}-two() { mkdir -p "$pkgdir/usr/share/two"; echo 2 > "$pkgdir/usr/share/two/file"; }`,
          '',
        ].join('\n');
        const { result } = await collect(await job(base, pkgbuild));
        expect(result.success, result.logs).toBe(true);
        expect(result.packages.map((file) => path.basename(file).replace(PACKAGE_FILE, '')).sort()).toEqual([
          `${base}-one-2.1-3-any`,
          `${base}-two-2.1-3-any`,
        ]);
        expect(result.srcinfo).toContain(`pkgname = ${base}-one`);
        expect(result.srcinfo).toContain(`pkgname = ${base}-two`);
      },
      timeout,
    );

    it(
      'a failing build resolves unsuccessful, with its exit code and its log',
      async () => {
        const base = `${prefix}-failing`;
        const build = await job(base, simplePkgbuild(base, { build: 'echo "conform-fail-marker"; exit 3' }));
        const { result } = await collect(build);
        expect(result.success).toBe(false);
        expect(result.aborted).toBeUndefined();
        expect(result.exitCode).not.toBeNull();
        expect(result.exitCode).not.toBe(0);
        expect(result.logs).toContain('conform-fail-marker');
        expect(result.packages).toEqual([]);
        expect(await fs.readdir(build.outputDir)).toEqual([]);
      },
      timeout,
    );

    it(
      'passes the generated inputs, and reports the .SRCINFO as it is after the build',
      async () => {
        const base = `${prefix}-inputs`;
        // check() fails unless --nocheck applies; pkgver() moves the version as devel packages do
        const pkgbuild = simplePkgbuild(base, {
          extra: 'check() { echo "conform-check-ran"; false; }\npkgver() { echo 2.5; }',
        });
        const build = await job(base, pkgbuild, {
          inputs: { prepare: 'echo "conform-prepare-marker"\n', makepkgFlags: '--nocheck ' },
        });
        const { result } = await collect(build);
        expect(result.success, result.logs).toBe(true);
        expect(result.logs).toContain('conform-prepare-marker');
        expect(result.logs).not.toContain('conform-check-ran');
        expect(result.srcinfo).toContain('pkgver = 2.5');
        expect(path.basename(result.packages[0] ?? '')).toMatch(new RegExp(`^${base}-2\\.5-1-any`));
      },
      timeout,
    );

    it(
      'ends a build that runs past its timeout, and the package builds again afterwards',
      async () => {
        const base = `${prefix}-timeout`;
        const slow = await job(base, simplePkgbuild(base), {
          inputs: { prepare: 'echo "conform-sleeping"; sleep 600\n' },
          timeoutMs: buildTimeoutMs,
        });
        const begun = Date.now();
        const { result } = await collect(slow);
        expectAborted(result, 'timeout');
        expect(Date.now() - begun).toBeGreaterThanOrEqual(buildTimeoutMs - 50);
        expect(Date.now() - begun).toBeLessThan(buildTimeoutMs + 60_000);

        const again = await collect(await job(base, simplePkgbuild(base)));
        expect(again.result.success, again.result.logs).toBe(true);
      },
      timeout,
    );

    it(
      'streams output while the build runs, and cancels it when its signal aborts',
      async () => {
        const base = `${prefix}-cancel`;
        const build = await job(base, simplePkgbuild(base), {
          inputs: { prepare: 'echo "conform-sleeping"; sleep 600\n' },
        });
        const controller = new AbortController();
        let abortedAt = 0;
        const seen: string[] = [];
        const result = await runner.run(build, {
          signal: controller.signal,
          onLog: (chunk) => {
            seen.push(chunk);
            if (abortedAt === 0 && seen.join('').includes('conform-sleeping')) {
              abortedAt = Date.now();
              controller.abort();
            }
          },
        });
        expect(abortedAt, result.logs).toBeGreaterThan(0);
        expectAborted(result, 'cancelled');
        expect(Date.now() - abortedAt).toBeLessThan(30_000);
        expect(result.logs).toContain('conform-sleeping');
      },
      timeout,
    );

    it('a signal aborted before the run resolves as cancelled, without building', async () => {
      const base = `${prefix}-precancelled`;
      const build = await job(base, simplePkgbuild(base, { build: 'echo "conform-must-not-run"' }));
      const result = await runner.run(build, { signal: AbortSignal.abort() });
      expectAborted(result, 'cancelled');
      expect(result.logs).not.toContain('conform-must-not-run');
    });

    it(
      'a clean build starts from a clean state',
      async () => {
        const base = `${prefix}-state`;
        // the prepare commands run in the package's work folder and end the build at once (cheap)
        const stamp = {
          prepare:
            'if [ -e .conform-stamp ]; then echo "stamp: present"; else echo "stamp: absent"; fi\n' +
            'touch .conform-stamp\nexit 3\n',
        };
        const pkgbuild = simplePkgbuild(base);
        const first = await collect(await job(base, pkgbuild, { clean: true, inputs: stamp }));
        expect(first.result.success).toBe(false);
        expect(first.result.logs).toContain('stamp: absent');
        if (options.incremental) {
          const second = await collect(await job(base, pkgbuild, { inputs: stamp }));
          expect(second.result.logs).toContain('stamp: present');
        }
        const clean = await collect(await job(base, pkgbuild, { clean: true, inputs: stamp }));
        expect(clean.result.logs).toContain('stamp: absent');
        if (runner.remove) {
          await runner.remove(base);
          await runner.remove(base); // removing what is not there is fine
          const removed = await collect(await job(base, pkgbuild, { inputs: stamp }));
          expect(removed.result.logs).toContain('stamp: absent');
        }
      },
      timeout,
    );

    it(
      'builds different packages at the same time',
      async () => {
        const names = [`${prefix}-parallel-a`, `${prefix}-parallel-b`];
        const results = await Promise.all(
          names.map(async (base) => (await collect(await job(base, simplePkgbuild(base)))).result),
        );
        for (const result of results) expect(result.success, result.logs).toBe(true);
        expect(results.map((result) => path.basename(result.packages[0] ?? '').split('-1.0-')[0])).toEqual(
          names,
        );
      },
      timeout,
    );

    it(
      'prints the .SRCINFO of a source folder, and rejects a broken PKGBUILD',
      async () => {
        const base = `${prefix}-srcinfo`;
        const good = await job(base, simplePkgbuild(base, { version: '3.4' }));
        const srcinfo = await runner.printSrcinfo(good.sourceDir);
        expect(srcinfo).toMatch(new RegExp(`^pkgbase = ${base}$`, 'm'));
        expect(srcinfo).toMatch(/^\tpkgver = 3\.4$/m);
        expect(srcinfo).toMatch(new RegExp(`^pkgname = ${base}$`, 'm'));
        const broken = await job(`${base}-broken`, 'pkgname=(\n');
        await expect(runner.printSrcinfo(broken.sourceDir)).rejects.toThrow();
      },
      timeout,
    );

    options.additionalTests?.({ runner: () => runner, dir: () => dir, job });
  });
}
