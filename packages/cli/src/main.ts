#!/usr/bin/env node
/**
 * The `serene` executable: runs {@link runCli} on this process's arguments.
 */
import { runCli } from './cli.js';
import { isDebug, processIo } from './io.js';

const io = processIo();
runCli(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // runCli reports every error of a command itself; this is a bug in the command line
    const text = error instanceof Error ? error.message : String(error);
    io.stderr(`==> ERROR: unexpected error: ${text}\n`);
    if (isDebug(io) && error instanceof Error && error.stack) io.stderr(`${error.stack}\n`);
    process.exitCode = 1;
  },
);
