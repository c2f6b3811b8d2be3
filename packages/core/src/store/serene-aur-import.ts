/**
 * Opening an install of serene-aur as it is: its `serene.db` (made by sqlx migrations: tables
 * `package`, `build`, `_sqlx_migrations`, any of its schema versions) is copied beside itself and then
 * moved into our schema in the same transaction as our migrations, with its log files, so that a
 * crash or an error leaves the original untouched and the next start tries again.
 *
 * @remarks Timestamps of the original are naive UTC text (`YYYY-MM-DD HH:MM:SS[.fraction]`); they
 * become our stored form with every fraction digit kept, so a build keeps its identity (its start
 * time) in the API. See docs/deployment.md, "Moving from serene-aur".
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Knex } from 'knex';
import { InputError, SereneError } from '../errors.js';
import type { Logger } from '../logger.js';
import { parseSrcinfo, srcinfoVersion } from '../pacman/srcinfo.js';
import { parseTimestamp } from './timestamp.js';

/** Where the original kept what belongs to its database (folders beside `serene.db` by default). */
export interface SereneAurImportOptions {
  /** the original's `logs/` (`logs/<base>/<YYYY-MM-DDTHH:MM:SS>.log`) */
  logsDir: string;
  /** the original's `sources/` (its legacy AUR sources carry their version in `.SRCINFO`) */
  sourcesDir: string;
}

/** The table sqlx records its migrations in: only an original database has it. */
export const SQLX_MIGRATIONS_TABLE = '_sqlx_migrations';
/** What the copy of the original database is called, beside it. */
export const SERENE_AUR_BACKUP_SUFFIX = '.serene-aur-backup';

/** The original's tables while the import runs (renamed so that ours can be created). */
const OLD_PACKAGE = 'serene_aur_package';
const OLD_BUILD = 'serene_aur_build';

/** Largest piece of one log kept in one `build_log` row. */
const LOG_CHUNK_BYTES = 1 << 20;

/** What an import did, for the log line. */
export interface SereneAurImportResult {
  packages: number;
  builds: number;
  logs: number;
  /** builds whose package the original no longer had (kept in the backup only) */
  orphanBuilds: number;
}

/** Does the database on `db` hold an original serene-aur schema (not yet imported)? */
export async function isSereneAurDatabase(db: Knex): Promise<boolean> {
  const rows: { name: string }[] = await db.raw(
    "select name from sqlite_master where type = 'table' and name = ?",
    [SQLX_MIGRATIONS_TABLE],
  );
  return rows.length > 0;
}

/**
 * Copies the database on `db` (one consistent snapshot, write-ahead log included) to
 * `<file>.serene-aur-backup`, replacing an older copy only once the new one is complete on disk.
 */
export async function backupSereneAurDatabase(db: Knex, file: string): Promise<string> {
  const backup = `${file}${SERENE_AUR_BACKUP_SUFFIX}`;
  const temporary = `${backup}.tmp`;
  await fs.rm(temporary, { force: true });
  await db.raw('vacuum into ?', [temporary]);
  const handle = await fs.open(temporary, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temporary, backup);
  const dir = await fs.open(path.dirname(backup), 'r');
  try {
    await dir.sync().catch(() => undefined);
  } finally {
    await dir.close();
  }
  return backup;
}

/**
 * First half, before our migrations (inside their transaction): the original's `package` and `build`
 * get out of the way of ours.
 */
export async function setAsideSereneAurTables(trx: Knex.Transaction): Promise<void> {
  // the build table first: renaming `package` rewrites the foreign key of whichever table refers to it
  await trx.raw(`alter table "build" rename to "${OLD_BUILD}"`);
  await trx.raw(`alter table "package" rename to "${OLD_PACKAGE}"`);
}

/**
 * Second half, after our migrations (same transaction): every package and build moved into our
 * tables, the logs of the builds read from the original's files (or its legacy `run_logs` column),
 * the original's tables dropped.
 */
