#!/usr/bin/env node
// The server's entry point: configuration from the environment, the composed server, and a
// shutdown on SIGTERM/SIGINT that stops taking requests, records running builds as cancelled and
// closes the store. A second signal exits at once.
import { formatErrorChain } from '@serene/core';
import { readConfig } from './config.js';
import { startServer } from './server.js';

async function main(): Promise<void> {
  let config: ReturnType<typeof readConfig>;
  try {
    config = readConfig(process.env);
  } catch (error) {
    process.stderr.write(`serene: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const server = await startServer({ config });
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      server.logger.warn('second signal: exiting now', { signal });
      process.exit(130);
    }
    server.logger.info('signal received', { signal });
    server.close().then(
      () => process.exit(0),
      (error) => {
        process.stderr.write(`serene: shutdown failed: ${formatErrorChain(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error) => {
  process.stderr.write(`serene: could not start: ${formatErrorChain(error)}\n`);
  process.exit(1);
});
