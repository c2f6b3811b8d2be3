/**
 * The `serene` command line: parses arguments and dispatches to the subcommands.
 */
import { Command, CommanderError } from 'commander';
import { type ClientTuning, DEFAULT_TUNING, reportClientError } from './client.js';
import { registerCompletionsCommand } from './completions.js';
import { registerInfoCommand } from './info.js';
import { type CliIo, EXIT_OK, EXIT_USAGE, processIo } from './io.js';
import { registerPackageCommands } from './packages.js';
import { registerQueueCommands } from './queue.js';
import { registerRepoCommand } from './repo.js';
import { registerReviewCommands } from './review.js';
import { registerServerCommands } from './server.js';
import { VERSION } from './version.js';

export { VERSION };

const PROGRAM_HELP = `
The server comes from $XDG_CONFIG_HOME/serene.yml (url: https://...) or --server; this machine's
secret is $XDG_DATA_HOME/serene/secret.txt (see \`serene host secret\`).

Exit codes: 0 success; 1 failure (an error of the server, an unreachable server, no configuration,
and with --listen/--install a build that did not succeed); 2 wrong command line.`;

/**
 * Builds the `serene` program. Actions report their exit code through `setExitCode`; commander's
 * own exits (help, version, usage errors) throw a `CommanderError` instead of exiting.
 */
export function createProgram(
  io: CliIo,
  setExitCode: (code: number) => void,
  tuning: ClientTuning = DEFAULT_TUNING,
): Command {
  const program = new Command('serene')
    .description('serene: a build server for Arch Linux packages')
    .version(VERSION, '-V, --version', 'print the version')
    .option('-s, --server <url>', 'the server to talk to (instead of the one in serene.yml)')
    .helpOption('-h, --help', 'print this help')
    .helpCommand(false)
    .showHelpAfterError()
    // --server goes before the command: after it, -s is the command's own flag (add -s, logs -s)
    .enablePositionalOptions()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .addHelpText('after', PROGRAM_HELP)
    .exitOverride();
  // subcommands inherit the output, exit and help settings above (they are created after them)
  registerPackageCommands(program, io, setExitCode, tuning);
  registerQueueCommands(program, io, setExitCode);
  registerInfoCommand(program, io, setExitCode);
  registerServerCommands(program, io, setExitCode);
  registerRepoCommand(program, io, setExitCode);
  registerReviewCommands(program, io, setExitCode);
  // completions reads the whole program when it runs: commands registered anywhere are in it
  registerCompletionsCommand(program, io, setExitCode, (error) => reportClientError(error, io));
  return program;
}

/**
 * Runs the `serene` command with `argv` (the arguments after the program name) and returns its
 * exit code: 0 on success, 1 when the command failed, 2 when the command line is wrong.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo = processIo(),
  tuning: ClientTuning = DEFAULT_TUNING,
): Promise<number> {
  let exitCode = EXIT_OK;
  const program = createProgram(
    io,
    (code) => {
      exitCode = code;
    },
    tuning,
  );
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
