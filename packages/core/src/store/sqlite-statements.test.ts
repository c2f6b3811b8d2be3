import knex, { type Knex } from 'knex';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqliteStatements } from './sqlite-statements.js';

describe('SqliteStatements (real SQLite, one pooled connection as the store has)', () => {
  let db: Knex | undefined;
  afterEach(async () => {
    await db?.destroy();
    db = undefined;
  });

  async function open(): Promise<Knex> {
    db = knex({
      client: 'sqlite3',
      connection: { filename: ':memory:' },
      useNullAsDefault: true,
      pool: { min: 1, max: 1 },
    });
    await db.schema.createTable('item', (table) => {
      table.integer('id').primary();
      table.text('name');
    });
    return db;
  }

  it('runs statements asked together in their order, in few holds of the connection', async () => {
    const db = await open();
    const statements = new SqliteStatements();
    const acquire = vi.spyOn(db.client, 'acquireConnection');
    const inserts = Array.from({ length: 200 }, (_, i) =>
      statements.run(db, 'insert into "item" ("id", "name") values (?, ?)', [i, `n${i}`]),
    );
    // asked after the inserts: it sees all of them
    const counted = statements.all<{ count: number }>(db, 'select count(*) as "count" from "item"', []);
    expect(await Promise.all(inserts)).toEqual(Array(200).fill(1));
    expect(await counted).toEqual([{ count: 200 }]);
    // 201 statements in batches of at most 32: 7 holds, not one per statement
    expect(acquire.mock.calls.length).toBeLessThanOrEqual(8);
    await statements.finalize(db);
  });

  it('lets a transaction asked meanwhile have the connection between batches, and fails only the failing statement', async () => {
    const db = await open();
    const statements = new SqliteStatements();
    const first = Array.from({ length: 100 }, (_, i) =>
      statements.run(db, 'insert into "item" ("id", "name") values (?, ?)', [i, 'before']),
    );
    const transaction = db.transaction(async (tx) => {
      await tx('item').insert({ id: 1000, name: 'tx' });
      return tx('item').count({ count: '*' }).first();
    });
    const duplicate = statements.run(db, 'insert into "item" ("id", "name") values (?, ?)', [0, 'again']);
    const after = statements.all<{ name: string }>(db, 'select "name" from "item" where "id" = ?', [1000]);
    await Promise.all(first);
    await expect(duplicate).rejects.toThrow(/UNIQUE/);
    expect(await after).toEqual([{ name: 'tx' }]);
    // the transaction ran after some batches, before the statements asked after it
    expect(Number((await transaction)?.count)).toBeGreaterThan(0);
    await statements.finalize(db);
  });

  it('fails every waiting statement when the pool is gone, and does not hang', async () => {
    const db = await open();
    const statements = new SqliteStatements();
    await statements.finalize(db);
    await db.destroy();
    const result = statements.all(db, 'select 1', []);
    await expect(result).rejects.toThrow();
  });
});
