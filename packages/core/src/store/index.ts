/** The default `Store`: knex over SQLite or PostgreSQL, and the timestamp form it keeps. */
export * from './knex-store.js';
export {
  formatTimestamp,
  fromStoredTimestamp,
  parseTimestamp,
  type StoredTimestamp,
  toStoredTimestamp,
} from './timestamp.js';
