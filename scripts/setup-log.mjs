// Output of the test set-up: one line per step on the terminal, everything the steps run (apt,
// debootstrap, image builds, initdb) in .cache/setup.log, so the terminal shows progress and the log
// the details. Lines name a step and its outcome, never a password.
import { spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CACHE, REPO, SETUP_LOG } from './clone.mjs';

/** The log file as the terminal lines name it (relative to the clone). */
export const LOG = path.relative(REPO, SETUP_LOG);

/** Starts a new log (the whole set-up run calls this once). */
export function startLog() {
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(SETUP_LOG, `serene test set-up, ${new Date().toISOString()}\n`);
}

/** Prints one line of progress (and records it in the log). */
export function say(scope, message) {
  process.stderr.write(`${scope}: ${message}\n`);
  mkdirSync(CACHE, { recursive: true });
  appendFileSync(SETUP_LOG, `== ${scope}: ${message}\n`);
}

/**
 * Runs a program with its output appended to the log; returns spawnSync's result (status, error).
 * `options.env` and `options.cwd` are passed on.
 */
export function logged(program, args, options = {}) {
  mkdirSync(CACHE, { recursive: true });
  const fd = openSync(SETUP_LOG, 'a');
  try {
    appendFileSync(fd, `$ ${program} ${args.join(' ')}\n`);
    return spawnSync(program, args, { ...options, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
}
