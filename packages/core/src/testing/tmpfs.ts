import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from './pacman.js';

/**
 * Whether this machine lets the tests mount a tmpfs (root, and a kernel and container that allow
 * it), found once by mounting and unmounting a tiny one; with the reason when it does not.
 */
export function tmpfsSupport(): { ok: true } | { ok: false; reason: string } {
  cached ??= probe();
  return cached;
}

let cached: ReturnType<typeof tmpfsSupport> | undefined;

function probe(): ReturnType<typeof tmpfsSupport> {
  if (process.platform !== 'linux') return { ok: false, reason: 'tmpfs mounts need Linux' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'mounting a tmpfs needs root' };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'serene-tmpfs-probe-'));
  try {
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { encoding: 'utf8' });
    if (mount.status !== 0) {
      return {
        ok: false,
        reason: `mount -t tmpfs is not permitted here (${mount.stderr.trim() || mount.error})`,
      };
    }
    spawnSync('umount', [dir]);
    return { ok: true };
  } finally {
    rmdirSync(dir);
  }
}

/** A small tmpfs mounted for a test, and a filler file that leaves it as much room as asked. */
export interface Tmpfs {
  /** the mount point */
  dir: string;
  /** free bytes, as statfs reports them to an unprivileged writer */
  free(): Promise<number>;
  /**
   * Writes (or shrinks) the filler file so that `bytes` (rounded down to whole blocks) stay free;
   * the filler lives in the mount point, outside any folder under test.
   */
  leave(bytes: number): Promise<void>;
  /** removes the filler */
  unfill(): Promise<void>;
  /** unmounts and removes the mount point */
  unmount(): Promise<void>;
}

/** Mounts a tmpfs of `sizeKiB` KiB on a new temporary folder. */
export async function mountTmpfs(sizeKiB: number): Promise<Tmpfs> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-tmpfs-'));
  const mount = await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'tmpfs', dir]);
  if (mount.code !== 0) {
    await fs.rmdir(dir);
    throw new Error(`could not mount a tmpfs on ${dir}: ${mount.stderr.trim()}`);
  }
  const filler = path.join(dir, 'filler');
  const free = async () => {
    const stat = await fs.statfs(dir);
    return stat.bavail * stat.bsize;
  };
  const unfill = () => fs.rm(filler, { force: true });
  return {
    dir,
    free,
    async leave(bytes) {
      await unfill();
      const size = (await free()) - bytes;
      if (size <= 0) return;
      // written, not truncated: a sparse file would take no room on tmpfs
      const handle = await fs.open(filler, 'w');
      try {
        const block = Buffer.alloc(1 << 16, 0x5a);
        for (let written = 0; written < size; ) {
          const length = Math.min(block.length, size - written);
          const { bytesWritten } = await handle.write(block, 0, length, written);
          written += bytesWritten;
        }
      } finally {
        await handle.close();
      }
    },
    unfill,
    async unmount() {
      await run('umount', [dir]);
      await fs.rmdir(dir).catch(() => undefined);
    },
  };
}

/**
 * Every file of a folder, with its bytes (base64; links as their targets), to show that a failed
 * write changed nothing and left no temporary file.
 */
export async function snapshotFiles(dir: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  for (const name of (await fs.readdir(dir)).sort()) {
    const file = path.join(dir, name);
    const stat = await fs.lstat(file);
    if (stat.isSymbolicLink()) result.set(name, `-> ${await fs.readlink(file)}`);
    else if (stat.isFile()) result.set(name, (await fs.readFile(file)).toString('base64'));
    else result.set(name, 'directory');
  }
  return result;
}
