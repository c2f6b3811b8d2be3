/**
 * A user's home for running the CLI in this process against a server, for tests and benchmarks:
 * its config names the server (`url:` in `serene.yml`), its data folder holds the secret, and the
 * XDG folders point into it. Not exported from the package index.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../cli.js';
import type { ClientTuning } from '../client.js';
import type { CliIo } from '../io.js';

/** What one command printed, and its exit code. */
export interface CliOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** A home made by {@link createCliHome}. */
export interface CliHome {
  /** the home folder (also the working folder of the commands) */
  dir: string;
  /** The io of a command run in this home, its output going to `sink`. */
  io(sink: Pick<CliIo, 'stdout' | 'stderr'>): CliIo;
  /** Runs `serene ARGS` in this process in this home; resolves with what it printed. */
  run(args: readonly string[]): Promise<CliOutput>;
  /** Removes the home. */
  cleanup(): Promise<void>;
}

/**
 * Makes a home whose CLI talks to the server at `url` with `secret`, in a new temporary folder or
 * in `options.dir`. `options.tuning` is passed to every command (tests wait less with a short
 * `pollMs`).
 */
export async function createCliHome(
  url: string,
  secret: string,
  options: { dir?: string; tuning?: ClientTuning } = {},
): Promise<CliHome> {
  const dir = options.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'serene-cli-home-')));
  await fs.mkdir(path.join(dir, 'config'), { recursive: true });
  await fs.writeFile(path.join(dir, 'config', 'serene.yml'), `url: ${url}\n`);
  await fs.mkdir(path.join(dir, 'data', 'serene'), { recursive: true });
  await fs.writeFile(path.join(dir, 'data', 'serene', 'secret.txt'), `${secret}\n`);
  const io = (sink: Pick<CliIo, 'stdout' | 'stderr'>): CliIo => ({
    stdout: sink.stdout,
    stderr: sink.stderr,
    cwd: dir,
    env: {
      HOME: dir,
      XDG_CONFIG_HOME: path.join(dir, 'config'),
      XDG_DATA_HOME: path.join(dir, 'data'),
      XDG_CACHE_HOME: path.join(dir, 'cache'),
    },
    stdoutIsTTY: false,
    stdinIsTTY: false,
    exec: async () => 0,
  });
  return {
    dir,
    io,
    async run(args) {
      const out: CliOutput = { code: -1, stdout: '', stderr: '' };
      const sink = {
        stdout: (text: string) => {
          out.stdout += text;
        },
        stderr: (text: string) => {
          out.stderr += text;
        },
      };
      out.code = await runCli(args, io(sink), options.tuning);
      return out;
    },
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
}
