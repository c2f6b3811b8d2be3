import type { Knex } from 'knex';
import type { Database, RunResult, Statement } from 'sqlite3';

/** How many statements one connection keeps prepared; past it, statements run once and are dropped. */
const MAX_PREPARED = 64;

/**
 * Prepared SQLite statements, kept per connection, for the store's frequent small queries.
 *
 * @remarks Through knex, every query is built, compiled, then prepared, run and finalized by the
 * driver: three trips to the libuv thread pool and most of a query's CPU time. A statement prepared
 * once runs in one trip. The connection comes from knex's pool as for any query, so a statement
 * never runs inside another caller's transaction. Statements MUST be finalized ({@link finalize})
 * before the pool is destroyed: SQLite does not close a connection that has live statements.
 */
export class SqliteStatements {
  readonly #prepared = new WeakMap<Database, Map<string, Statement>>();

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

  async #use<T>(
    db: Knex,
    sql: string,
    execute: (statement: Statement, done: (error: Error | null, value: T) => void) => void,
  ): Promise<T> {
    const connection: Database = await db.client.acquireConnection();
    try {
      let statements = this.#prepared.get(connection);
      if (!statements) {
        statements = new Map();
        this.#prepared.set(connection, statements);
      }
      let statement = statements.get(sql);
      const keep = statement !== undefined || statements.size < MAX_PREPARED;
      statement ??= await prepare(connection, sql);
      if (keep) statements.set(sql, statement);
      try {
        return await new Promise<T>((resolve, reject) =>
          execute(statement, (error, value) => (error ? reject(error) : resolve(value))),
        );
      } finally {
        if (!keep) await finalize(statement);
      }
    } finally {
      await db.client.releaseConnection(connection);
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
