/**
 * What the API commands share: the connection to the server (config, `--server`, secret, the
 * onboarding), error reporting with the original's `error: ...` lines, and waiting for a build on
 * its live stream.
 */
import type { Command } from 'commander';
import { ApiClient, ApiError, ConnectionError, type EventStream, segment } from './api.js';
import {
  authorizedSecretsLine,
  type ClientPaths,
  ConfigError,
  clientPaths,
  loadSecret,
  normalizeUrl,
  readConfig,
  writeConfig,
} from './config.js';
import { describeState, duration } from './format.js';
import { type CliIo, EXIT_ERROR, EXIT_OK, EXIT_USAGE, isDebug } from './io.js';
import { setupPacman } from './pacman-setup.js';
import { createProgress } from './progress.js';
import { type BuildInfo, isDone, type PackageInfo, PROTOCOL_VERSION, type SereneInfo } from './wire.js';

/** A command line that is wrong in a way commander cannot see (flags that exclude each other). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The program's global options. */
export interface GlobalOptions {
  /** `-s/--server`: overrides the url of the config file */
  server?: string;
}

/** What an API command works with. */
export interface ClientContext {
  io: CliIo;
  api: ApiClient;
  paths: ClientPaths;
  /** the program that runs pacman as root */
  elevator: string;
}

/** Tuning that tests shorten. */
export interface ClientTuning {
  /**
   * While waiting for a build, how often the client also asks for the newest build, in case the
   * live stream missed the end.
   * @default 5000
   */
  pollMs: number;
}

/** The default {@link ClientTuning}. */
export const DEFAULT_TUNING: ClientTuning = { pollMs: 5000 };

// --- the connection ---

/**
 * The client of the configured server. Without a config file (and without `--server`), a terminal
 * session runs the onboarding; any other session fails with an error that says what to do, as
 * scripts and CI jobs cannot answer questions.
 */
export async function connect(io: CliIo, globals: GlobalOptions): Promise<ClientContext> {
  const paths = clientPaths(io.env);
  const config = await readConfig(paths.config);
  let url = globals.server !== undefined ? normalizeUrl(globals.server) : config?.url;
  if (globals.server !== undefined && !/^https?:\/\/[^/]/.test(url ?? '')) {
    throw new UsageError(`--server must be an http:// or https:// url, not '${globals.server}'`);
  }
  if (url === undefined) {
    if (io.stdinIsTTY !== true || !io.prompt) {
      throw new ConfigError(
        `no server configured: pass --server <url>, or write 'url: https://your.server' to ${paths.config}`,
      );
    }
    url = await onboard(io, paths);
  }
  const secret = config?.secret ?? (await loadSecret(paths.secret));
  return { io, api: new ApiClient(url, secret), paths, elevator: config?.elevator ?? 'sudo' };
}

/**
 * Asks for the server, checks it answers as a serene server, writes the config, prints the secret's
 * line and offers to set pacman up (as the original's onboarding).
 */
async function onboard(io: CliIo, paths: ClientPaths): Promise<string> {
  io.stdout(`Welcome to serene! There is no configuration at ${paths.config} yet.\n`);
  const answer = normalizeUrl((await io.prompt?.('Url of your serene server (https://...): ')) ?? '');
  if (!/^https?:\/\/[^/]/.test(answer))
    throw new ConfigError(`'${answer}' is not an http:// or https:// url`);
  const info = await new ApiClient(answer, '').json<SereneInfo>('GET', '/');
  await writeConfig(paths.config, answer);
  const up = duration(Date.now() - new Date(info.started).getTime());
  io.stdout(
    `Connected to ${info.name} ${info.version} (${info.architecture}), up ${up}; wrote ${paths.config}.\n\n`,
  );
  const secret = await loadSecret(paths.secret);
  io.stdout("Add this line to the server's authorized_secrets file to use it from here:\n");
  io.stdout(`  ${authorizedSecretsLine(secret)}\n\n`);
  try {
    await setupPacman(io, new ApiClient(answer, secret), info, 'sudo');
  } catch (error) {
    // pacman is optional: the configuration is written, the command goes on
    io.stderr(`warn: pacman is not set up: ${error instanceof Error ? error.message : String(error)}\n`);
    io.stderr('      run `serene host signatures` once the secret is authorized\n');
  }
  io.stdout('\n');
  return answer;
}

