/**
 * The lock file of a repository database, `NAME.db.tar.gz.lck`, shared with repo-add: it holds the
 * pid of the writer. A lock whose process is gone is taken over.
 */
import * as fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { asDiskFull, removeFile, tempPathFor } from '../durable.js';
import { LockedError } from '../errors.js';
import type { Logger } from '../logger.js';

/** A lock file without a pid older than this is stale (see `lock`). */
const EMPTY_LOCK_STALE_MS = 10_000;

/**
 * Takes the lock file `lockPath`, waiting up to `timeoutMs` for another writer, and returns what
 * releases it.
 *
 * @throws LockedError when another live process still holds it at the deadline
 * @throws DiskFullError when there is no room for the lock file
 */
export async function acquireLock(
  lockPath: string,
  options: { timeoutMs: number; logger: Logger },
): Promise<() => Promise<void>> {
  const deadline = Date.now() + options.timeoutMs;
  for (let attempt = 0; ; attempt++) {
    if (await createLock(lockPath)) return () => removeFile(lockPath);
    const [text, stat] = await Promise.all([
      fs.readFile(lockPath, 'utf8').catch(() => ''),
      fs.stat(lockPath).catch(() => undefined),
    ]);
    const holder = Number.parseInt(text, 10);
    const known = Number.isInteger(holder) && holder > 0;
    // a lock without a pid was left by a writer killed between creating it and writing to it
    // (repo-add's window; ours has none): stale once older than any such window
    const stale = known
      ? holder !== process.pid && !isAlive(holder)
      : stat !== undefined && Date.now() - stat.mtimeMs > EMPTY_LOCK_STALE_MS;
    if (stale) {
      options.logger.warn('removing stale repository lock', {
        lock: lockPath,
        pid: known ? holder : undefined,
      });
      await removeFile(lockPath);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new LockedError(
        `failed to acquire lockfile: ${lockPath}${known ? ` (held by process ${holder})` : ''}`,
      );
    }
    await sleep(Math.min(25 * 2 ** Math.min(attempt, 4), 250));
  }
}

/**
 * Creates the lock file with our pid already in it (written aside, then linked into place), so
 * that a writer killed at any moment never leaves an empty one; false when it exists. A full disk
 * leaves no file behind.
 */
async function createLock(lockPath: string): Promise<boolean> {
  const temp = tempPathFor(lockPath);
  try {
    await fs.writeFile(temp, `${process.pid}\n`, { flag: 'wx' });
    await fs.link(temp, lockPath);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw asDiskFull(error, lockPath);
  } finally {
    await removeFile(temp).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
