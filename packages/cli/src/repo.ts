/**
 * `serene repo add` and `serene repo remove`: repo-add and repo-remove, on serene's native engine.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { AddResult, RepoDatabase, RepoEntry, Signer } from '@serene/core';
import type { Command } from 'commander';
import { checkSecretKey, createUserGpgSigner, GpgError, verifySignature } from './gpg.js';
import {
  type CliIo,
  createMessages,
  EXIT_ERROR,
  EXIT_OK,
  EXIT_USAGE,
  type Messages,
  messagesLogger,
  reportError,
} from './io.js';

const SIGN_HELP = `
-s, -k and -v use your GnuPG keyring (GNUPGHOME, else ~/.gnupg) and its agent, as repo-add does:
  serene repo add -s -k 0123ABCD repo.db.tar.gz foo-1.0-1-x86_64.pkg.tar.zst
The archives are signed as NAME.db.tar.gz.sig and NAME.files.tar.gz.sig, with NAME.db.sig and
NAME.files.sig links. Exit codes: 0 success, 1 failure (nothing changed), 2 wrong command line.`;

/** Options that `repo add` and `repo remove` share, as repo-add's and repo-remove's. */
export interface RepoCommonOptions {
  /** `-q`: only warnings and errors */
  quiet?: boolean;
  /** `--nocolor`: no colours even on a terminal */
  nocolor?: boolean;
  /** `-s`: sign the database and files archives with the user's gpg */
  sign?: boolean;
  /** `-k`: the gpg key to sign with (with `-s`) */
  key?: string;
  /** `-v`: verify the current archives' signatures with the user's gpg before changing them */
  verify?: boolean;
  /** how long to wait for another writer's lock, in milliseconds */
  lockTimeoutMs?: number;
}

/** Options of {@link repoAdd}, as repo-add's flags. */
export interface RepoAddOptions extends RepoCommonOptions {
  /** `-R`: delete the replaced version's package file (and signature) */
  remove?: boolean;
  /** `-n`: skip packages whose version is already in the database */
  new?: boolean;
  /** `-p`: skip packages older than the version in the database */
  preventDowngrade?: boolean;
  /** `--include-sigs`: put the packages' `.sig` files into the database (`%PGPSIG%`) */
  includeSigs?: boolean;
}

/** Options of {@link repoRemove}. */
export type RepoRemoveOptions = RepoCommonOptions;

/** A flag of `repo add`/`repo remove`, declared once for commander and for the fast entry. */
export interface RepoFlag {
  /** the option's name in {@link RepoAddOptions} */
  key: keyof RepoAddOptions;
  long: string;
  short?: string;
  /** the name of its value, for flags that take one */
  value?: string;
  description: string;
  /** which commands have it */
  commands: readonly ('add' | 'remove')[];
}