// --- versions ---

/**
 * The warning about a server whose version does not fit this client, or undefined when it fits.
 * The rule: the same major and minor version as {@link PROTOCOL_VERSION} (the original's releases
 * change the API only with the minor version; `v0.4.x` servers all speak it). Our server reports the
 * original's version it speaks.
 */
export function versionWarning(server: string): string | undefined {
  const parse = (text: string) => /^v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?$/.exec(text.trim());
  const ours = parse(PROTOCOL_VERSION)!;
  const theirs = parse(server);
  const want = `v${ours[1]}.${ours[2]}`;
  if (!theirs) {
    return `the server's version '${server}' does not say which API it speaks (this CLI speaks ${want}); if commands fail, update the server or the CLI`;
  }
  const order = Number(theirs[1]) - Number(ours[1]) || Number(theirs[2]) - Number(ours[2]);
  if (order === 0) return undefined;
  return order > 0
    ? `the server (${server}) is newer than this CLI knows (${want}): update the serene CLI`
    : `the server (${server}) is older than this CLI (${want}): update the server`;
}

/**
 * Asks the server's version beside a command (as the original's \`list\` and \`info\` do); call the
 * result after the command's output to print the warning, if any. A failed check says nothing: the
 * command itself reports an unreachable server.
 */
export function checkVersion(context: ClientContext): () => Promise<void> {
  const info = context.api.json<SereneInfo>('GET', '/').then(
    (answer) => answer,
    () => undefined,
  );
  return async () => {
    const answer = await info;
    const warning = answer ? versionWarning(answer.version) : undefined;
    if (warning) context.io.stderr(`warn: ${warning}\n`);
  };
}

// --- errors ---

/**
 * Reports an error as one `error: ...` line on standard error and returns the exit code: 2 for a
 * wrong command line, 1 for everything else.
 */
