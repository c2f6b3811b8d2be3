/**
 * Package sources: the AUR RPC client, git, the AUR, git and raw sources, the source wrapper with the
 * original's JSON, devel revisions and the AUR dependency walker.
 */
export * from './aur-client.js';
export * from './aur-dependencies.js';
export * from './aur-source.js';
export * from './devel.js';
export * from './environment.js';
export * from './git.js';
export * from './git-source.js';
export * from './package-source.js';
export * from './raw-source.js';
export * from './source-factory.js';
