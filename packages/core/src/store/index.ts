/** The default `Store`: knex over SQLite or PostgreSQL, and the timestamp form it keeps. */
export * from './knex-store.js';
export {
  isSereneAurDatabase,
  SERENE_AUR_BACKUP_SUFFIX,
  type SereneAurImportOptions,
  SQLX_MIGRATIONS_TABLE,
  sqlxTimestamp,
} from './serene-aur-import.js';
export {
  formatTimestamp,
  fromStoredTimestamp,
  parseTimestamp,
  type StoredTimestamp,
  toStoredTimestamp,
} from './timestamp.js';
