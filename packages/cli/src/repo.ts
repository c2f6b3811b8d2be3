/**
 * `serene repo add` and `serene repo remove`: repo-add and repo-remove, on serene's native engine.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { AddResult, RepoDatabase, RepoEntry } from '@serene/core';
import type { Command } from 'commander';
import { type CliIo, createMessages, EXIT_OK, type Messages, messagesLogger, reportError } from './io.js';

/** Options of {@link repoAdd}, as repo-add's flags. */
export interface RepoAddOptions {
  /** `-R`: delete the replaced version's package file (and signature) */
  remove?: boolean;
  /** `-n`: skip packages whose version is already in the database */
  new?: boolean;
  /** `-p`: skip packages older than the version in the database */
  preventDowngrade?: boolean;
  /** `-q`: only warnings and errors */
  quiet?: boolean;
  /** how long to wait for another writer's lock, in milliseconds */
  lockTimeoutMs?: number;
}

/** Options of {@link repoRemove}. */
export interface RepoRemoveOptions {
  quiet?: boolean;
  lockTimeoutMs?: number;
}

/**
 * Adds package files to the database `db` (created when missing), as `repo-add` does. Paths are
 * relative to `io.cwd`. Returns the exit code: 0, or 1 after an `==> ERROR:` line, in which case the
 * database is left as it was.
 */
export async function repoAdd(
  db: string,
  packages: readonly string[],
  options: RepoAddOptions,
  io: CliIo,
): Promise<number> {
  const messages = createMessages(io, options.quiet);
  try {
    const database = await openDatabase(db, messages, io, options.lockTimeoutMs);
    const existed = await isFile(database.dbPath);
    const result = await database.add(
      packages.map((file) => toEngine(file, io)),
      { removeOld: options.remove, onlyNew: options.new, preventDowngrade: options.preventDowngrade },
    );
    reportAdd(packages, result, messages, io);
    if (result.added.length > 0 || !existed) {
      messages.msg(`Creating updated database file '${db}'`);
    } else {
      messages.msg(`No packages added, '${db}' is unchanged`);
    }
    return EXIT_OK;
  } catch (error) {
    return reportError(error, messages, io);
  }
}

/**
 * Removes packages by name from the database `db`, as `repo-remove` does (package files stay).
 * An unknown name fails the whole call and changes nothing. Returns the exit code.
 */
export async function repoRemove(
  db: string,
  names: readonly string[],
  options: RepoRemoveOptions,
  io: CliIo,
): Promise<number> {
  const messages = createMessages(io, options.quiet);
  try {
    const database = await openDatabase(db, messages, io, options.lockTimeoutMs);
    const removed = await database.remove(names);
    const byName = new Map(removed.map((entry) => [entry.name, entry]));
    for (const name of new Set(names)) {
      messages.msg(`Searching for package '${name}'...`);
      const entry = byName.get(name);
      if (entry) messages.msg2(`Removing existing entry '${entryDir(entry)}'...`);
    }
    messages.msg(`Creating updated database file '${db}'`);
    return EXIT_OK;
  } catch (error) {
    return reportError(error, messages, io);
  }
}

/** Options of {@link repoSign}. */
export interface RepoSignOptions {
  /** the armoured private key (as the server's `sign_key.asc`) */
  key: string;
  quiet?: boolean;
}

/**
 * Signs what a repository already holds: every package file listed in the database (`FILE.sig`,
 * and `%PGPSIG%` in its entry), then the database and files archives, with `NAME.db.sig` and
 * `NAME.files.sig` links. For a repository published before signing was turned on. The key's
 * password comes from `SIGN_KEY_PASSWORD`, as for the server. Returns the exit code.
 */
export async function repoSign(db: string, options: RepoSignOptions, io: CliIo): Promise<number> {
  const messages = createMessages(io, options.quiet);
  try {
    const { loadOpenPgpSigner } = await import('@serene/plugin-signing');
    const { createFilesystemRepository, InputError } = await import('@serene/core/pacman');
    const signer = await loadOpenPgpSigner({
      keyFile: path.resolve(io.cwd, options.key),
      password: io.env.SIGN_KEY_PASSWORD,
    });
    if (!signer) throw new InputError(`key file '${options.key}' not found`);
    const file = path.resolve(io.cwd, db);
    if (!path.basename(file).endsWith('.db.tar.gz') || !(await isFile(file))) {
      throw new InputError(`'${db}' is not an existing NAME.db.tar.gz database`);
    }
    const repository = createFilesystemRepository({
      dir: path.dirname(file),
      name: path.basename(file).slice(0, -'.db.tar.gz'.length),
      signer,
    });
    const entries = await repository.list();
    await repository.resign!();
    for (const entry of entries) messages.msg2(`Signed '${entry.filename}'`);
    messages.msg(
      `Signed ${entries.length} packages and the database '${db}' with ${signer.signingKeyFingerprint}`,
    );
    return EXIT_OK;
  } catch (error) {
    return reportError(error, messages, io);
  }
}

