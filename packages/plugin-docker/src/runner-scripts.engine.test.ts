// The runner image's scripts (packages/plugin-docker/runner/scripts) on the local runner image and a
// real Docker Engine: the working copy of the scripts is mounted over the image's, so the test runs
// what the next image build would contain.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TEST_RUNNER_IMAGE } from '../../../scripts/clone.mjs';

// this clone's runner image (scripts/clone.mjs), as the set-up builds it: not the machine-wide
// serene-runner:local, which a fresh machine (CI) does not have
const IMAGE = TEST_RUNNER_IMAGE;
const SCRIPTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../runner/scripts');
const engineReady = spawnSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' }).status === 0;
if (!engineReady && process.env.CI === 'true') {
  throw new Error(`no Docker Engine or no ${IMAGE} (node scripts/setup-docker.mjs)`);
}

/** Runs `script` with bash in a throw-away runner container whose /app scripts are the working copy. */
function inRunner(script: string): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(
    'docker',
    [
      'run',
      '--rm',
      '--name',
      `serene-dropin-scripts-${process.pid}`,
      '--network',
      'none',
      '-v',
      `${SCRIPTS}/prelude.sh:/app/prelude.sh:ro`,
      '--entrypoint',
      'bash',
      IMAGE,
      '-c',
      script,
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe.skipIf(!engineReady)(
  'runner image scripts on a real engine (skipped without the engine or image)',
  () => {
    it("empties pacman's package cache (which --noconfirm alone keeps) and sets the original's process limit", () => {
      const result = inRunner(`
      sudo mkdir -p /var/cache/pacman/pkg
      sudo touch /var/cache/pacman/pkg/kept-1-1-any.pkg.tar.zst /var/cache/pacman/pkg/other-2-1-x86_64.pkg.tar.zst
      sudo pacman -Scc --noconfirm > /dev/null 2>&1 || true
      echo "after --noconfirm: $(ls /var/cache/pacman/pkg | wc -l)"
      source /app/prelude.sh
      serene_clean_cache
      echo "after serene_clean_cache: $(ls /var/cache/pacman/pkg | wc -l)"
      echo "processes: $(ulimit -u)"
      echo "files: $(ulimit -n)"
    `);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/after --noconfirm: 2$/m);
      expect(result.stdout).toMatch(/after serene_clean_cache: 0$/m);
      expect(result.stdout).toMatch(/processes: 62811$/m);
      expect(result.stdout).toMatch(/files: 1024$/m);
    });
  },
);
