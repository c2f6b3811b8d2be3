/**
 * The one place where errors become HTTP statuses (STYLE P7): named errors of core map to the
 * original's statuses, and every error body is plain text, as the original's.
 */
import {
  AuthenticationError,
  BlockedError,
  formatErrorChain,
  InputError,
  type Logger,
  NotAllowedError,
  NotFoundError,
  StaleRevisionError,
  UnavailableError,
} from '@serene/core';
import type { Middleware } from 'koa';

/** Status by error name, for errors whose class comes from another copy of core. */
const STATUS_BY_NAME: Readonly<Record<string, number>> = {
  InputError: 400,
  InvalidPackageError: 400,
  InvalidDatabaseError: 400,
  AuthenticationError: 401,
  NotAllowedError: 403,
  NotFoundError: 404,
  PayloadTooLargeError: 413,
  // the repository (or the store) had no room to write: nothing was changed
  DiskFullError: 507,
  // beyond the original: cancelling a package that has no build queued or running
  NotRunningError: 409,
  UnavailableError: 503,
  // no Docker Engine answers (`@serene/plugin-docker`): the server cannot serve this now, and will
  // as soon as the engine is back
  DockerUnreachableError: 503,
  // the AUR did not answer, or answered wrong: a bad gateway, not our own failure (before `status`,
  // which on these errors is the AUR's answer, not ours)
  AurUnreachableError: 502,
  AurRpcError: 502,
  // the update gate: a review answered for a revision that is no longer held; a block list refuses
  StaleRevisionError: 409,
  BlockedError: 403,
  // the original answers a locked package ("cannot build now, X is currently in a running build
  // session") and a failed dependency resolution with 500
  ConflictError: 500,
  LockedError: 500,
  DependencyError: 500,
};

/** A request body over the size limit (413). */
export class PayloadTooLargeError extends Error {
  override readonly name = 'PayloadTooLargeError';
  readonly status = 413;
}

/** An error that carries its HTTP status (method not allowed, ranges, and the like). */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/**
 * The HTTP status of an error. A failure whose cause is an unavailability (no Docker Engine while
 * generating a `.SRCINFO`, say) is a 503 too: the server cannot do it now and can once it is back.
 */
export function statusOf(error: unknown): number {
  const own = ownStatusOf(error);
  if (own !== 500) return own;
  for (let cause = (error as Error)?.cause, depth = 0; cause !== undefined && depth < 16; depth++) {
    const status = ownStatusOf(cause);
    // caused by an unavailability (503) or by the AUR failing (502): that status, with the chain
    if (status === 503 || status === 502) return status;
    cause = (cause as Error)?.cause;
  }
  return own;
}

/** The status of an error by its own class, name or `status`. */
function ownStatusOf(error: unknown): number {
  if (error instanceof StaleRevisionError) return 409;
  if (error instanceof BlockedError) return 403;
  if (error instanceof InputError) return 400;
  if (error instanceof AuthenticationError) return 401;
  if (error instanceof NotAllowedError) return 403;
  if (error instanceof NotFoundError) return 404;
  if (error instanceof UnavailableError) return 503;
  if (error instanceof Error) {
    const byName = STATUS_BY_NAME[error.name];
    if (byName !== undefined) return byName;
    // errors of Koa and the router (http-errors) and our HttpError carry their status
    const status =
      (error as { status?: unknown; statusCode?: unknown }).status ??
      (error as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599)
      return status;
  }
  return 500;
}

/**
 * The error middleware, first in the chain: answers with the status of the error and a plain-text
 * body, the whole cause chain for 500 (as the original), else the message (a named error names its
 * cause once). Logs 5xx only, with the chain; messages never hold secrets (auth errors do not repeat
 * what was sent).
 */
export function errorMiddleware(logger: Logger): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (error) {
      const status = statusOf(error);
      // 4xx, the server's own 503 and a gateway's 502 say their message; other failures their whole
      // cause chain
      const message =
        status >= 500 && ownStatusOf(error) !== 503 && ownStatusOf(error) !== 502
          ? formatErrorChain(error)
          : error instanceof Error
            ? error.message
            : String(error);
      if (status >= 500) {
        logger.error('request failed', {
          method: ctx.method,
          path: ctx.path,
          status,
          error: formatErrorChain(error),
        });
      }
      if (ctx.res.headersSent || !ctx.writable) {
        // a streamed response broke off half way: nothing more can be said to this client
        ctx.res.destroy();
        return;
      }
      ctx.response.remove('Content-Disposition');
      ctx.response.remove('Content-Range');
      ctx.response.remove('ETag');
      ctx.response.remove('Last-Modified');
      if (error instanceof HttpError)
        for (const [name, value] of Object.entries(error.headers)) ctx.set(name, value);
      const allow = (error as { headers?: { Allow?: unknown } }).headers?.Allow;
      if (typeof allow === 'string') ctx.set('Allow', allow);
      ctx.status = status;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = message;
    }
  };
}