/** The flags, in repo-add's order. */
export const REPO_FLAGS: readonly RepoFlag[] = [
  {
    key: 'new',
    long: 'new',
    short: 'n',
    description: 'only add packages that are not already in the database',
    commands: ['add'],
  },
  {
    key: 'remove',
    long: 'remove',
    short: 'R',
    description: "remove the replaced version's package file and signature",
    commands: ['add'],
  },
  {
    key: 'preventDowngrade',
    long: 'prevent-downgrade',
    short: 'p',
    description: 'do not add packages older than the version in the database',
    commands: ['add'],
  },
  {
    key: 'includeSigs',
    long: 'include-sigs',
    description: "put the packages' .sig files into the database (as repo-add of pacman >= 6.1)",
    commands: ['add'],
  },
  { key: 'nocolor', long: 'nocolor', description: 'no colours in the output', commands: ['add', 'remove'] },
  {
    key: 'quiet',
    long: 'quiet',
    short: 'q',
    description: 'only print warnings and errors',
    commands: ['add', 'remove'],
  },
  {
    key: 'sign',
    long: 'sign',
    short: 's',
    description: "sign the database with the user's GnuPG after the update",
    commands: ['add', 'remove'],
  },
  {
    key: 'key',
    long: 'key',
    short: 'k',
    value: 'key',
    description: 'the gpg key to sign the database with (with -s)',
    commands: ['add', 'remove'],
  },
  {
    key: 'verify',
    long: 'verify',
    short: 'v',
    description: "verify the database's signature before the update",
    commands: ['add', 'remove'],
  },
];

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
  const messages = createMessages(io, options.quiet, useColour(io, options));
  try {
    // gpg checks the key while the engine loads and works
    const signing = startSigning(options, io, messages);
    const database = await openDatabase(db, messages, io, options.lockTimeoutMs, signing?.signer);
    if (options.verify) {
      if (!(await verifyDatabase(database, messages, io))) return EXIT_ERROR;
      // as repo-add: -v with the database alone verifies and changes nothing
      if (packages.length === 0) return EXIT_OK;
    }
    const existed = await isFile(database.dbPath);
    const result = await database.add(
      packages.map((file) => toEngine(file, io)),
      {
        removeOld: options.remove,
        onlyNew: options.new,
        preventDowngrade: options.preventDowngrade,
        includeSignatures: options.includeSigs === true,
      },
    );
    await signing?.ready;
    reportAdd(packages, result, messages, io);
    if (result.added.length > 0 || !existed) {
      messages.msg(`Creating updated database file '${db}'`);
      signing?.report();
    } else {
      messages.msg(`No packages added, '${db}' is unchanged`);
    }
    return EXIT_OK;
  } catch (error) {
    return reportRepoError(error, messages, io);
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
  const messages = createMessages(io, options.quiet, useColour(io, options));
  try {
    const signing = startSigning(options, io, messages);
    const database = await openDatabase(db, messages, io, options.lockTimeoutMs, signing?.signer);
    if (options.verify) {
      if (!(await verifyDatabase(database, messages, io))) return EXIT_ERROR;
      // as repo-remove: -v with the database alone verifies and changes nothing
      if (names.length === 0) return EXIT_OK;
    }
    const removed = await database.remove(names);
    await signing?.ready;
    const byName = new Map(removed.map((entry) => [entry.name, entry]));
    for (const name of new Set(names)) {
      messages.msg(`Searching for package '${name}'...`);
      const entry = byName.get(name);
      if (entry) messages.msg2(`Removing existing entry '${entryDir(entry)}'...`);
    }
    messages.msg(`Creating updated database file '${db}'`);
    signing?.report();
    return EXIT_OK;
  } catch (error) {
    return reportRepoError(error, messages, io);
  }
}

/**
 * Runs `serene repo add|remove` from its arguments (after `add` or `remove`), parsed with node's own
 * `util.parseArgs` from {@link REPO_FLAGS}: the executable takes this way for `serene repo add` and
 * `serene repo remove`, so that neither commander nor the API client is loaded for them. Returns the
 * exit code; a wrong command line is exit 2 with a usage line, as commander's.
 */
export async function runRepoCommand(
  command: 'add' | 'remove',
  args: readonly string[],
  io: CliIo,
): Promise<number> {
  const flags = REPO_FLAGS.filter((flag) => flag.commands.includes(command));
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(
        flags.map((flag) => [
          flag.long,
          { type: flag.value ? 'string' : 'boolean', ...(flag.short ? { short: flag.short } : {}) },
        ]),
      ),
    }) as typeof parsed;
  } catch (error) {
    return usage(command, (error as Error).message, io);
  }
  const options: Record<string, unknown> = {};
  for (const flag of flags) {
    const value = parsed.values[flag.long];
    if (value !== undefined) options[flag.key] = value;
  }
  const [db, ...rest] = parsed.positionals;
  if (db === undefined) return usage(command, "missing required argument 'db'", io);
  // as repo-remove, the database alone is no error: it is rewritten unchanged (or, with -v, verified)
  if (command === 'remove') return repoRemove(db, rest, options as RepoRemoveOptions, io);
  return repoAdd(db, rest, options as RepoAddOptions, io);
}

