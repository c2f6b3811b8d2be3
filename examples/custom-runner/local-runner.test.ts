import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { hasProgram, testRunner } from '@serene/core/testing';
import { createLocalRunner } from './local-runner.js';

let workDir: string | undefined;

// reason: the local runner needs Debian's makepkg (installed by `npm test`'s set-up)
testRunner('local (makepkg on this machine)', {
  skip: !hasProgram('makepkg'),
  incremental: true,
  basePrefix: 'local',
  async create() {
    workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-local-runner-'));
    await fs.chmod(workDir, 0o755);
    return createLocalRunner({ workDir, packager: 'serene tests <tests@serene.invalid>' });
  },
  async cleanup() {
    if (workDir) await fs.rm(workDir, { recursive: true, force: true });
  },
});
