import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Knex } from 'knex';
import type { GateRecord } from '../contracts/gate.js';
import {
  type BuildChanges,
  type BuildRecord,
  type BuildState,
  type BuildTime,
  type GateFilter,
  type LatestBuildPage,
  type PackageChanges,
  type PackagePage,
  type PackageRecord,
  type Store,
  type StoreOperations,
  UNFINISHED_BUILD_STATES,
} from '../contracts/store.js';
import { ConflictError, InputError, NotFoundError, UnavailableError } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';
import { MIGRATIONS_TABLE, migrationSource } from './migrations.js';
import {
  type BuildRow,
  buildColumns,
  buildFromRow,
  buildRow,
  type GateRow,
  gateFromRow,
  gateRow,
  type PackageRow,
  packageColumns,
  packageFromRow,
  packageRow,
} from './rows.js';
import {
  backupSereneAurDatabase,
  importSereneAurTables,
  isSereneAurDatabase,
  type SereneAurImportOptions,
  setAsideSereneAurTables,
} from './serene-aur-import.js';
import { SqliteStatements } from './sqlite-statements.js';
import { formatTimestamp, toStoredTimestamp } from './timestamp.js';

/** The knex factory (the `knex` package's default export). */
export type KnexFactory = typeof import('knex').default;

/** Options of {@link createKnexStore}. Give `url` or `filename`. */
export interface KnexStoreOptions {
  /**
   * A `postgres://` or `postgresql://` connection URL selects PostgreSQL. Anything else names a
   * SQLite file, optionally prefixed with `sqlite:` (`sqlite:///var/lib/serene/serene.db`,
   * `sqlite::memory:`).
   */
  url?: string | undefined;
  /** A SQLite database file, created (with its folder) if missing; `:memory:` for a throw-away one. */
  filename?: string | undefined;
  /** Receives the store's own lines and knex's warnings. @default a logger that drops everything */
  logger?: Logger | undefined;
  /**
   * The knex factory, for tests that wrap it. @default the `knex` package, imported when the store
   * opens: who never opens a knex store never loads knex, sqlite3 or pg
   */
  lib?: KnexFactory | undefined;
  /**
   * Where the logs and sources of a serene-aur install are, when `filename` is its `serene.db`: it is
   * then copied to `serene.db.serene-aur-backup` and imported at `open()`.
   * @default the folders `logs` and `sources` beside the database file
   */
  sereneAur?: SereneAurImportOptions | undefined;
}

/** The `name` of a knex store on SQLite. */
export const SQLITE_STORE_NAME = 'sqlite';
/** The `name` of a knex store on PostgreSQL. */
export const POSTGRES_STORE_NAME = 'postgres';

const POSTGRES_URL = /^postgres(ql)?:\/\//i;
const OTHER_URL = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * Creates the default {@link Store}: knex over SQLite (a file, WAL journal, foreign keys on) or over
 * PostgreSQL when given a connection URL. Does no I/O until `open()`, which runs the migrations.
 *
 * @remarks Build logs are kept in the database (table `build_log`, one row per appended chunk), so
 * they are deleted with their build in the same transaction, work the same on both engines and need
 * no shared disk. Timestamps are kept as fixed-width RFC 3339 text with nine fraction digits (see
 * `StoredTimestamp`).
 */
export function createKnexStore(options: KnexStoreOptions): Store {
  return new KnexStore(
    { ...knexConfig(options), sereneAur: options.sereneAur },
    options.logger ?? createNoopLogger(),
    options.lib,
  );
}

interface StoreConfig {
  name: string;
  config: Knex.Config;
  /** SQLite file whose folder `open()` creates */
  file?: string;
  sereneAur?: SereneAurImportOptions | undefined;
}

function knexConfig(options: KnexStoreOptions): StoreConfig {
  if (options.url !== undefined && options.filename !== undefined) {
    throw new InputError('give the store a url or a filename, not both');
  }
  const url = options.url;
  if (url !== undefined && POSTGRES_URL.test(url)) {
    return {
      name: POSTGRES_STORE_NAME,
      config: { client: 'pg', connection: url, pool: { min: 0, max: 10 } },
    };
  }
  let filename = options.filename;
  if (url !== undefined) {
    if (OTHER_URL.test(url) && !/^sqlite:/i.test(url)) {
      throw new InputError(`unsupported database url '${url.replace(/\/\/[^@/]*@/, '//***@')}'`);
    }
    filename = url.replace(/^sqlite:(\/\/)?/i, '');
  }
  if (filename === undefined || filename === '') {
    throw new InputError('the store needs a url or a filename');
  }
  const memory = filename === ':memory:';
  return {
    name: SQLITE_STORE_NAME,
    ...(memory ? {} : { file: filename }),
    config: {
      client: 'sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      // One connection: SQLite has one writer anyway, and `:memory:` lives in its connection.
      pool: {
        min: 1,
        max: 1,
        afterCreate: (
          connection: { exec(sql: string, done: (error: Error | null) => void): void },
          done: (error: Error | null, connection: unknown) => void,
        ) => {
          // synchronous=NORMAL is safe in WAL mode: a crash loses no committed data, a power cut
          // at most the last commits.
          connection.exec(
            'PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;',
            (error) => done(error, connection),
          );
        },
      },
    },
  };
}

