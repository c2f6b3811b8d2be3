#!/usr/bin/env node
/**
 * The serene server with its runner swapped: builds run with makepkg on this machine (as the
 * unprivileged user `serene-build`) instead of in Docker containers. Everything else is the
 * host's default, configured from the environment as usual.
 *
 *   npm run build && DATA_DIR=./data-local node examples/custom-runner/dist/serve.js
 */
import * as path from 'node:path';
import { readConfig, startServer } from '@serene/host';
import { createLocalRunner } from './local-runner.js';

const config = readConfig();
const server = await startServer({
  config,
  parts: { runner: createLocalRunner({ workDir: path.join(config.dataDir, 'local-builds') }) },
});
process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
process.once('SIGINT', () => void server.close().then(() => process.exit(0)));