export function reportClientError(error: unknown, io: CliIo): number {
  if (error instanceof UsageError) {
    io.stderr(`error: ${error.message}\n`);
    return EXIT_USAGE;
  }
  if (error instanceof ApiError) {
    io.stderr(`error: ${error.message}\n`);
    if (error.status === 401 || error.status === 403) {
      io.stderr(
        "hint: this machine's secret is not in the server's authorized_secrets; see `serene host secret`\n",
      );
    }
    return EXIT_ERROR;
  }
  if (error instanceof ConnectionError || error instanceof ConfigError) {
    io.stderr(`error: ${error.message}\n`);
    return EXIT_ERROR;
  }
  if (error instanceof Error && (error as NodeJS.ErrnoException).syscall !== undefined) {
    io.stderr(`error: ${error.message}\n`);
    return EXIT_ERROR;
  }
  io.stderr(`error: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
  if (isDebug(io) && error instanceof Error && error.stack) io.stderr(`${error.stack}\n`);
  return EXIT_ERROR;
}

/**
 * The action of an API command: connects, runs `body`, and reports its errors. The program's
 * `--server` is read from the command's globals, or from `globals` when given.
 */
export function apiAction<A extends unknown[]>(
  io: CliIo,
  setExitCode: (code: number) => void,
  body: (context: ClientContext, ...args: A) => Promise<number | undefined>,
  globals?: () => GlobalOptions,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const command = args[args.length - 1] as Command;
    try {
      const context = await connect(io, globals ? globals() : (command.optsWithGlobals() as GlobalOptions));
      setExitCode((await body(context, ...args)) ?? EXIT_OK);
    } catch (error) {
      setExitCode(reportClientError(error, io));
    }
  };
}

// --- waiting for builds ---

/** The moment a request reached the server, by its `Date` header (whole seconds, rounded down). */
export async function serverNow(api: ApiClient): Promise<Date> {
  const response = await api.request('GET', '/');
  await response.arrayBuffer();
  const date = new Date(response.headers.get('date') ?? '');
  return Number.isNaN(date.getTime()) ? new Date(0) : date;
}

/** Identifies the build a command started. */
export interface BuildMark {
  /** the server's time before the build was asked for */
  since: Date;
  /** `started` of the newest build before, which is not ours */
  before: string | undefined;
}

/** Whether `build` is the one started after `mark`. */
function isOurs(build: BuildInfo, mark: BuildMark): boolean {
  return new Date(build.started).getTime() >= mark.since.getTime() && build.started !== mark.before;
}

/**
 * Waits on `stream` until the build of `base` that started after `mark` is over, printing its log
 * (unless `quiet`) and its progress; resolves with that build. The live stream is the source of
 * truth; a slow poll of the newest build covers a build that ended before the stream opened.
 */
export async function waitForBuild(
  context: ClientContext,
  base: string,
  stream: EventStream,
  mark: BuildMark,
  options: { quiet: boolean; tuning: ClientTuning },
): Promise<BuildInfo> {
  const { io, api } = context;
  const progress = createProgress(io);
  progress.update(`waiting for the build of ${base}`);
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  const check = async (): Promise<BuildInfo | undefined> => {
    const latest = await api.latestBuild(base);
    return latest && isDone(latest.state) && isOurs(latest, mark) ? latest : undefined;
  };
  try {
    return await new Promise<BuildInfo>((resolve, reject) => {
      const done = (build: BuildInfo) => {
        finished = true;
        resolve(build);
      };
      const fail = (error: unknown) => {
        finished = true;
        reject(error);
      };
      const poll = () => {
        timer = setTimeout(() => {
          check().then((build) => (build ? done(build) : finished || poll()), fail);
        }, options.tuning.pollMs);
      };
      check().then((build) => {
        if (build) done(build);
        else poll();
      }, fail);
      if (io.signal) {
        if (io.signal.aborted) fail(new ConnectionError('interrupted'));
        io.signal.addEventListener('abort', () => fail(new ConnectionError('interrupted')), { once: true });
      }
      (async () => {
        for await (const event of stream) {
          if (finished) return;
          if (event.event === 'log') {
            if (!options.quiet) progress.log(event.data);
          } else if (event.event === 'change') {
            progress.update(`${base}: ${describeState(event.data)}`);
            if (isDone(event.data)) {
              const build = await check();
              if (build) return done(build);
            }
          }
        }
        // the server closed the stream: the poll goes on alone
      })().catch((error: unknown) => {
        // a broken stream is not the end of the wait while the server still answers
        if (!finished && isDebug(io)) io.stderr(`debug: live stream: ${String(error)}\n`);
      });
    });
  } finally {
    finished = true;
    if (timer) clearTimeout(timer);
    progress.stop();
    stream.close();
  }
}

/**
 * After `--listen` or `--install`: reports how the build ended and, for `--install` and a
 * successful build, runs `<elevator> pacman -Sy <members>`. Returns the exit code: 0 only when the
 * build succeeded (and pacman did).
 */
export async function finishWait(
  context: ClientContext,
  base: string,
  build: BuildInfo,
  install: boolean,
): Promise<number> {
  const { io, api } = context;
  if (build.state.state !== 'success') {
    io.stderr(`error: the build of ${base} did not succeed: ${describeState(build.state)}\n`);
    return EXIT_ERROR;
  }
  io.stderr(`the build of ${base} succeeded${build.version ? ` (version ${build.version})` : ''}\n`);
  if (!install) return EXIT_OK;
  const info = await api.json<PackageInfo>('GET', `/package/${segment(base)}`);
  if (info.members.length === 0) {
    io.stderr(`error: ${base} has no published packages to install\n`);
    return EXIT_ERROR;
  }
  const [command, ...prefix] = context.elevator.split(/\s+/).filter(Boolean);
  const args = [...prefix, 'pacman', '-Sy', ...info.members];
  io.stderr(`running ${[command, ...args].join(' ')}\n`);
  if (!io.exec || command === undefined) {
    io.stderr('error: this session cannot run programs\n');
    return EXIT_ERROR;
  }
  const code = await io.exec(command, args);
  if (code !== 0) {
    io.stderr(`error: pacman failed (exit code ${code})\n`);
    return EXIT_ERROR;
  }
  return EXIT_OK;
}
