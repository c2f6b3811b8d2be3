/**
 * @serene/core/pacman: the pacman repository engine alone (package reader, database writer, vercmp,
 * .SRCINFO and dependency strings), without the store, sources or orchestration, so that tools such as
 * `serene repo` load quickly.
 */
export * from '../durable.js';
export * from '../errors.js';
export * from './database.js';
export * from './depend.js';
export * from './desc.js';
export * from './filesystem-repository.js';
export * from './names.js';
export * from './package-reader.js';
export * from './pkginfo.js';
export * from './srcinfo.js';
export * from './types.js';
export * from './vercmp.js';
