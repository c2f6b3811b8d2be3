#!/usr/bin/env node
/**
 * The `serene` executable. `serene repo add|remove` go straight to the repository commands (no
 * command-line library, no API client: what a drop-in for repo-add is timed by); everything else
 * runs {@link runCli} on this process's arguments.
 */
import { isDebug, processIo } from './io.js';

const io = processIo();
const argv = process.argv.slice(2);
const [first, verb] = argv;
const direct =
  first === 'repo' &&
  (verb === 'add' || verb === 'remove') &&
  !argv.includes('-h') &&
  !argv.includes('--help');

const run: Promise<number> = direct
  ? import('./repo.js').then(({ runRepoCommand }) => runRepoCommand(verb, argv.slice(2), io))
  : import('./cli.js').then(({ runCli }) => runCli(argv, io));

run.then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // the commands report their errors themselves: this is a bug in the command line
    const text = error instanceof Error ? error.message : String(error);
    io.stderr(`==> ERROR: unexpected error: ${text}\n`);
    if (isDebug(io) && error instanceof Error && error.stack) io.stderr(`${error.stack}\n`);
    process.exitCode = 1;
  },
);