/** Registers `repo add`, `repo remove` and `repo sign` on the `serene` program. */
export function registerRepoCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const repo = program
    .command('repo')
    .description('manage a local pacman repository database (drop-in for repo-add and repo-remove)');

  repo
    .command('add')
    .description('add package files to a database, replacing older versions (as repo-add)')
    .argument('<db>', 'the database, NAME.db.tar.gz (created when missing)')
    .argument('[packages...]', 'package files to add')
    .option('-R, --remove', "remove the replaced version's package file and signature")
    .option('-n, --new', 'only add packages that are not already in the database')
    .option('-p, --prevent-downgrade', 'do not add packages older than the version in the database')
    .option('-q, --quiet', 'only print warnings and errors')
    .action(async (db: string, packages: string[], options: RepoAddOptions) => {
      setExitCode(await repoAdd(db, packages, options, io));
    });

  repo
    .command('remove')
    .description('remove packages by name from a database (as repo-remove; package files stay)')
    .argument('<db>', 'the database, NAME.db.tar.gz')
    .argument('<names...>', 'package names to remove')
    .option('-q, --quiet', 'only print warnings and errors')
    .action(async (db: string, names: string[], options: RepoRemoveOptions) => {
      setExitCode(await repoRemove(db, names, options, io));
    });

  repo
    .command('sign')
    .description('sign the packages and the database already in a repository (password: SIGN_KEY_PASSWORD)')
    .argument('<db>', 'the database, NAME.db.tar.gz, with its package files beside it')
    .requiredOption('-k, --key <file>', 'the armoured private key, as the server reads sign_key.asc')
    .option('-q, --quiet', 'only print warnings and errors')
    .action(async (db: string, options: RepoSignOptions) => {
      setExitCode(await repoSign(db, options, io));
    });
}

// --- Internal helpers -------------------------------------------------------------------------------

/**
 * Opens the database with the engine, loaded only now: the `serene` commands that do not touch a
 * repository (help, version, the API client) do not pay for loading it.
 */
async function openDatabase(
  db: string,
  messages: Messages,
  io: CliIo,
  lockTimeoutMs: number | undefined,
): Promise<RepoDatabase> {
  const { RepoDatabase } = await import('@serene/core/pacman');
  return RepoDatabase.open(toEngine(db, io), { logger: messagesLogger(messages, io), lockTimeoutMs });
}

/** Prints what an add did, in the order the files were given. */
function reportAdd(packages: readonly string[], result: AddResult, messages: Messages, io: CliIo): void {
  const skipped = new Map(result.skipped.map((skip) => [path.resolve(io.cwd, skip.file), skip.reason]));
  const added = new Map(result.added.map((entry) => [entry.filename, entry]));
  const replaced = new Map(result.replaced.map((entry) => [entry.name, entry]));
  for (const file of packages) {
    const reason = skipped.get(path.resolve(io.cwd, file));
    if (reason !== undefined) {
      messages.warning(`Skipping '${file}': ${reason}`);
      continue;
    }
    const entry = added.get(path.basename(file));
    if (!entry) continue;
    messages.msg(`Adding package '${file}'`);
    const old = replaced.get(entry.name);
    if (!old) continue;
    messages.msg2(`Removing existing entry '${entryDir(old)}'...`);
    for (const deleted of result.deleted) {
      const base = path.basename(deleted);
      if (base === old.filename || base === `${old.filename}.sig`) {
        messages.msg2(`Removing old package file '${display(deleted, io)}'`);
      }
    }
  }
}

/** The path handed to the engine, which resolves against this process's working folder. */
function toEngine(file: string, io: CliIo): string {
  return path.resolve(io.cwd) === process.cwd() ? file : path.resolve(io.cwd, file);
}

/** A path as the user would write it from `io.cwd`. */
function display(file: string, io: CliIo): string {
  const relative = path.relative(io.cwd, file);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

function entryDir(entry: RepoEntry): string {
  return `${entry.name}-${entry.version}`;
}

async function isFile(file: string): Promise<boolean> {
  const stat = await fs.stat(file).catch(() => undefined);
  return stat?.isFile() ?? false;
}
