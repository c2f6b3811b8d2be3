import { spawn } from 'node:child_process';
import type { Logger, LogMeta, SereneError } from '@serene/core';

/** Where a command reads its working folder and environment from and writes its output to. */
export interface CliIo {
  /** standard output (progress messages) */
  stdout(text: string): void;
  /** standard error (warnings and errors) */
  stderr(text: string): void;
  /** the folder relative paths are taken from */
  cwd: string;
  /** the environment: `XDG_*`, `HOME`, `NO_COLOR`, `SERENE_DEBUG` are read from here only */
  env: NodeJS.ProcessEnv;
  /** whether standard output is a terminal (spinner, colours) @default false */
  stdoutIsTTY?: boolean;
  /** whether standard error is a terminal (repo-add's colours) @default false */
  stderrIsTTY?: boolean;
  /** whether standard input is a terminal (the onboarding may ask questions) @default false */
  stdinIsTTY?: boolean;
  /** asks the user one question on the terminal; needed by the interactive onboarding only */
  prompt?: (question: string) => Promise<string>;
  /**
   * Runs a program with the terminal attached (`sudo pacman -Sy ...`) and resolves with its exit
   * code; with `input`, that is its standard input and its standard output is dropped (`sudo tee -a
   * /etc/pacman.conf`). Tests pass a recorder here.
   */
  exec?: (command: string, args: readonly string[], options?: { input?: string }) => Promise<number>;
  /** aborts long waits (live logs, `--linger`) as Ctrl-C would */
  signal?: AbortSignal;
}

/** The io of this process. */
export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    cwd: process.cwd(),
    env: process.env,
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    stdinIsTTY: process.stdin.isTTY === true,
    prompt: async (question) => {
      const readline = await import('node:readline/promises');
      const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    },
    exec: (command, args, options) => runAttached(command, args, options?.input),
  };
}

/** Runs a program with this process's terminal (or `input`); rejects when it cannot be started. */
function runAttached(command: string, args: readonly string[], input?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      stdio: input === undefined ? 'inherit' : ['pipe', 'ignore', 'inherit'],
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    if (input !== undefined) {
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(input);
    }
  });
}

/** Exit codes of the `serene` command. */
export const EXIT_OK = 0;
/** Any failure, as repo-add. */
export const EXIT_ERROR = 1;
/** The command line itself is wrong. */
export const EXIT_USAGE = 2;

/** makepkg-style messages: `==> ...` and `  -> ...` on stdout, `==> WARNING/ERROR:` on stderr. */
export interface Messages {
  msg(text: string): void;
  msg2(text: string): void;
  warning(text: string): void;
  error(text: string): void;
}

/** makepkg's colours (`colorize` of libmakepkg without tput). */
const ALL_OFF = '\x1b[0m';
const BOLD = '\x1b[1m';
const BLUE = `${BOLD}\x1b[34m`;
const GREEN = `${BOLD}\x1b[32m`;
const RED = `${BOLD}\x1b[31m`;
const YELLOW = `${BOLD}\x1b[33m`;

/**
 * Messages written to `io`; `quiet` silences `msg` and `msg2`, as repo-add's `-q`; `colour` paints
 * them as makepkg does on a terminal.
 */
export function createMessages(io: CliIo, quiet = false, colour = false): Messages {
  const paint = (prefix: string, colourOf: string, text: string) =>
    colour ? `${colourOf}${prefix}${ALL_OFF}${BOLD} ${text}${ALL_OFF}\n` : `${prefix} ${text}\n`;
  return {
    msg: (text) => {
      if (!quiet) io.stdout(paint('==>', GREEN, text));
    },
    msg2: (text) => {
      if (!quiet) io.stdout(paint('  ->', BLUE, text));
    },
    warning: (text) => io.stderr(paint('==> WARNING:', YELLOW, text)),
    error: (text) => io.stderr(paint('==> ERROR:', RED, text)),
  };
}

/** Whether `SERENE_DEBUG` asks for stack traces of unexpected errors. */
export function isDebug(io: CliIo): boolean {
  const value = io.env.SERENE_DEBUG;
  return value !== undefined && value !== '' && value !== '0' && value !== 'false';
}

/**
 * Reports an error as one `==> ERROR:` line and returns the exit code. Errors of the user's making
 * (serene's named errors, and system errors such as a permission denied) never show a stack trace;
 * other errors are bugs: they show one with `SERENE_DEBUG=1`.
 */
export function reportError(error: unknown, messages: Messages, io: CliIo): number {
  if (isSereneError(error)) {
    messages.error(capitalize(error.message));
    if (isDebug(io) && error.cause !== undefined) io.stderr(`    caused by: ${describeCause(error.cause)}\n`);
    return EXIT_ERROR;
  }
  if (isSystemError(error)) {
    messages.error(error.message);
    return EXIT_ERROR;
  }
  const text = error instanceof Error ? error.message : String(error);
  messages.error(`unexpected error: ${text}`);
  if (isDebug(io)) {
    io.stderr(`${error instanceof Error && error.stack ? error.stack : String(error)}\n`);
  } else {
    io.stderr('    (run with SERENE_DEBUG=1 to see the stack trace)\n');
  }
  return EXIT_ERROR;
}

/** A logger for the engine that prints its lines as command messages. */
export function messagesLogger(messages: Messages, io: CliIo): Logger {
  const debug = isDebug(io);
  const logger: Logger = {
    error: (message, meta) => messages.error(withMeta(message, meta)),
    warn: (message, meta) => messages.warning(withMeta(message, meta)),
    info: (message, meta) => messages.msg2(`${withValues(message, meta)}...`),
    debug: (message, meta) => {
      if (debug) io.stderr(`debug: ${withMeta(message, meta)}\n`);
    },
    child: () => logger,
  };
  return logger;
}

function withMeta(message: string, meta: LogMeta | undefined): string {
  const values = Object.entries(meta ?? {}).filter(([, value]) => value !== undefined);
  if (values.length === 0) return capitalize(message);
  return `${capitalize(message)} (${values.map(([key, value]) => `${key}: ${String(value)}`).join(', ')})`;
}

/** `Reading repository database '/x/y.db.tar.gz'`: the values only, for progress lines. */
function withValues(message: string, meta: LogMeta | undefined): string {
  const values = Object.values(meta ?? {}).filter((value) => value !== undefined);
  return [capitalize(message), ...values.map((value) => `'${String(value)}'`)].join(' ');
}

function capitalize(text: string): string {
  return text.length > 0 ? text[0]!.toUpperCase() + text.slice(1) : text;
}

function describeCause(cause: unknown): string {
  const parts: string[] = [];
  let current: unknown = cause;
  while (current !== undefined && parts.length < 5) {
    parts.push(current instanceof Error ? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ');
}

/**
 * Whether the error is one of serene's named errors. Checked by class name along the prototype
 * chain, so that this module does not load `@serene/core` (which the repository commands load late).
 */
function isSereneError(error: unknown): error is SereneError {
  if (!(error instanceof Error)) return false;
  for (let proto = Object.getPrototypeOf(error); proto; proto = Object.getPrototypeOf(proto)) {
    if (proto.constructor?.name === 'SereneError') return true;
  }
  return false;
}

function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return (
    error instanceof Error &&
    typeof (error as NodeJS.ErrnoException).code === 'string' &&
    typeof (error as NodeJS.ErrnoException).syscall === 'string'
  );
}
