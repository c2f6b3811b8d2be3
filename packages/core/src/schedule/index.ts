export * from './cron.js';
export * from './scheduler.js';
