/**
 * The `serene` command line: parses arguments and dispatches to the subcommands.
 */
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { type CliIo, EXIT_OK, EXIT_USAGE, processIo } from './io.js';
import { registerRepoCommand } from './repo.js';

/** The version of this package. */
export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string })
  .version;

/**
 * Builds the `serene` program. Actions report their exit code through `setExitCode`; commander's
 * own exits (help, version, usage errors) throw a `CommanderError` instead of exiting.
 */
export function createProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('serene')
    .description('serene: a build server for Arch Linux packages')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .helpCommand(false)
    .showHelpAfterError()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();
  // subcommands inherit the output, exit and help settings above (they are created after them)
  registerRepoCommand(program, io, setExitCode);
  return program;
}

/**
 * Runs the `serene` command with `argv` (the arguments after the program name) and returns its
 * exit code: 0 on success, 1 when the command failed, 2 when the command line is wrong.
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let exitCode = EXIT_OK;
  const program = createProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // --help and --version succeed; everything else commander stops at is a usage error
    return error.code === 'commander.helpDisplayed' || error.code === 'commander.version'
      ? EXIT_OK
      : EXIT_USAGE;
  }
  return exitCode;
}