export async function importSereneAurTables(
  trx: Knex.Transaction,
  options: SereneAurImportOptions,
  logger: Logger,
): Promise<SereneAurImportResult> {
  const packageColumns = await columnsOf(trx, OLD_PACKAGE);
  const buildColumns = await columnsOf(trx, OLD_BUILD);
  const packages: Record<string, unknown>[] = await trx(OLD_PACKAGE).select('*').orderBy('base');
  const bases = new Set<string>();
  const migratedState = new Map<string, Record<string, unknown>>();
  for (const old of packages) {
    const base = text(old.base, `package base`);
    const where = `package '${base}'`;
    const source = await sourceJson(old.source, base, options.sourcesDir, logger);
    const row: Record<string, unknown> = {
      base,
      added: timestamp(old.added, `${where}: added`),
      source: JSON.stringify(source),
      srcinfo: optionalText(old.srcinfo, `${where}: srcinfo`),
      pkgbuild: optionalText(old.pkgbuild, `${where}: pkgbuild`),
      enabled: bool(old.enabled, `${where}: enabled`),
      clean: bool(old.clean, `${where}: clean`),
      private: packageColumns.has('private') ? bool(old.private, `${where}: private`) : false,
      dependency: packageColumns.has('dependency') ? bool(old.dependency, `${where}: dependency`) : false,
      schedule: optionalText(old.schedule, `${where}: schedule`),
      prepare: optionalText(old.prepare, `${where}: prepare`),
      flags: flags(old.flags, where),
      // before the original's built_state column, it treated every package as "migrated"
      built_state: packageColumns.has('built_state')
        ? text(old.built_state, `${where}: built_state`)
        : 'migrated',
    };
    if (row.built_state === 'migrated') migratedState.set(base, source);
    await trx('package').insert(row);
    bases.add(base);
  }

  const builds: Record<string, unknown>[] = await trx(OLD_BUILD).select('*').orderBy(['package', 'started']);
  let orphanBuilds = 0;
  let logs = 0;
  const latest = new Map<string, { started: string; state: string }>();
  for (const old of builds) {
    const base = text(old.package, 'build package');
    const startedText = text(old.started, `a build of '${base}': started`);
    const where = `build of '${base}' started at ${startedText}`;
    if (!bases.has(base)) {
      orphanBuilds++;
      continue;
    }
    const started = timestamp(old.started, `${where}: started`);
    const state = text(old.state, `${where}: state`);
    const row: Record<string, unknown> = {
      package: base,
      started,
      ended: optionalTimestamp(old.ended, `${where}: ended`),
      state,
      progress: optionalText(old.progress, `${where}: progress`),
      fatal: optionalText(old.fatal, `${where}: fatal`),
      version: optionalText(old.version, `${where}: version`),
      run_success:
        old.run_success === null || old.run_success === undefined
          ? null
          : bool(old.run_success, `${where}: run_success`),
      run_started: optionalTimestamp(old.run_started, `${where}: run_started`),
      run_ended: optionalTimestamp(old.run_ended, `${where}: run_ended`),
      reason: buildColumns.has('reason') ? text(old.reason, `${where}: reason`) : 'unknown',
    };
    for (const stat of ['mem_peak', 'cpu_user', 'cpu_system', 'io_tbr', 'io_tbw'] as const) {
      row[stat] = buildColumns.has(stat) ? integer(old[stat], `${where}: ${stat}`) : null;
    }
    await trx('build').insert(row);
    const previous = latest.get(base);
    if (!previous || previous.started < started) latest.set(base, { started, state });

    const log =
      typeof old.run_logs === 'string'
        ? Buffer.from(old.run_logs, 'utf8')
        : await readLogFile(options.logsDir, base, started);
    if (log !== undefined) {
      // an empty log is one empty chunk, so that it reads as '' and not as missing
      let offset = 0;
      do {
        await trx('build_log').insert({
          package: base,
          started,
          chunk: log.subarray(offset, offset + LOG_CHUNK_BYTES),
        });
        offset += LOG_CHUNK_BYTES;
      } while (offset < log.length);
      logs++;
    }
  }

  // the original's heuristic for packages from before built_state: a package whose newest build
  // succeeded is taken to be up to date with its source
  for (const [base, source] of migratedState) {
    if (latest.get(base)?.state !== 'success') continue;
    const state = sourceState(source);
    if (state !== undefined) await trx('package').where({ base }).update({ built_state: state });
  }

  await trx.schema.dropTable(OLD_BUILD);
  await trx.schema.dropTable(OLD_PACKAGE);
  await trx.schema.dropTable(SQLX_MIGRATIONS_TABLE);
  return { packages: packages.length, builds: builds.length - orphanBuilds, logs, orphanBuilds };
}

