import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Runner, RunnerJob, RunOptions, RunResult } from '@serene/core';
import { PluginError } from '@serene/core';

/** Name of the local runner, for logs. */
export const LOCAL_RUNNER_NAME = 'local';

/** Options of {@link createLocalRunner}. */
export interface LocalRunnerOptions {
  /** folder holding one work folder per package (kept between builds unless a build is clean) */
  workDir: string;
  /**
   * the unprivileged user makepkg runs as when this process is root (makepkg refuses root)
   * @default 'serene-build'
   */
  user?: string;
  /** `PACKAGER` for the built packages */
  packager?: string;
}

/** What every build's makepkg.conf adds to the system one: no stripping, no debug packages. */
const CONF_OVERRIDES = `
[[ -n $CARCH ]] || CARCH=$(uname -m)
[[ -n $CHOST ]] || CHOST="$CARCH-pc-linux-gnu"
BUILDENV=(!distcc !color !ccache check !sign)
OPTIONS=(!strip docs libtool staticlibs emptydirs zipman purge !debug !lto)
PKGEXT='.pkg.tar.zst'
`;

/** The build script: the original's build.sh without the parts that need root (dependencies). */
const BUILD_SCRIPT = `set -e
cd "$SERENE_WORK/build"
source ./serene-prepare.sh
read -r -a flags < ./makepkg-flags || true
makepkg --force --nodeps --noconfirm --nocolor --config "$SERENE_WORK/makepkg.conf" "\${flags[@]}"
makepkg --printsrcinfo --config "$SERENE_WORK/makepkg.conf" > "$SERENE_WORK/target/.SRCINFO"
`;

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * A {@link Runner} that runs makepkg directly on this machine as an unprivileged user, without
 * containers. It shows how a runner is swapped in, and lets tests run real builds without Docker.
 *
 * @remarks It does not install dependencies (that needs root and a pacman-managed system): builds
 * run with `makepkg --nodeps`, so `OWN_REPOSITORY_URL` (the `custom-repo` input) is ignored. No
 * isolation beyond the user account; no resource statistics.
 */