function usage(command: 'add' | 'remove', message: string, io: CliIo): number {
  io.stderr(`error: ${message.replace(/\. To specify a positional argument.*$/s, '')}\n`);
  io.stderr(
    command === 'add'
      ? 'Usage: serene repo add [options] <db> [packages...]\n'
      : 'Usage: serene repo remove [options] <db> [names...]\n',
  );
  io.stderr(`(serene repo ${command} --help for the options)\n`);
  return EXIT_USAGE;
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

  const add = repo
    .command('add')
    .description('add package files to a database, replacing older versions (as repo-add)')
    .argument('<db>', 'the database, NAME.db.tar.gz (created when missing)')
    .argument('[packages...]', 'package files to add')
    .action(async (db: string, packages: string[], options: RepoAddOptions) => {
      setExitCode(await repoAdd(db, packages, options, io));
    });
  const remove = repo
    .command('remove')
    .description('remove packages by name from a database (as repo-remove; package files stay)')
    .argument('<db>', 'the database, NAME.db.tar.gz')
    .argument('[names...]', 'package names to remove')
    .action(async (db: string, names: string[], options: RepoRemoveOptions) => {
      setExitCode(await repoRemove(db, names, options, io));
    });
  for (const flag of REPO_FLAGS) {
    const spec = `${flag.short ? `-${flag.short}, ` : ''}--${flag.long}${flag.value ? ` <${flag.value}>` : ''}`;
    for (const command of flag.commands) (command === 'add' ? add : remove).option(spec, flag.description);
  }
  for (const command of [add, remove]) command.addHelpText('after', SIGN_HELP);

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
  signer?: Signer,
): Promise<RepoDatabase> {
  const { RepoDatabase } = await import('@serene/core/pacman');
  return RepoDatabase.open(toEngine(db, io), {
    logger: messagesLogger(messages, io),
    lockTimeoutMs,
    signer,
  });
}

/** Colours as repo-add's: when standard error is a terminal, unless `--nocolor` (or `NO_COLOR`). */
function useColour(io: CliIo, options: RepoCommonOptions): boolean {
  return options.nocolor !== true && io.stderrIsTTY === true && !io.env.NO_COLOR;
}

/** What `-s` needs: the user's gpg as the engine's signer, and repo-add's lines about it. */
interface Signing {
  signer: Signer;
  /** the check that the keyring holds the key (rejects with repo-add's message) */
  ready: Promise<void>;
  /** prints the `Signing database ...` lines of what was signed, db first */
  report(): void;
}

/** Starts `-s`: checks the key in the background; undefined without `-s`. */
function startSigning(options: RepoCommonOptions, io: CliIo, messages: Messages): Signing | undefined {
  if (!options.sign) {
    if (options.key !== undefined) messages.warning('-k/--key without -s/--sign signs nothing (as repo-add)');
    return undefined;
  }
  const ready = checkSecretKey(io.env, options.key);
  // observed by the signer, or awaited after the change when nothing was signed
  ready.catch(() => undefined);
  const signed: string[] = [];
  return {
    ready,
    signer: createUserGpgSigner({
      env: io.env,
      key: options.key,
      ready,
      // a staged archive is .tmp.NAME.RANDOM (core's durable writes): report NAME, as repo-add
      onSigned: (file) => signed.push(path.basename(file).replace(/^\.tmp\.(.*)\.[0-9a-f]{8}$/, '$1')),
    }),
    report() {
      const order = (name: string) => (name.includes('.db.') ? 0 : 1);
      for (const name of signed.sort((a, b) => order(a) - order(b))) {
        messages.msg(`Signing database '${name}'...`);
        messages.msg2(`Created signature file '${name}.sig'`);
      }
    },
  };
}

/**
 * `-v`: verifies the signatures of the current archives with the user's gpg, as repo-add (gpg's
 * report is shown); false after an `==> ERROR:` when one is not valid.
 */
async function verifyDatabase(database: RepoDatabase, messages: Messages, io: CliIo): Promise<boolean> {
  for (const file of [database.dbPath, database.filesPath]) {
    if (!(await isFile(file))) continue;
    messages.msg('Verifying database signature...');
    if (!(await isFile(`${file}.sig`))) {
      messages.warning('No existing signature found, skipping verification.');
      continue;
    }
    const { valid, report } = await verifySignature(io.env, file);
    io.stderr(report);
    if (!valid) {
      messages.error('Database signature was NOT valid!');
      return false;
    }
    messages.msg2('Database signature file verified.');
  }
  return true;
}

/** gpg's failures in repo-add's words; everything else as {@link reportError}. */
function reportRepoError(error: unknown, messages: Messages, io: CliIo): number {
  if (error instanceof GpgError) {
    messages.error(error.message);
    return EXIT_ERROR;
  }
  return reportError(error, messages, io);
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
