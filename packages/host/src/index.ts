/**
 * @serene/host: the serene server. `readConfig` reads the environment once; `startServer` composes
 * the plugins (each contract replaceable through the tsyringe container) and serves.
 */
export * from './cli-package.js';
export * from './config.js';
export * from './logger.js';
export * from './metrics.js';
export * from './server.js';
