/**
 * @serene/plugin-repo-http: the pacman repository and the REST API of serene over Koa, wire-compatible
 * with serene-aur's CLI and pacman: repository files (ranges, conditional requests, listing),
 * the API routes, authentication by `authorized_secrets`, webhooks, live logs over SSE, and an
 * OpenAPI 3.1 document.
 */
export { createRepoHttp, NO_SIGNING_KEY_MESSAGE, type RepoHttp } from './app.js';
export {
  AuthorizedSecrets,
  AuthorizedSecretsError,
  type AuthorizedSecretsOptions,
  checkAuthorizedSecretsFile,
  parseAuthorizedSecrets,
  secretToken,
  webhookSecret,
} from './auth.js';
export { DEFAULT_BODY_LIMIT } from './body.js';
export { HttpError, PayloadTooLargeError, statusOf } from './errors.js';
export { createHttpListener, type HttpListener, type HttpListenerOptions } from './listener.js';
export {
  changeFrames,
  frame,
  LiveLogs,
  type LiveLogsOptions,
  legacyFrame,
  logFrames,
  PING_FRAME,
  pingFrames,
} from './live-logs.js';
export { openApiDocument } from './openapi.js';
export type { RepoHttpOptions } from './options.js';
export type { HttpPlugin } from './plugin.js';
export {
  contentTypeOf,
  parseRange,
  RepositoryFiles,
  type RepositoryFilesOptions,
} from './repository-files.js';
export * from './schemas.js';
export { buildInfo, formatTime, packageInfo, packagePeek } from './wire.js';
