/**
 * @serene/cli: the `serene` command, and its commands for programmatic use.
 */

export { ApiClient, ApiError, ConnectionError, type EventStream, parseEventStream } from './api.js';
export { createProgram, runCli, VERSION } from './cli.js';
export { type ClientContext, connect, reportClientError, UsageError } from './client.js';
export {
  authorizedSecretsLine,
  type ClientConfig,
  type ClientPaths,
  ConfigError,
  clientPaths,
  loadSecret,
  readConfig,
  secretToken,
} from './config.js';
export {
  type CliIo,
  createMessages,
  EXIT_ERROR,
  EXIT_OK,
  EXIT_USAGE,
  type Messages,
  processIo,
  reportError,
} from './io.js';
export {
  type RepoAddOptions,
  type RepoRemoveOptions,
  registerRepoCommand,
  repoAdd,
  repoRemove,
} from './repo.js';
export type * from './wire.js';
