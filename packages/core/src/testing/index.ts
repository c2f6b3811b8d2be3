/**
 * @serene/core/testing: the conformance suites every implementation of a contract runs, and the
 * real-tool helpers they use (pacman sandboxes, gpg homes, packages).
 */
export * from './gpg.js';
export * from './instant-runner.js';
export * from './makepkg.js';
export * from './pacman.js';
export * from './publisher-suite.js';
export * from './random.js';
export * from './runner-suite.js';
export * from './serene-aur-install.js';
export * from './setup.js';
export * from './signer-suite.js';
export * from './store-suite.js';
export * from './synthetic-package.js';
export * from './tmpfs.js';
