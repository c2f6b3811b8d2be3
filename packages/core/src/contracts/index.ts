/**
 * @serene/core/contracts: the light entry for whoever implements a contract (a `Runner`, a
 * `Signer`, a `Store`, a `Publisher`, a source): the contract types, the named errors, the logger
 * and the lifecycle `Part`. It loads nothing native and no store driver.
 */
export * from '../composition/lifecycle.js';
export * from '../errors.js';
export * from '../logger.js';
export * from './publisher.js';
export * from './runner.js';
export * from './signer.js';
export * from './source.js';
export * from './store.js';