export function createLocalRunner(options: LocalRunnerOptions): Runner {
  const user = options.user ?? 'serene-build';

  const asUser = (script: string, env: Record<string, string>): [string, string[]] => {
    const envArgs = Object.entries(env).map(([key, value]) => `${key}=${value}`);
    return isRoot()
      ? ['runuser', ['-u', user, '--', 'env', '-i', ...envArgs, 'bash', '-c', script]]
      : ['env', ['-i', ...envArgs, 'bash', '-c', script]];
  };

  const chown = async (dir: string): Promise<void> => {
    if (!isRoot()) return;
    const code = await new Promise<number | null>((resolve) =>
      spawn('chown', ['-R', `${user}:`, dir], { stdio: 'ignore' }).on('close', resolve),
    );
    if (code !== 0) throw new PluginError(LOCAL_RUNNER_NAME, `cannot hand ${dir} to user ${user}`);
  };

  const baseEnv = (work: string): Record<string, string> => ({
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: work,
    USER: user,
    LOGNAME: user,
    LANG: 'C.UTF-8',
    SERENE_WORK: work,
    PKGDEST: path.join(work, 'target'),
    SRCDEST: path.join(work, 'build'),
    BUILDDIR: path.join(work, 'build'),
    ...(options.packager ? { PACKAGER: options.packager } : {}),
  });

  const writeConf = async (work: string): Promise<void> => {
    const system = existsSync('/etc/makepkg.conf') ? 'source /etc/makepkg.conf\n' : '';
    await fs.writeFile(path.join(work, 'makepkg.conf'), system + CONF_OVERRIDES);
  };

  /** Runs a script as the build user in its own process group; kills the group on abort. */
  const execute = (
    script: string,
    env: Record<string, string>,
    onOutput: (chunk: string) => void,
    onError: (chunk: string) => void,
    signal: AbortSignal,
  ): Promise<number | null> =>
    new Promise((resolve, reject) => {
      const [program, args] = asUser(script, env);
      const child = spawn(program, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      const kill = () => {
        if (child.pid) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      };
      signal.addEventListener('abort', kill, { once: true });
      if (signal.aborted) kill();
      child.stdout.setEncoding('utf8').on('data', onOutput);
      child.stderr.setEncoding('utf8').on('data', onError);
      child.on('error', (error) => {
        signal.removeEventListener('abort', kill);
        reject(new PluginError(LOCAL_RUNNER_NAME, `cannot run ${program}`, { cause: error }));
      });
      child.on('close', (code) => {
        signal.removeEventListener('abort', kill);
        resolve(code);
      });
    });

  return {
    name: LOCAL_RUNNER_NAME,

    async run(job: RunnerJob, runOptions: RunOptions = {}): Promise<RunResult> {
      const started = new Date();
      if (runOptions.signal?.aborted) {
        return {
          success: false,
          exitCode: null,
          aborted: 'cancelled',
          started,
          ended: new Date(),
          logs: '',
          srcinfo: null,
          packages: [],
          stats: null,
        };
      }
      const work = path.join(path.resolve(options.workDir), job.base);
      if (job.clean) await fs.rm(work, { recursive: true, force: true });
      await fs.mkdir(path.join(work, 'build'), { recursive: true });
      await fs.rm(path.join(work, 'target'), { recursive: true, force: true });
      await fs.mkdir(path.join(work, 'target'));
      await fs.cp(job.sourceDir, path.join(work, 'build'), { recursive: true, force: true });
      await fs.writeFile(path.join(work, 'build', 'custom-repo'), job.inputs.customRepo);
      await fs.writeFile(path.join(work, 'build', 'serene-prepare.sh'), job.inputs.prepare);
      await fs.writeFile(path.join(work, 'build', 'makepkg-flags'), job.inputs.makepkgFlags);
      await writeConf(work);
      await chown(work);

      const controller = new AbortController();
      let aborted: 'timeout' | 'cancelled' | undefined;
      const onAbort = () => {
        aborted ??= 'cancelled';
        controller.abort();
      };
      runOptions.signal?.addEventListener('abort', onAbort, { once: true });
      if (runOptions.signal?.aborted) onAbort();
      const timer =
        job.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              aborted ??= 'timeout';
              controller.abort();
            }, job.timeoutMs);
      let logs = '';
      let code: number | null;
      try {
        const log = (chunk: string) => {
          logs += chunk;
          runOptions.onLog?.(chunk);
        };
        code = await execute(BUILD_SCRIPT, baseEnv(work), log, log, controller.signal);
      } finally {
        clearTimeout(timer);
        runOptions.signal?.removeEventListener('abort', onAbort);
      }
      const target = path.join(work, 'target');
      const names = (await fs.readdir(target)).filter((name) => /\.pkg\.tar(\.[a-z0-9]+)?$/.test(name));
      await fs.mkdir(job.outputDir, { recursive: true });
      const packages: string[] = [];
      for (const name of names.sort()) {
        await fs.copyFile(path.join(target, name), path.join(job.outputDir, name));
        packages.push(path.join(job.outputDir, name));
      }
      const srcinfo = await fs.readFile(path.join(target, '.SRCINFO'), 'utf8').catch(() => null);
      return {
        success: code === 0 && aborted === undefined,
        exitCode: code,
        ...(aborted ? { aborted } : {}),
        ...(aborted === 'timeout'
          ? { message: `build timed out after ${Math.round(job.timeoutMs! / 1000)} s and was killed` }
          : {}),
        started,
        ended: new Date(),
        logs,
        srcinfo: srcinfo || null,
        packages,
        stats: null,
      };
    },

    async printSrcinfo(sourceDir: string, runOptions: { signal?: AbortSignal } = {}): Promise<string> {
      const work = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-srcinfo-'));
      try {
        await fs.cp(sourceDir, path.join(work, 'build'), { recursive: true });
        await writeConf(work);
        await chown(work);
        let out = '';
        let err = '';
        const code = await execute(
          'cd "$SERENE_WORK/build" && makepkg --printsrcinfo --config "$SERENE_WORK/makepkg.conf"',
          baseEnv(work),
          (chunk) => {
            out += chunk;
          },
          (chunk) => {
            err += chunk;
          },
          runOptions.signal ?? new AbortController().signal,
        );
        if (code !== 0) {
          throw new PluginError(
            LOCAL_RUNNER_NAME,
            `makepkg --printsrcinfo failed: ${err.trim().slice(-2000)}`,
          );
        }
        return out;
      } finally {
        await fs.rm(work, { recursive: true, force: true });
      }
    },

    async remove(base: string): Promise<void> {
      await fs.rm(path.join(path.resolve(options.workDir), base), { recursive: true, force: true });
    },
  };
}
