// The fast set for the inner loop (`npm run test:fast`): the whole suite except the suites that
// build real packages in Docker or with makepkg, build images, or run the server as a process end to
// end. `npm test` runs everything.
import { configDefaults, defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

/** The slow suites, each with what makes it slow. */
export const SLOW = [
  // builds in containers on the Docker Engine (the runner conformance suite)
  'packages/plugin-docker/src/*.engine.test.ts',
  // the server and the CLI as processes, pacman, makepkg and Docker end to end; the image build
  'test/e2e/**',
  // makepkg builds on this machine, and the examples' servers as processes
  'examples/**',
  'packages/core/src/testing/makepkg.test.ts',
];

export default mergeConfig(base, defineConfig({ test: { exclude: [...configDefaults.exclude, ...SLOW] } }));
