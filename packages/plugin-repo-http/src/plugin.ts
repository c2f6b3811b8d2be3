/**
 * What an HTTP plugin (metrics, a dashboard) gives the application: Koa middleware, placed where it
 * needs to be, and an optional start and stop that run with the server's.
 */
import type { Part } from '@serene/core';
import type { Middleware } from 'koa';

/**
 * A plugin of the HTTP application, listed in `RepoHttpOptions.plugins`. It is started with the
 * application and stopped with it, in reverse order.
 */
export interface HttpPlugin extends Part {
  /**
   * Runs ahead of everything else, error mapping included: it sees every request and the status
   * it finally gets (request metrics).
   */
  outer?: Middleware;
  /**
   * Runs after the error mapping and ahead of the repository files and the API: routes of its own
   * under a path of its own (a dashboard at `/dashboard`). Errors it throws are mapped as the
   * API's are; a request it does not answer goes on with `next()`.
   */
  routes?: Middleware;
}
