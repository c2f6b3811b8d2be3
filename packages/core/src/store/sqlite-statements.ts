import type { Knex } from 'knex';
import type { Database, RunResult, Statement } from 'sqlite3';

/** How many statements one connection keeps prepared; past it, statements run once and are dropped. */
const MAX_PREPARED = 64;

/**
 * Statements run in one hold of the connection at most, before it goes back to the pool: a
 * transaction waiting for it gets its turn after so many.
 */
const MAX_BATCH = 32;

/** A statement waiting for the connection. */
interface Queued {
  sql: string;
  execute: (statement: Statement, done: (error: Error | null, value: unknown) => void) => void;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Prepared SQLite statements, kept per connection, for the store's frequent small queries.
 *
 * @remarks Through knex, every query is built, compiled, then prepared, run and finalized by the
 * driver: three trips to the libuv thread pool and most of a query's CPU time. A statement prepared
 * once runs in one trip. The connection comes from knex's pool as for any query, so a statement
 * never runs inside another caller's transaction. Statements waiting together run in one hold of
 * the connection (up to {@link MAX_BATCH}), in the order they were asked: each acquire from the
 * pool costs a pending operation with its own timer and promises, which for a build session of
 * thousands of packages was an eighth of all the server allocated (docs/benchmarks.md, issue 16).
 * Statements MUST be finalized ({@link finalize}) before the pool is destroyed: SQLite does not
 * close a connection that has live statements.
 */
export class SqliteStatements {
  readonly #prepared = new WeakMap<Database, Map<string, Statement>>();
  /** statements waiting for the connection, per pool */
  readonly #queues = new WeakMap<Knex, { items: Queued[]; draining: boolean }>();

  /** Runs a write; resolves how many rows it changed. */
  run(db: Knex, sql: string, params: readonly unknown[]): Promise<number> {
    return this.#use(db, sql, (statement, done) =>
      statement.run(params, function (this: RunResult, error: Error | null) {
        done(error, error ? 0 : this.changes);
      }),
    );
  }

  /** Runs a query; resolves its rows. */
  all<T>(db: Knex, sql: string, params: readonly unknown[]): Promise<T[]> {
    return this.#use(db, sql, (statement, done) =>
      statement.all<T>(params, (error: Error | null, rows: T[]) => done(error, rows)),
    );
  }

  /** Finalizes the statements of the pool's connection. */
  async finalize(db: Knex): Promise<void> {
    const connection: Database = await db.client.acquireConnection();
    try {
      const statements = this.#prepared.get(connection);
      this.#prepared.delete(connection);
      await Promise.all([...(statements?.values() ?? [])].map(finalize));
    } finally {
      await db.client.releaseConnection(connection);
    }
  }

  // --- Internal helpers ---

  #use<T>(
    db: Knex,
    sql: string,
    execute: (statement: Statement, done: (error: Error | null, value: T) => void) => void,
  ): Promise<T> {
    let queue = this.#queues.get(db);
    if (!queue) {
      queue = { items: [], draining: false };
      this.#queues.set(db, queue);
    }
    const waiting = queue;
    const promise = new Promise<unknown>((resolve, reject) =>
      waiting.items.push({ sql, execute: execute as Queued['execute'], resolve, reject }),
    );
    if (!queue.draining) void this.#drain(db, queue);
    return promise as Promise<T>;
  }

  /** Runs the queued statements, a batch per hold of the connection, until none is left. */
  async #drain(db: Knex, queue: { items: Queued[]; draining: boolean }): Promise<void> {
    queue.draining = true;
    try {
      while (queue.items.length > 0) {
        let connection: Database;
        try {
          connection = await db.client.acquireConnection();
        } catch (error) {
          // no connection (the pool is destroyed, or timed out): every waiting statement fails
          for (const item of queue.items.splice(0)) item.reject(error);
          return;
        }
        try {
          for (const item of queue.items.splice(0, MAX_BATCH)) {
            try {
              item.resolve(await this.#run(connection, item));
            } catch (error) {
              item.reject(error);
            }
          }
        } finally {
          await db.client.releaseConnection(connection);
        }
      }
    } finally {
      queue.draining = false;
    }
  }

  async #run(connection: Database, item: Queued): Promise<unknown> {
    let statements = this.#prepared.get(connection);
    if (!statements) {
      statements = new Map();
      this.#prepared.set(connection, statements);
    }
    let statement = statements.get(item.sql);
    const keep = statement !== undefined || statements.size < MAX_PREPARED;
    statement ??= await prepare(connection, item.sql);
    if (keep) statements.set(item.sql, statement);
    try {
      return await new Promise<unknown>((resolve, reject) =>
        item.execute(statement, (error, value) => (error ? reject(error) : resolve(value))),
      );
    } finally {
      if (!keep) await finalize(statement);
    }
  }
}

function prepare(connection: Database, sql: string): Promise<Statement> {
  return new Promise((resolve, reject) => {
    const statement = connection.prepare(sql, (error: Error | null) =>
      error ? reject(error) : resolve(statement),
    );
  });
}

function finalize(statement: Statement): Promise<void> {
  return new Promise((resolve) => statement.finalize(() => resolve()));
}
