/**
 * Durable writes: a file is written in full beside its target, flushed to the disk, and only then
 * renamed into place, so that a reader, a process killed at any moment or a full disk leaves the
 * previous file or the new one, never a part of one (docs/durability.md, ADR 0008).
 *
 * @remarks Why each step: `writev` and `write` may write less than they were given without an error
 * (the disk filled up half way; the next call would have reported `ENOSPC`), so every write is
 * repeated until all is written, and the size on disk is checked against the size written. The file
 * is flushed (`fdatasync`) before the rename, as a rename may reach the disk before the data does;
 * the folder is flushed after it, so that the new name survives a power cut. Any failure removes the
 * temporary file, and `ENOSPC`/`EDQUOT` become a {@link DiskFullError} naming the target.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DiskFullError } from './errors.js';

/** What a durable write writes: text (UTF-8), bytes, buffers one after the other, or a stream of bytes. */
export type FileContent = string | Uint8Array | readonly Uint8Array[] | AsyncIterable<Uint8Array>;

/** Options of {@link writeFileDurable} and {@link stageFile}. */
export interface DurableWriteOptions {
  /**
   * permissions of the new file (set exactly, not masked by the umask)
   * @default 0o644 less the umask
   */
  mode?: number;
  /** modification (and access) time of the new file, in seconds since the epoch */
  mtime?: number;
  /**
   * flush the staged file before returning; false leaves that to the caller ({@link syncFile}),
   * to flush several files at once before renaming any
   * @default true
   */
  sync?: boolean;
}

/** Temporary files of durable writes are `.tmp.NAME.RANDOM` beside their target. */
export const TEMP_PREFIX = '.tmp.';

/** A new temporary path beside `target`: `.tmp.NAME.RANDOM`. */
export function tempPathFor(target: string): string {
  return path.join(
    path.dirname(target),
    `${TEMP_PREFIX}${path.basename(target)}.${randomBytes(4).toString('hex')}`,
  );
}

/** Whether `error` says the disk (or the quota) is full. */
export function isDiskFull(error: unknown): boolean {
  if (error instanceof DiskFullError || (error as Error | undefined)?.name === 'DiskFullError') return true;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** `error` as a {@link DiskFullError} naming `file` when the disk is full; any other error as it is. */
export function asDiskFull(error: unknown, file: string): unknown {
  if (!isDiskFull(error) || (error as Error).name === 'DiskFullError') return error;
  return new DiskFullError(file, { cause: error });
}

/**
 * Writes `content` to a new temporary file beside `target`, in full and flushed, and returns its
 * path; `target` is not touched. On any failure the temporary file is removed.
 *
 * @throws DiskFullError when the disk is full
 */
export function stageFile(
  target: string,
  content: FileContent,
  options: DurableWriteOptions = {},
): Promise<string> {
  return stage(target, options, {
    sync: options.sync !== false,
    open: (temp) => fs.open(temp, 'wx', options.mode ?? 0o644),
    fill: (handle) => writeContent(handle, content),
    short: (size, expected, temp) => `short write: ${size} of ${expected} bytes reached ${temp}`,
  });
}

/**
 * Copies `source` to a new temporary file beside `target`, checked to be as long as the source and
 * flushed, and returns its path. On any failure the temporary file is removed.
 *
 * @throws DiskFullError when the disk is full
 */
export function stageCopy(
  source: string,
  target: string,
  options: DurableWriteOptions = {},
): Promise<string> {
  return stage(target, options, {
    sync: true,
    open: async (temp) => {
      await fs.copyFile(source, temp, fs.constants.COPYFILE_EXCL);
      return await fs.open(temp, 'r');
    },
    fill: async () => (await fs.stat(source)).size,
    short: (size, expected, temp) => `short copy: ${size} of ${expected} bytes of ${source} reached ${temp}`,
  });
}

/**
 * What {@link stageFile} and {@link stageCopy} share: the temporary file beside `target` is made
 * (`open`) and filled (`fill`, which says how many bytes it must have), given its mode, flushed
 * (`sync`), checked to be that long and given its mtime. On any failure it is removed, and a full
 * disk is named.
 */
async function stage(
  target: string,
  options: DurableWriteOptions,
  how: {
    sync: boolean;
    open: (temp: string) => Promise<fs.FileHandle>;
    fill: (handle: fs.FileHandle) => Promise<number>;
    short: (size: number, expected: number, temp: string) => string;
  },
): Promise<string> {
  const temp = tempPathFor(target);
  try {
    const handle = await how.open(temp);
    try {
      const expected = await how.fill(handle);
      if (options.mode !== undefined) await handle.chmod(options.mode);
      if (how.sync) await handle.datasync();
      const { size } = await handle.stat();
      if (size !== expected) throw new Error(how.short(size, expected, temp));
    } finally {
      await handle.close();
    }
    if (options.mtime !== undefined) await fs.utimes(temp, options.mtime, options.mtime);
    return temp;
  } catch (error) {
    await removeFile(temp).catch(() => undefined);
    throw asDiskFull(error, target);
  }
}

/** Renames a staged file into place and flushes its folder; the temporary file is removed if that fails. */
export async function commitFile(temp: string, target: string): Promise<void> {
  try {
    await fs.rename(temp, target);
  } catch (error) {
    await removeFile(temp).catch(() => undefined);
    throw asDiskFull(error, target);
  }
  await syncDirectory(path.dirname(target));
}

/**
 * Writes `target` durably: in full beside it, flushed, renamed into place, its folder flushed. A
 * failure at any step leaves the previous file (or none) and no temporary file.
 *
 * @throws DiskFullError when the disk is full
 */
export async function writeFileDurable(
  target: string,
  content: FileContent,
  options: DurableWriteOptions = {},
): Promise<void> {
  await commitFile(await stageFile(target, content, options), target);
}

/** Copies `source` to `target` durably (see {@link writeFileDurable}). */
export async function copyFileDurable(
  source: string,
  target: string,
  options: DurableWriteOptions = {},
): Promise<void> {
  await commitFile(await stageCopy(source, target, options), target);
}

/** Flushes a file's data to the disk (a file staged with `sync: false`). */
export async function syncFile(file: string): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/**
 * Flushes a folder, so that names renamed into it survive a power cut. Filesystems that cannot
 * flush a folder (`EINVAL`) are let be.
 */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EBADF') throw error;
  } finally {
    await handle.close();
  }
}

