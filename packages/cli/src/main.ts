#!/usr/bin/env node
/**
 * The `serene` executable: runs {@link runCli} on this process's arguments.
 */
import { runCli } from './cli.js';
import { processIo } from './io.js';

const io = processIo();
runCli(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // runCli reports every error of a command itself; this is a bug in the command line
    const debug = process.env.SERENE_DEBUG !== undefined && process.env.SERENE_DEBUG !== '0';
    const text = error instanceof Error ? error.message : String(error);
    io.stderr(`==> ERROR: unexpected error: ${text}\n`);
    if (debug && error instanceof Error && error.stack) io.stderr(`${error.stack}\n`);
    process.exitCode = 1;
  },
);
