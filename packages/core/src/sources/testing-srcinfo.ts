/**
 * A `.SRCINFO` generator for tests: Debian's real `makepkg --printsrcinfo`, run as an unprivileged user
 * on a copy of the source folder. Not exported from the package index.
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SrcinfoGenerator } from '../contracts/source.js';
import { SereneError } from '../errors.js';
import { hasProgram } from '../testing/pacman.js';

/** The user the test generator runs makepkg as (created by `scripts/setup-test-env.mjs`). */
export const SRCINFO_TEST_USER = 'serene-build';

/**
 * Why the makepkg generator cannot run here, or undefined when it can: makepkg and runuser on the PATH,
 * running as root, and the unprivileged user existing.
 */
export function makepkgSrcinfoUnavailable(user = SRCINFO_TEST_USER): string | undefined {
  if (!hasProgram('makepkg')) return 'makepkg is not installed';
  if (!hasProgram('runuser')) return 'runuser is not installed';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not running as root';
  if (spawnSync('id', ['-u', user], { stdio: 'ignore' }).status !== 0) return `user ${user} does not exist`;
  return undefined;
}

/** Numeric uid and gid of a user. */
function idsOf(user: string): { uid: number; gid: number } {
  const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new SereneError(`user ${user} does not exist`);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * A {@link SrcinfoGenerator} running `runuser -u <user> -- makepkg --printsrcinfo` in a temporary copy
 * of the source folder owned by that user (`.git` left out), with a fixed `CARCH` of `arch`.
 */
export function createMakepkgSrcinfoGenerator(
  options: { user?: string; arch?: string } = {},
): SrcinfoGenerator {
  const user = options.user ?? SRCINFO_TEST_USER;
  return async (sourceDir, opts = {}) => {
    const { uid, gid } = idsOf(user);
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-srcinfo-'));
    try {
      const work = path.join(tmp, 'src');
      await fs.cp(sourceDir, work, { recursive: true, filter: (from) => path.basename(from) !== '.git' });
      await chownTree(tmp, uid, gid);
      const env: NodeJS.ProcessEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C', HOME: tmp };
      if (options.arch) env.CARCH = options.arch;
      return await new Promise<string>((resolve, reject) => {
        execFile(
          'runuser',
          ['-u', user, '--', 'makepkg', '--printsrcinfo'],
          { cwd: work, env, signal: opts.signal, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' },
          (error, stdout, stderr) => {
            if (error)
              reject(new SereneError(`makepkg --printsrcinfo failed: ${stderr.trim() || error.message}`));
            else resolve(stdout);
          },
        );
      });
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  };
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await fs.chown(dir, uid, gid);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(full, uid, gid);
    else await fs.lchown(full, uid, gid);
  }
}