// --- Internal helpers ---

type ConstraintKind = 'foreign' | 'unique';

/** Which constraint a driver error reports (pg SQLSTATE codes, sqlite3 messages). */
function constraintOf(error: unknown): ConstraintKind | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code === '23503') return 'foreign';
  if (code === '23505') return 'unique';
  if (code === 'SQLITE_CONSTRAINT' && typeof message === 'string') {
    if (message.includes('FOREIGN KEY')) return 'foreign';
    if (message.includes('UNIQUE') || message.includes('PRIMARY KEY')) return 'unique';
  }
  return undefined;
}

/** Runs a write, turning constraint violations into the contract's errors. */
async function write<T>(
  run: () => Promise<T>,
  errors: { [K in ConstraintKind]?: (cause: unknown) => Error },
): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const kind = constraintOf(error);
    const make = kind && errors[kind];
    throw make ? make(error) : error;
  }
}

function checkCount(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InputError(`${what} must be a non-negative integer, not ${value}`);
  }
}

const buildName = (base: string, started: string): string => `build of ${base} started at ${started}`;

/** Quotes a column name of ours (never user input) for SQL. */
const quote = (column: string): string => `"${column}"`;

/** The condition on table `build` that keeps each package's newest build. */
const NEWEST_BUILD =
  '"build"."started" = (select max("b2"."started") from "build" as "b2" where "b2"."package" = "build"."package")';

