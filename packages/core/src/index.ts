/**
 * @serene/core: the domain, the contracts and the native pacman repository engine of serene.
 */
import 'reflect-metadata';

export * from './composition/index.js';
export * from './contracts/gate.js';
export * from './contracts/publisher.js';
export * from './contracts/runner.js';
export * from './contracts/signer.js';
export * from './contracts/source.js';
export * from './contracts/store.js';
export * from './durable.js';
export * from './errors.js';
export * from './gate/index.js';
export * from './logger.js';
export * from './orchestration/index.js';
export * from './packages/service.js';
export * from './pacman/database.js';
export * from './pacman/depend.js';
export * from './pacman/desc.js';
export * from './pacman/filesystem-repository.js';
export * from './pacman/srcinfo.js';
export * from './pacman/types.js';
export * from './pacman/vercmp.js';
export * from './schedule/index.js';
export * from './signing/gpg-agent-signer.js';
export * from './signing/gpg-signer.js';
export * from './sources/index.js';
export * from './store/index.js';
export * from './tokens.js';
