import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

/** Whether a program is on the PATH. */
export function hasProgram(program: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(path.join(dir, program)));
}

/** Result of one program run. */
export interface RunOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program and resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(
  program: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<RunOutput> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      args,
      { cwd: options.cwd, env: options.env, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(error);
          return;
        }
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** One repository a pacman sandbox syncs from. */
export interface SandboxRepo {
  name: string;
  /** `file:///...` or `http://127.0.0.1:...` */
  server: string;
  /** @default 'Never' */
  sigLevel?: string;
}

/** A pacman with its own root, database folder, cache, keyring and configuration. */
export interface PacmanSandbox {
  root: string;
  config: string;
  gpgdir: string;
  /** runs `pacman --config <ours> ...args` */
  pacman(args: readonly string[]): Promise<RunOutput>;
  /** runs `pacman-key --config <ours> --gpgdir <ours> ...args` */
  pacmanKey(args: readonly string[], input?: string): Promise<RunOutput>;
  cleanup(): Promise<void>;
}

/**
 * Creates a pacman sandbox in a temp folder: real pacman, as a client of the given repositories,
 * installing into its own root (scriptlets off, as the root holds no shell).
 */
export async function createPacmanSandbox(
  repos: readonly SandboxRepo[],
  options: { architecture?: string; sigLevel?: string } = {},
): Promise<PacmanSandbox> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-pacman-'));
  const gpgdir = path.join(root, 'etc/pacman.d/gnupg');
  for (const dir of ['var/lib/pacman', 'var/cache/pacman/pkg', 'var/log', 'etc/pacman.d/hooks']) {
    await fs.mkdir(path.join(root, dir), { recursive: true });
  }
  const config = path.join(root, 'pacman.conf');
  const lines = [
    '[options]',
    `RootDir = ${root}`,
    `DBPath = ${root}/var/lib/pacman/`,
    `CacheDir = ${root}/var/cache/pacman/pkg/`,
    `LogFile = ${root}/var/log/pacman.log`,
    `GPGDir = ${gpgdir}/`,
    `HookDir = ${root}/etc/pacman.d/hooks/`,
    `Architecture = ${options.architecture ?? 'x86_64'}`,
    `SigLevel = ${options.sigLevel ?? 'Never'}`,
    'DisableDownloadTimeout',
    '',
    ...repos.flatMap((repo) => [
      `[${repo.name}]`,
      `SigLevel = ${repo.sigLevel ?? 'Never'}`,
      `Server = ${repo.server}`,
      '',
    ]),
  ];
  await fs.writeFile(config, `${lines.join('\n')}\n`);
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  return {
    root,
    config,
    gpgdir,
    pacman: (args) => run('pacman', ['--config', config, '--noconfirm', ...args], { env }),
    pacmanKey: (args, input) =>
      run('pacman-key', ['--config', config, '--gpgdir', gpgdir, ...args], { env, input }),
    async cleanup() {
      await run('gpgconf', ['--homedir', gpgdir, '--kill', 'all']).catch(() => undefined);
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}