const byKey =
  <T>(key: (value: T) => string) =>
  (a: T, b: T): number => {
    const x = key(a);
    const y = key(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };

// --- Operations ---

/** The data operations over one knex connection pool or transaction. */
class KnexOperations implements StoreOperations {
  /** the tail of the append queue of each build, keyed by `package \0 started` */
  readonly #appends = new Map<string, Promise<void>>();

  constructor(private readonly connection?: Knex) {}

  /** The knex to run queries on; the root store overrides it to check that it is open. */
  protected db(): Knex {
    return this.connection!;
  }

  /**
   * Prepared statements for the frequent small queries (the orchestrator's state writes), when the
   * engine is SQLite and the operations run outside a transaction; otherwise they go through knex.
   */
  protected statements(): SqliteStatements | undefined {
    return undefined;
  }

  /** Waits until every queued log append has run. */
  async settle(): Promise<void> {
    while (this.#appends.size > 0) await Promise.allSettled([...this.#appends.values()]);
  }

  /**
   * Keeps the rows of a page (`PackagePage`, `LatestBuildPage`) of `query` by the base column
   * `column` (quoted, may be qualified), in its order: one range read of the index of the table's
   * primary key, whose first column it is. Bases compare as bytes: SQLite's default `BINARY`, and
   * on PostgreSQL the `C` collation, which the key columns have (migration 0001) and which is named
   * here as well, so that the order never depends on the database's locale.
   */
  #keyset<T extends Knex.QueryBuilder>(query: T, column: string, page: LatestBuildPage): T {
    const key = this.db().client.config.client === 'pg' ? `${column} collate "C"` : column;
    if (page.after !== undefined) query.whereRaw(`${key} > ?`, [page.after]);
    if (page.through !== undefined) query.whereRaw(`${key} <= ?`, [page.through]);
    query.orderByRaw(key);
    if (page.limit !== undefined) query.limit(page.limit);
    return query;
  }

  // --- packages ---

  async listPackages(page?: PackagePage): Promise<PackageRecord[]> {
    const db = this.db();
    if (page === undefined) {
      const rows: PackageRow[] = await db('package').select('*');
      return rows.map(packageFromRow).sort(byKey((record) => record.base));
    }
    checkCount(page.limit, 'limit');
    if (page.limit === 0) return [];
    const rows: PackageRow[] = await this.#keyset(db('package').select('*'), '"base"', page);
    return rows.map(packageFromRow);
  }

  async countPackages(): Promise<number> {
    const row = await this.db()('package').count({ count: '*' }).first();
    return Number(row?.count ?? 0);
  }

  async getPackage(base: string): Promise<PackageRecord | undefined> {
    const db = this.db();
    const statements = this.statements();
    const row: PackageRow | undefined = statements
      ? (await statements.all<PackageRow>(db, 'select * from "package" where "base" = ? limit 1', [base]))[0]
      : await db('package').where({ base }).first();
    return row && packageFromRow(row);
  }

  async insertPackage(record: PackageRecord): Promise<void> {
    const db = this.db();
    await write(() => db('package').insert(packageRow(record)), {
      unique: (cause) => new ConflictError(`package ${record.base} already exists`, { cause }),
    });
  }

  async putPackage(record: PackageRecord): Promise<void> {
    await this.db()('package').insert(packageRow(record)).onConflict('base').merge();
  }

  async updatePackage(base: string, changes: PackageChanges): Promise<void> {
    const db = this.db();
    const columns = packageColumns(changes);
    const names = Object.keys(columns);
    const statements = this.statements();
    const count =
      names.length === 0
        ? Number((await db('package').where({ base }).count({ count: '*' }).first())?.count ?? 0)
        : statements
          ? await statements.run(
              db,
              `update "package" set ${names.map((name) => `${quote(name)} = ?`).join(', ')} where "base" = ?`,
              [...Object.values(columns), base],
            )
          : await db('package').where({ base }).update(columns);
    if (count === 0) throw new NotFoundError(`package ${base} does not exist`);
  }

  async deletePackage(base: string): Promise<boolean> {
    return (await this.db()('package').where({ base }).del()) > 0;
  }

  // --- update gate ---

  async getGate(base: string): Promise<GateRecord | undefined> {
    const row: GateRow | undefined = await this.db()('package_gate').where({ base }).first();
    return row && gateFromRow(row);
  }

  async listGates(filter?: GateFilter): Promise<GateRecord[]> {
    const query = this.db()('package_gate').select('*');
    if (filter?.heldOnly) query.whereNotNull('held');
    const rows: GateRow[] = await query;
    return rows.map(gateFromRow).sort(byKey((record) => record.base));
  }

  async putGate(record: GateRecord): Promise<void> {
    const db = this.db();
    await write(() => db('package_gate').insert(gateRow(record)).onConflict('base').merge(), {
      foreign: (cause) => new NotFoundError(`package ${record.base} does not exist`, { cause }),
    });
  }

  // --- builds ---

  async insertBuild(record: BuildRecord): Promise<void> {
    const db = this.db();
    const row = buildRow(record);
    const statements = this.statements();
    const names = Object.keys(row);
    const insert = async (): Promise<void> => {
      if (statements) {
        await statements.run(
          db,
          `insert into "build" (${names.map(quote).join(', ')}) values (${names.map(() => '?').join(', ')})`,
          Object.values(row),
        );
      } else {
        await db('build').insert(row);
      }
    };
    await write(insert, {
      foreign: (cause) => new NotFoundError(`package ${record.package} does not exist`, { cause }),
      unique: (cause) =>
        new ConflictError(`a ${buildName(record.package, String(row.started))} already exists`, { cause }),
    });
  }

  async updateBuild(base: string, started: Date, changes: BuildChanges): Promise<void> {
    const db = this.db();
    const key = { package: base, started: formatTimestamp(started) };
    const columns = buildColumns(changes);
    const names = Object.keys(columns);
    const statements = this.statements();
    const count =
      names.length === 0
        ? Number((await db('build').where(key).count({ count: '*' }).first())?.count ?? 0)
        : statements
          ? await statements.run(
              db,
              `update "build" set ${names.map((name) => `${quote(name)} = ?`).join(', ')} where "package" = ? and "started" = ?`,
              [...Object.values(columns), key.package, key.started],
            )
          : await db('build').where(key).update(columns);
    if (count === 0) throw new NotFoundError(`there is no ${buildName(base, key.started)}`);
  }

  async listBuilds(base: string, limit?: number): Promise<BuildRecord[]> {
    if (limit !== undefined) checkCount(limit, 'limit');
    const db = this.db();
    if (limit === 0) return [];
    const statements = this.statements();
    // a package's builds are read for every GET /package/{name} and each change of the kept list
    if (statements) {
      const rows = await statements.all<BuildRow>(
        db,
        limit === undefined
          ? 'select * from "build" where "package" = ? order by "started" desc'
          : 'select * from "build" where "package" = ? order by "started" desc limit ?',
        limit === undefined ? [base] : [base, limit],
      );
      return rows.map(buildFromRow);
    }
    const query = db('build').where({ package: base }).orderBy('started', 'desc');
    const rows: BuildRow[] = await (limit === undefined ? query : query.limit(limit));
    return rows.map(buildFromRow);
  }

  async getLatestBuild(base: string): Promise<BuildRecord | undefined> {
    const statements = this.statements();
    const row: BuildRow | undefined = statements
      ? (
          await statements.all<BuildRow>(
            this.db(),
            'select * from "build" where "package" = ? order by "started" desc limit 1',
            [base],
          )
        )[0]
      : await this.db()('build').where({ package: base }).orderBy('started', 'desc').first();
    return row && buildFromRow(row);
  }

  async listLatestBuilds(page?: LatestBuildPage): Promise<BuildRecord[]> {
    if (page?.limit !== undefined) checkCount(page.limit, 'limit');
    const query = this.db()('build').whereRaw(NEWEST_BUILD);
    if (page === undefined) {
      const rows: BuildRow[] = await query;
      return rows.map(buildFromRow).sort(byKey((record) => record.package));
    }
    if (page.limit === 0) return [];
    const rows: BuildRow[] = await this.#keyset(query, '"build"."package"', page);
    return rows.map(buildFromRow);
  }

  async countLatestBuilds(): Promise<Partial<Record<BuildState['state'], number>>> {
    const rows: { state: BuildState['state']; count: number | string }[] = await this.db()('build')
      .whereRaw(NEWEST_BUILD)
      .groupBy('state')
      .select('state')
      .count({ count: '*' });
    return Object.fromEntries(rows.map((row) => [row.state, Number(row.count)]));
  }

  async listRecentBuilds(limit: number, before?: Date, base?: string): Promise<BuildRecord[]> {
    checkCount(limit, 'limit');
    if (limit === 0) return [];
    const query = this.db()('build').orderBy([
      { column: 'started', order: 'desc' },
      { column: 'package', order: 'asc' },
    ]);
    if (before) query.where('started', '<', toStoredTimestamp(before));
    if (base !== undefined) query.where({ package: base });
    const rows: BuildRow[] = await query.limit(limit);
    return rows.map(buildFromRow);
  }

  async getBuildByIndex(base: string, index: number): Promise<BuildRecord | undefined> {
    checkCount(index, 'build index');
    const row: BuildRow | undefined = await this.db()('build')
      .where({ package: base })
      .orderBy('started', 'asc')
      .offset(index)
      .first();
    return row && buildFromRow(row);
  }

  async getBuild(base: string, started: BuildTime): Promise<BuildRecord | undefined> {
    const db = this.db();
    const row: BuildRow | undefined = await db('build')
      .where({ package: base, started: toStoredTimestamp(started) })
      .first();
    return row && buildFromRow(row);
  }

  async countBuilds(base: string): Promise<number> {
    const row = await this.db()('build').where({ package: base }).count({ count: '*' }).first();
    return Number(row?.count ?? 0);
  }

  async listUnfinishedBuilds(): Promise<BuildRecord[]> {
    const rows: BuildRow[] = await this.db()('build')
      .whereIn('state', UNFINISHED_BUILD_STATES)
      .orderBy([
        { column: 'started', order: 'asc' },
        { column: 'package', order: 'asc' },
      ]);
    return rows.map(buildFromRow);
  }

  // --- logs ---

  appendLog(base: string, started: Date, chunk: string): Promise<void> {
    let db: Knex;
    let stored: string;
    try {
      db = this.db();
      stored = formatTimestamp(started);
    } catch (error) {
      return Promise.reject(error);
    }
    const statements = this.statements();
    const key = `${base}\u0000${stored}`;
    const previous = this.#appends.get(key) ?? Promise.resolve();
    const next = previous.then(() =>
      write(
        async () => {
          const row = { package: base, started: stored, chunk: Buffer.from(chunk, 'utf8') };
          if (statements) {
            await statements.run(
              db,
              'insert into "build_log" ("package", "started", "chunk") values (?, ?, ?)',
              [row.package, row.started, row.chunk],
            );
          } else {
            await db('build_log').insert(row);
          }
        },
        { foreign: (cause) => new NotFoundError(`there is no ${buildName(base, stored)}`, { cause }) },
      ),
    );
    // The queue goes on after a failed append; the failure belongs to its own caller.
    const tail = next.catch(() => {});
    this.#appends.set(key, tail);
    void tail.then(() => {
      if (this.#appends.get(key) === tail) this.#appends.delete(key);
    });
    return next;
  }

  async readLog(base: string, started: BuildTime): Promise<string | undefined> {
    const db = this.db();
    const rows: { chunk: Buffer }[] = await db('build_log')
      .select('chunk')
      .where({ package: base, started: toStoredTimestamp(started) })
      .orderBy('id', 'asc');
    if (rows.length === 0) return undefined;
    return Buffer.concat(rows.map((row) => row.chunk)).toString('utf8');
  }

  // --- retention ---

  async pruneBuilds(before: Date): Promise<number> {
    const db = this.db();
    return db('build')
      .where('started', '<', formatTimestamp(before))
      .whereNotIn('state', UNFINISHED_BUILD_STATES)
      .whereRaw(
        '"started" < (select max("b2"."started") from "build" as "b2" where "b2"."package" = "build"."package")',
      )
      .del();
  }

  // --- transactions ---

  async transaction<T>(work: (tx: StoreOperations) => Promise<T>): Promise<T> {
    return this.db().transaction(async (trx) => {
      const tx = new KnexOperations(trx);
      try {
        return await work(tx);
      } finally {
        // appends the work did not await still belong to the transaction
        await tx.settle();
      }
    });
  }
}

// --- Store ---

class KnexStore extends KnexOperations implements Store {
  readonly name: string;
  readonly #config: StoreConfig;
  readonly #logger: Logger;
  readonly #lib: KnexFactory | undefined;
  #knex: Knex | undefined;
  readonly #statements: SqliteStatements | undefined;
  #opening: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(config: StoreConfig, logger: Logger, lib: KnexFactory | undefined) {
    super();
    this.name = config.name;
    this.#config = config;
    this.#logger = logger;
    this.#lib = lib;
    this.#statements = config.name === SQLITE_STORE_NAME ? new SqliteStatements() : undefined;
  }

  protected override statements(): SqliteStatements | undefined {
    return this.#statements;
  }

  protected override db(): Knex {
    if (this.#closing) throw new UnavailableError('store is closed');
    if (!this.#knex) throw new UnavailableError('store is not open');
    return this.#knex;
  }

  async open(): Promise<void> {
    if (this.#closing) throw new UnavailableError('store is closed');
    this.#opening ??= this.#open().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    });
    await this.#opening;
  }

  async #open(): Promise<void> {
    if (this.#config.file) await fs.mkdir(path.dirname(path.resolve(this.#config.file)), { recursive: true });
    const logger = this.#logger;
    const lib = this.#lib ?? (await import('knex')).default;
    const db = lib({
      ...this.#config.config,
      log: {
        warn: (message: unknown) => logger.warn(`knex: ${String(message)}`),
        error: (message: unknown) => logger.error(`knex: ${String(message)}`),
        deprecate: (message: unknown) => logger.warn(`knex: ${String(message)}`),
        debug: (message: unknown) => logger.debug(`knex: ${String(message)}`),
      },
    });
    try {
      const original = this.#config.file !== undefined && (await isSereneAurDatabase(db));
      let sereneAur: SereneAurImportOptions | undefined;
      if (original) {
        const file = path.resolve(this.#config.file!);
        const backup = await backupSereneAurDatabase(db, file);
        logger.warn('this is the database of a serene-aur install: importing it (a copy of it is kept)', {
          backup,
        });
        sereneAur = this.#config.sereneAur ?? {
          logsDir: path.join(path.dirname(file), 'logs'),
          sourcesDir: path.join(path.dirname(file), 'sources'),
        };
      }
      const [, applied] = (await db.migrate.latest({
        migrationSource: migrationSource(),
        tableName: MIGRATIONS_TABLE,
        // the import runs inside the one transaction knex gives all pending migrations: the
        // original's tables are set aside before ours are made and moved into them after
        ...(sereneAur && {
          beforeAll: async (trx: Knex) => {
            if (!trx.isTransaction) {
              throw new UnavailableError('the serene-aur import needs the migrations in one transaction');
            }
            await setAsideSereneAurTables(trx as Knex.Transaction);
          },
          afterAll: async (trx: Knex) => {
            const result = await importSereneAurTables(trx as Knex.Transaction, sereneAur, logger);
            logger.info('imported the serene-aur database', { ...result });
          },
        }),
      })) as [number, string[]];
      logger.info('store opened', { engine: this.name, migrations: applied });
    } catch (error) {
      await db.destroy();
      throw error;
    }
    if (this.#closing) {
      await db.destroy();
      throw new UnavailableError('store is closed');
    }
    this.#knex = db;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#opening?.catch(() => {});
      await this.settle();
      const db = this.#knex;
      this.#knex = undefined;
      if (db && this.#statements) await this.#statements.finalize(db).catch(() => {});
      await db?.destroy();
    })();
    return this.#closing;
  }
}
