export * from './build-logs.js';
export * from './lifecycle.js';
export * from './serene.js';
