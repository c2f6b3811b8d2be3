// The fast set for the inner loop (`npm run test:fast`, under two minutes on a quiet two-core
// machine): the whole suite except the files below, which build real packages in Docker or with
// makepkg, build images, run the server as a process end to end, fill real tmpfs disks, drive
// Chromium, run pacman against signed repositories, or spend their time waiting on processes. `npm test` runs everything. A file that takes
// seconds because of one heavy test is split (`database-killed.test.ts` beside `database.test.ts`),
// so that the rest of it stays in the fast set.
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
  // builds serene-cli with esbuild and makepkg, and installs it with pacman
  'packages/host/src/cli-package.test.ts',
  // the server signing through a real gpg-agent, restarted, and pacman checking the signatures
  'packages/host/src/agent-signing.test.ts',
  // publishing and signing at every fill level of a real tmpfs
  'packages/core/src/pacman/disk-full.test.ts',
  'packages/cli/src/repo-disk-full.test.ts',
  // a writer process killed at four moments, some 8 s of waiting
  'packages/core/src/pacman/database-killed.test.ts',
  // 10,000 forks of /usr/bin/vercmp
  'packages/core/src/pacman/vercmp-corpus.test.ts',
  // writes and reads packages of 256 and 512 MiB
  'packages/core/src/pacman/package-reader-memory.test.ts',
  // the dashboard in a real Chromium
  'packages/plugin-dashboard/src/dashboard.browser.test.ts',
  // pacman syncing and installing from signed repositories, with pacman-key and gpg keyrings
  // (the signers themselves are tested in the fast set)
  'packages/plugin-signing/src/pacman.test.ts',
  'packages/cli/src/repo-gpg.test.ts',
  'packages/cli/src/sign.test.ts',
];

export default mergeConfig(base, defineConfig({ test: { exclude: [...configDefaults.exclude, ...SLOW] } }));
