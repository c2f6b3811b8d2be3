import type { Knex } from 'knex';

/** One schema migration, kept in code so it runs from `dist/` without a migrations folder. */
export interface StoreMigration {
  /** unique, ordered by name (`0001_...`); never rename one that was released */
  name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/** Name of the table knex records applied migrations in (plus `<name>_lock`). */
export const MIGRATIONS_TABLE = 'serene_migrations';

/**
 * A text column for keys and timestamps. On PostgreSQL it uses the `C` collation so ordering and
 * comparisons are by code point, as on SQLite, whatever the database's locale.
 */
function keyColumn(knex: Knex, table: Knex.CreateTableBuilder, name: string): Knex.ColumnBuilder {
  return isPostgres(knex) ? table.specificType(name, 'text collate "C"') : table.text(name);
}

function isPostgres(knex: Knex): boolean {
  return knex.client.config.client === 'pg';
}

/** The migrations of the store, oldest first. */
export const MIGRATIONS: readonly StoreMigration[] = [
  {
    name: '0001_initial',
    async up(knex) {
      await knex.schema.createTable('package', (table) => {
        keyColumn(knex, table, 'base').primary();
        keyColumn(knex, table, 'added').notNullable();
        // JSON of the source (docs/compatibility.md#sources)
        table.text('source').notNullable();
        table.text('srcinfo');
        table.text('pkgbuild');
        table.boolean('enabled').notNullable();
        table.boolean('clean').notNullable();
        table.boolean('private').notNullable().defaultTo(false);
        table.boolean('dependency').notNullable().defaultTo(false);
        table.text('schedule');
        table.text('prepare');
        // JSON array of makepkg flag names
        table.text('flags').notNullable().defaultTo('[]');
        table.text('built_state').notNullable().defaultTo('init');
        // source state string of the last failed build: not rebuilt on schedule until it changes
        table.text('failed_state');
      });
      await knex.schema.createTable('build', (table) => {
        keyColumn(knex, table, 'package').notNullable();
        keyColumn(knex, table, 'started').notNullable();
        table.primary(['package', 'started']);
        table
          .foreign('package')
          .references('base')
          .inTable('package')
          .onDelete('CASCADE')
          .onUpdate('CASCADE');
        keyColumn(knex, table, 'ended');
        table.text('state').notNullable();
        table.text('progress');
        table.text('fatal');
        table.text('version');
        table.boolean('run_success');
        keyColumn(knex, table, 'run_started');
        keyColumn(knex, table, 'run_ended');
        table.text('reason').notNullable().defaultTo('unknown');
        table.bigInteger('mem_peak');
        table.bigInteger('cpu_user');
        table.bigInteger('cpu_system');
        table.bigInteger('io_tbr');
        table.bigInteger('io_tbw');
        table.index(['state'], 'build_state_index');
      });
      await knex.schema.createTable('build_log', (table) => {
        // the order of the chunks of one log
        table.bigIncrements('id');
        keyColumn(knex, table, 'package').notNullable();
        keyColumn(knex, table, 'started').notNullable();
        table
          .foreign(['package', 'started'])
          .references(['package', 'started'])
          .inTable('build')
          .onDelete('CASCADE')
          .onUpdate('CASCADE');
        // UTF-8 bytes: PostgreSQL text cannot hold U+0000, build output can
        table.binary('chunk').notNullable();
        table.index(['package', 'started', 'id'], 'build_log_build_index');
      });
    },
    async down(knex) {
      await knex.schema.dropTable('build_log');
      await knex.schema.dropTable('build');
      await knex.schema.dropTable('package');
    },
  },
  {
    // the update gate (docs/update-gate.md): policy overrides, trust, accepted and held revisions
    name: '0002_gate',
    async up(knex) {
      await knex.schema.createTable('package_gate', (table) => {
        keyColumn(knex, table, 'base').primary();
        table.foreign('base').references('base').inTable('package').onDelete('CASCADE').onUpdate('CASCADE');
        // JSON of the overrides (`GatePolicyOverrides`)
        table.text('policy').notNullable().defaultTo('{}');
        table.text('inherits_from');
        // JSON (`TrustRecord`)
        table.text('trust');
        table.text('accepted');
        // JSON (`HeldUpdate`)
        table.text('held');
        table.text('approved');
        table.text('rejected');
      });
    },
    async down(knex) {
      await knex.schema.dropTable('package_gate');
    },
  },
  {
    // the architecture a build is for (docs/engines.md#architectures); null for the builds recorded
    // before, which are of the primary architecture (`ARCH`)
    name: '0003_build_arch',
    async up(knex) {
      await knex.schema.alterTable('build', (table) => {
        table.text('arch');
      });
    },
    async down(knex) {
      await knex.schema.alterTable('build', (table) => {
        table.dropColumn('arch');
      });
    },
  },
  {
    // the engine a build ran on (docs/engines.md#architectures); null for the builds recorded before,
    // those that ran on none (cancelled while they waited) and the original's
    name: '0004_build_engine',
    async up(knex) {
      await knex.schema.alterTable('build', (table) => {
        table.text('engine');
      });
    },
    async down(knex) {
      await knex.schema.alterTable('build', (table) => {
        table.dropColumn('engine');
      });
    },
  },
];

/** The knex migration source over {@link MIGRATIONS}. */
export function migrationSource(
  migrations: readonly StoreMigration[] = MIGRATIONS,
): Knex.MigrationSource<StoreMigration> {
  return {
    getMigrations: async () => [...migrations],
    getMigrationName: (migration) => migration.name,
    getMigration: async (migration) => migration,
  };
}