// --- Internal helpers ---

async function columnsOf(trx: Knex.Transaction, table: string): Promise<Set<string>> {
  const rows: { name: string }[] = await trx.raw(`pragma table_info("${table}")`);
  return new Set(rows.map((row) => row.name));
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string')
    throw new InputError(`${what}: expected text, found ${JSON.stringify(value)}`);
  return value;
}

function optionalText(value: unknown, what: string): string | null {
  return value === null || value === undefined ? null : text(value, what);
}

function bool(value: unknown, what: string): boolean {
  if (value === 0 || value === 1 || value === true || value === false) return Boolean(value);
  // SQLite keeps what it was given; sqlx writes 0/1, hand edits may say true/false
  if (value === 'true' || value === 'false') return value === 'true';
  throw new InputError(`${what}: expected a boolean, found ${JSON.stringify(value)}`);
}

function integer(value: unknown, what: string): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  throw new InputError(`${what}: expected an integer, found ${JSON.stringify(value)}`);
}

/** The original's naive UTC text (or RFC 3339 with an offset) in our stored form. */
export function sqlxTimestamp(value: string): string | undefined {
  const trimmed = value.trim();
  const zoned = /(?:[Zz]|[+-]\d{2}:\d{2})$/.test(trimmed) ? trimmed : `${trimmed}Z`;
  return parseTimestamp(zoned);
}

/**
 * A timestamp of the original in our stored form, cut to milliseconds: the API shows a build's start
 * (its identity) in milliseconds, and a build must be found again by what the API shows.
 */
function timestamp(value: unknown, what: string): string {
  const full = typeof value === 'string' ? sqlxTimestamp(value) : undefined;
  const stored = full === undefined ? undefined : `${full.slice(0, 23)}000000Z`;
  if (stored === undefined) {
    throw new InputError(
      `${what}: expected a date-time like '2024-05-01 12:34:56.123456789', found ${JSON.stringify(value)}`,
    );
  }
  return stored;
}

function optionalTimestamp(value: unknown, what: string): string | null {
  return value === null || value === undefined ? null : timestamp(value, what);
}

function flags(value: unknown, where: string): string {
  if (value === null || value === undefined) return '[]';
  const raw = text(value, `${where}: flags`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new InputError(`${where}: flags is not JSON: ${raw}`, { cause: error });
  }
  if (!Array.isArray(parsed) || !parsed.every((flag) => typeof flag === 'string')) {
    throw new InputError(`${where}: flags is not a JSON array of names: ${raw}`);
  }
  return JSON.stringify(parsed);
}

/** The log file the original wrote for a build: named by its start in whole seconds. */
async function readLogFile(logsDir: string, base: string, started: string): Promise<Buffer | undefined> {
  const file = path.join(logsDir, base, `${started.slice(0, 19)}.log`);
  try {
    return await fs.readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SereneError(`could not read the log file ${file}`, { cause: error });
  }
}

type Json = Record<string, unknown>;

/** The source JSON in the current form: current rows unchanged, pre-0.4.1 rows converted. */
async function sourceJson(value: unknown, base: string, sourcesDir: string, logger: Logger): Promise<Json> {
  const raw = text(value, `package '${base}': source`);
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new InputError(`package '${base}': source is not JSON`, { cause: error });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new InputError(`package '${base}': source is not a JSON object`);
  }
  const source = json as Json;
  if ('inner' in source) {
    // the current form; a field serde could leave out (the optional srcinfo) or that older versions
    // did not write gets the value the original assumes
    const inner = source.inner as Json;
    return {
      ...source,
      devel: source.devel ?? false,
      srcinfo_override: source.srcinfo_override ?? false,
      srcinfo: source.srcinfo ?? null,
      devel_revisions: source.devel_revisions ?? {},
      inner:
        typeof inner === 'object' && inner !== null && inner.type === 'AurSource'
          ? { ...inner, mirror: inner.mirror ?? false }
          : inner,
    };
  }
  if (typeof source.type !== 'string') {
    throw new InputError(`package '${base}': source has neither 'inner' nor a legacy 'type'`);
  }
  return legacySource(source, base, sourcesDir, logger);
}

