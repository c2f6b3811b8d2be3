import type { DependencyContainer } from 'tsyringe';
import type { Publisher } from './contracts/publisher.js';
import type { Runner } from './contracts/runner.js';
import type { Signer } from './contracts/signer.js';
import type { SourceFactory } from './contracts/source.js';
import type { Store } from './contracts/store.js';
import type { Logger } from './logger.js';

/** A tsyringe injection token that carries the type it resolves to. */
export type Token<T> = symbol & { readonly __type?: T };

/** Creates a typed token with a stable, dotted id (`Symbol.for(id)`). */
export function defineToken<T>(id: string): Token<T> {
  return Symbol.for(id) as Token<T>;
}

/** Resolves a typed token from a container, keeping the type at the call site. */
export function resolve<T>(container: DependencyContainer, token: Token<T>): T {
  return container.resolve<T>(token);
}

/** The tokens of serene's contracts, one per capability. */
export const tokens = {
  logger: defineToken<Logger>('core.logger'),
  store: defineToken<Store>('core.store'),
  publisher: defineToken<Publisher>('core.publisher'),
  sources: defineToken<SourceFactory>('core.sources'),
  runner: defineToken<Runner>('plugin.runner'),
  /** Optional: when nothing is registered, packages are published unsigned. */
  signer: defineToken<Signer>('plugin.signer'),
} as const;