/**
 * Several files changed as one: each is staged in full first (nothing visible yet), then
 * {@link commit} renames them into place in the order they were staged, keeping what they replace
 * (hard links, no space taken); {@link rollback} puts the previous files back, {@link done} lets
 * them go. For a change that must not stay half done when a later step (the database) fails.
 */
export class FileChanges {
  private readonly staged: { temp: string; target: string }[] = [];
  private readonly removals = new Set<string>();
  /** what commit did, in order: a target that replaced `backup` (or was new), or one removed into `backup` */
  private readonly applied: { target: string; backup: string | undefined }[] = [];

  /** Stages `target` with `content`; returns the temporary file (to read it back, e.g. to sign it). */
  async write(target: string, content: FileContent, options?: DurableWriteOptions): Promise<string> {
    const temp = await stageFile(target, content, options);
    this.staged.push({ temp, target });
    return temp;
  }

  /** Stages a copy of `source` as `target`; returns the temporary file. */
  async copy(source: string, target: string, options?: DurableWriteOptions): Promise<string> {
    const temp = await stageCopy(source, target, options);
    this.staged.push({ temp, target });
    return temp;
  }

  /** Removes `target` (when it exists) at commit, kept until {@link done}. */
  remove(target: string): void {
    this.removals.add(target);
  }

  /** Renames every staged file into place (and removes what is to be removed), then flushes the folders. */
  async commit(): Promise<void> {
    const dirs = new Set<string>();
    while (this.staged.length > 0) {
      const { temp, target } = this.staged[0]!;
      const backup = await this.keep(target);
      this.applied.push({ target, backup });
      await fs.rename(temp, target);
      this.staged.shift();
      dirs.add(path.dirname(target));
    }
    for (const target of this.removals) {
      const backup = await this.keep(target);
      if (backup === undefined) continue;
      this.applied.push({ target, backup });
      await fs.unlink(target);
      dirs.add(path.dirname(target));
    }
    this.removals.clear();
    for (const dir of dirs) await syncDirectory(dir);
  }

  /** Undoes what {@link commit} did, last first, and removes staged files not yet in place. */
  async rollback(): Promise<void> {
    for (const { temp } of this.staged.splice(0)) await removeFile(temp).catch(() => undefined);
    for (const { target, backup } of this.applied.splice(0).reverse()) {
      if (backup === undefined) await removeFile(target).catch(() => undefined);
      else await fs.rename(backup, target);
    }
  }

  /** Removes what the committed files replaced. */
  async done(): Promise<void> {
    for (const { backup } of this.applied.splice(0)) {
      if (backup !== undefined) await removeFile(backup).catch(() => undefined);
    }
  }

  /** A hard link to `target` beside it, or undefined when there is no `target`. */
  private async keep(target: string): Promise<string | undefined> {
    const backup = tempPathFor(target);
    try {
      await fs.link(target, backup);
      return backup;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw asDiskFull(error, target);
    }
  }
}

/** Removes a file; one that is not there is no error. */
export async function removeFile(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Writes all of `content` at the start of `handle`; returns how many bytes that is. */
async function writeContent(handle: fs.FileHandle, content: FileContent): Promise<number> {
  if (typeof content === 'string') return writeAll(handle, [Buffer.from(content)], 0);
  if (content instanceof Uint8Array) return writeAll(handle, [content], 0);
  if (Array.isArray(content)) return writeAll(handle, content as readonly Uint8Array[], 0);
  let position = 0;
  for await (const chunk of content as AsyncIterable<Uint8Array | string>) {
    position += await writeAll(handle, [typeof chunk === 'string' ? Buffer.from(chunk) : chunk], position);
  }
  return position;
}

/**
 * Writes every buffer at `position`, one after the other. `writev` returns how much it wrote, which
 * is less than asked when the disk filled up on the way (no error then: the error comes with the
 * next call), so the rest is written again until all is written or a call fails.
 */
async function writeAll(
  handle: fs.FileHandle,
  buffers: readonly Uint8Array[],
  position: number,
): Promise<number> {
  let pending = buffers.filter((buffer) => buffer.byteLength > 0);
  let written = 0;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending as Uint8Array[], position + written);
    if (bytesWritten <= 0) throw new Error(`write made no progress at byte ${position + written}`);
    written += bytesWritten;
    let skip = bytesWritten;
    let done = 0;
    while (done < pending.length && skip >= pending[done]!.byteLength) {
      skip -= pending[done]!.byteLength;
      done++;
    }
    pending = pending.slice(done);
    if (skip > 0) pending[0] = pending[0]!.subarray(skip);
  }
  return written;
}
