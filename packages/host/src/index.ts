/**
 * @serene/host: the serene server. `readConfig` reads the environment once; `startServer` makes
 * the parts, composes them with `createSerene` of `@serene/core` and serves.
 */
export * from './cli-package.js';
export * from './config.js';
export * from './logger.js';
export * from './metrics.js';
export * from './server.js';
