/**
 * An install of serene-aur as its server leaves it, written from the facts in docs/deployment.md
 * ("Moving from serene-aur"): `serene.db` at one of its schema versions (sqlx's migrations table
 * included), `logs/<base>/<YYYY-MM-DDTHH:MM:SS>.log`, `sources/<base>/`. For tests of the import.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import knex, { type Knex } from 'knex';

/**
 * The schema versions of the original, oldest first: each step is what one of its migrations did
 * (first the two tables, then flags, dependency, build reason, built_state, the package version
 * dropped, private, build stats).
 */
export const SERENE_AUR_SCHEMA_STEPS: readonly { version: number; name: string; sql: readonly string[] }[] = [
  {
    version: 20240210163236,
    name: 'package',
    sql: [
      `CREATE TABLE IF NOT EXISTS package (
        base VARCHAR NOT NULL PRIMARY KEY, added DATETIME NOT NULL, source VARCHAR NOT NULL,
        srcinfo VARCHAR, pkgbuild VARCHAR, version VARCHAR, enabled BOOLEAN NOT NULL,
        clean BOOLEAN NOT NULL, schedule VARCHAR, prepare VARCHAR)`,
    ],
  },
  {
    version: 20240210164401,
    name: 'build',
    sql: [
      `CREATE TABLE IF NOT EXISTS build (
        package VARCHAR NOT NULL, started DATETIME NOT NULL, ended DATETIME, state VARCHAR NOT NULL,
        progress VARCHAR, fatal VARCHAR, version VARCHAR, run_success BOOLEAN, run_logs VARCHAR,
        run_started DATETIME, run_ended DATETIME,
        PRIMARY KEY (package, started), FOREIGN KEY (package) REFERENCES package(base) ON DELETE CASCADE)`,
    ],
  },
  { version: 20240306195926, name: 'makepkg flags', sql: ['ALTER TABLE package ADD COLUMN flags VARCHAR'] },
  {
    version: 20240913150735,
    name: 'dependency',
    sql: ['ALTER TABLE package ADD COLUMN dependency BOOLEAN NOT NULL DEFAULT false'],
  },
  {
    version: 20240917122808,
    name: 'build reason',
    sql: [`ALTER TABLE build ADD COLUMN reason VARCHAR NOT NULL DEFAULT "unknown"`],
  },
  {
    version: 20241004212454,
    name: 'built state',
    sql: [`ALTER TABLE package ADD COLUMN built_state VARCHAR NOT NULL DEFAULT "migrated"`],
  },
  { version: 20241007180807, name: 'remove version', sql: ['ALTER TABLE package DROP COLUMN version'] },
  {
    version: 20250418161813,
    name: 'private',
    sql: ['ALTER TABLE package ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE'],
  },
  {
    version: 20260207012716,
    name: 'cgroup stats',
    sql: ['mem_peak', 'cpu_user', 'cpu_system', 'io_tbr', 'io_tbw'].map(
      (column) => `ALTER TABLE build ADD COLUMN ${column} INTEGER`,
    ),
  },
];

/** A row of the original's `package` or `build` table, column name to value as SQLite keeps it. */
export type SereneAurRow = Record<string, string | number | null>;

/** What {@link createSereneAurInstall} writes. */
export interface SereneAurInstallSpec {
  /** how many of {@link SERENE_AUR_SCHEMA_STEPS} are applied @default all */
  steps?: number;
  packages?: SereneAurRow[];
  builds?: SereneAurRow[];
  /** files below the install folder (`logs/a/2024-05-01T12:00:00.log`, `sources/a/.SRCINFO`) */
  files?: Record<string, string>;
}

/** Opens a SQLite file as the original does (WAL, foreign keys on), without our store. */
export function openSqlite(file: string): Knex {
  return knex({
    client: 'sqlite3',
    connection: { filename: file },
    useNullAsDefault: true,
    pool: {
      min: 1,
      max: 1,
      afterCreate: (
        connection: { exec(sql: string, done: (error: Error | null) => void): void },
        done: (error: Error | null, connection: unknown) => void,
      ) =>
        connection.exec('PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL;', (error) =>
          done(error, connection),
        ),
    },
  });
}

/** Writes an install of the original into `dir` (`dir/serene.db`, `dir/logs`, ...); returns the database file. */
export async function createSereneAurInstall(dir: string, spec: SereneAurInstallSpec = {}): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const file = path.join(dir, 'serene.db');
  const db = openSqlite(file);
  try {
    // sqlx's own bookkeeping table
    await db.raw(`CREATE TABLE IF NOT EXISTS _sqlx_migrations (
      version BIGINT PRIMARY KEY, description TEXT NOT NULL,
      installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL,
      checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)`);
    for (const step of SERENE_AUR_SCHEMA_STEPS.slice(0, spec.steps ?? SERENE_AUR_SCHEMA_STEPS.length)) {
      for (const sql of step.sql) await db.raw(sql);
      await db('_sqlx_migrations').insert({
        version: step.version,
        description: step.name,
        success: 1,
        checksum: Buffer.alloc(48, step.version % 251),
        execution_time: 1000,
      });
    }
    for (const row of spec.packages ?? []) await db('package').insert(row);
    for (const row of spec.builds ?? []) await db('build').insert(row);
  } finally {
    await db.destroy();
  }
  for (const [name, content] of Object.entries(spec.files ?? {})) {
    const target = path.join(dir, name);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.writeFile(target, content);
  }
  return file;
}

/** Every row of a table, sorted, for comparing a database before and after. */
export async function dumpTable(file: string, table: string): Promise<Record<string, unknown>[]> {
  const db = openSqlite(file);
  try {
    const rows: Record<string, unknown>[] = await db(table).select('*');
    return rows.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  } finally {
    await db.destroy();
  }
}

/** The tables of a SQLite file. */
export async function tablesOf(file: string): Promise<string[]> {
  const db = openSqlite(file);
  try {
    const rows: { name: string }[] = await db.raw(
      "select name from sqlite_master where type = 'table' order by name",
    );
    return rows.map((row) => row.name);
  } finally {
    await db.destroy();
  }
}
