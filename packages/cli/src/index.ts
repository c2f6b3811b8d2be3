/**
 * @serene/cli: the `serene` command, and its commands for programmatic use.
 */
export { createProgram, runCli, VERSION } from './cli.js';
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