const revisionsOf = (value: unknown): Record<string, string> => {
  const revisions: Record<string, string> = {};
  if (typeof value === 'object' && value !== null) {
    for (const [url, commit] of Object.entries(value))
      if (typeof commit === 'string') revisions[url] = commit;
  }
  return revisions;
};

/** A pre-0.4.1 source (tagged by `type` at the top) in the current form, as the original converts it. */
async function legacySource(legacy: Json, base: string, sourcesDir: string, logger: Logger): Promise<Json> {
  const where = `package '${base}': legacy source ${String(legacy.type)}`;
  const wrap = (inner: Json, devel: boolean, revisions: Record<string, string>): Json => ({
    devel,
    srcinfo_override: false,
    srcinfo: null,
    devel_revisions: revisions,
    inner,
  });
  const gitInner = async (): Promise<Json> => {
    const repository = text(legacy.repository, `${where}: repository`);
    const lastCommit = text(legacy.last_commit, `${where}: last_commit`);
    const aur = /^https:\/\/aur\.archlinux\.org\/(.+)\.git$/.exec(repository);
    if (!aur) return { type: 'GitSource', repository, last_commit: lastCommit };
    const aurBase = aur[1] as string;
    let version = '';
    try {
      version = srcinfoVersion(
        parseSrcinfo(await fs.readFile(path.join(sourcesDir, base, '.SRCINFO'), 'utf8')),
      );
    } catch (error) {
      // the next update finds the AUR's version different and pulls
      logger.warn('legacy AUR source without a readable .SRCINFO: its version is taken as unknown', {
        base,
        error: (error as Error).message,
      });
    }
    return { type: 'AurSource', base: aurBase, version, mirror: false };
  };
  switch (legacy.type) {
    case 'SereneCliSource':
      // the original ends with a non-devel CLI source (it resets devel when it builds the CLI)
      return wrap({ type: 'CliSource', state: text(legacy.last_commit, `${where}: last_commit`) }, false, {});
    case 'NormalSource':
      return wrap(await gitInner(), false, {});
    case 'DevelGitSource':
      return wrap(await gitInner(), true, revisionsOf(legacy.last_source_commits));
    case 'SingleSource':
      return wrap(
        { type: 'RawSource', pkgbuild: text(legacy.pkgbuild, `${where}: pkgbuild`) },
        legacy.devel === true,
        revisionsOf(legacy.last_source_commits),
      );
    default:
      throw new InputError(`${where}: unknown legacy source type`);
  }
}

/** The state string of a source JSON (docs/compatibility.md#sources), or undefined for kinds we do not know. */
function sourceState(source: Json): string | undefined {
  const inner = source.inner as Json | undefined;
  let state: string | undefined;
  switch (inner?.type) {
    case 'AurSource':
      state = typeof inner.version === 'string' ? inner.version : undefined;
      break;
    case 'GitSource':
      state = typeof inner.last_commit === 'string' ? inner.last_commit : undefined;
      break;
    case 'RawSource':
      state =
        typeof inner.pkgbuild === 'string'
          ? createHash('sha256').update(inner.pkgbuild, 'utf8').digest('base64')
          : undefined;
      break;
    case 'CliSource':
      state = typeof inner.state === 'string' ? inner.state : undefined;
      break;
  }
  if (state === undefined || source.devel !== true) return state;
  const revisions = revisionsOf(source.devel_revisions);
  const keys = Object.keys(revisions).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return state + keys.map((key) => revisions[key]).join('');
}
