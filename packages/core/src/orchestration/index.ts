export * from './events.js';
export * from './limits.js';
export * from './orchestrator.js';
export * from './resolve.js';
export * from './sync-databases.js';
