/**
 * Writing a repository database: both archives, their signatures, the `.old` copies and the index
 * are staged in full (written beside their targets, flushed), and only then renamed into place. A
 * full disk, a failing signer or any other error before the renames leaves every file as it was and
 * no temporary file; a process killed at any moment leaves archives that pacman reads
 * (docs/durability.md).
 */
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Signer } from '../contracts/signer.js';
import {
  asDiskFull,
  removeFile,
  stageCopy,
  stageFile,
  syncDirectory,
  syncFile,
  tempPathFor,
} from '../durable.js';
import { type Chunk, coalesce, gzip } from './database-chunks.js';
import { type Fingerprint, formatIndex } from './database-index.js';
import { TAR_END } from './tar.js';

/** The files of one database. */
export interface DatabasePaths {
  /** the repository folder */
  dir: string;
  /** `NAME.db.tar.gz` */
  dbPath: string;
  /** `NAME.files.tar.gz` */
  filesPath: string;
  /** `.NAME.serene-index` */
  indexPath: string;
}

/** One archive staged: its temporary file, signature and `.old` copy, with its fingerprint. */
interface StagedArchive {
  target: string;
  temp: string;
  signature: string | undefined;
  old: string | undefined;
  fingerprint: Fingerprint;
}

/**
 * Writes both archives of `chunks`, signed when `signer` is set, and the index describing them.
 * Everything that takes room on the disk is written before the first rename; then the files
 * database (and its signature) is renamed into place before the db, so that a reader who sees the
 * new db finds the new files database already there, and the index last.
 *
 * @throws DiskFullError when the disk is full (nothing changed)
 */
export async function writeDatabase(
  paths: DatabasePaths,
  chunks: readonly Chunk[],
  signer: Signer | undefined,
): Promise<void> {
  const temps: string[] = [];
  const track = (file: string | undefined) => {
    if (file !== undefined) temps.push(file);
    return file;
  };
  try {
    const end = gzip(TAR_END);
    const prepared = await Promise.allSettled([
      stageArchive(paths.filesPath, [...coalesce(chunks.map((chunk) => chunk.files)), end], signer, track),
      stageArchive(paths.dbPath, [...coalesce(chunks.map((chunk) => chunk.db)), end], signer, track),
    ]);
    const failed = prepared.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    const [files, db] = prepared.map((result) => (result as PromiseFulfilledResult<StagedArchive>).value) as [
      StagedArchive,
      StagedArchive,
    ];
    const offsets = { db: 0, files: 0 };
    const index = formatIndex({
      db: db.fingerprint,
      files: files.fingerprint,
      chunks: chunks.map(({ rows, db, files }) => {
        const chunk = {
          db: [offsets.db, db.length] as const,
          files: [offsets.files, files.length] as const,
          rows,
        };
        offsets.db += db.length;
        offsets.files += files.length;
        return chunk;
      }),
    });
    const indexTemp = track(await stageFile(paths.indexPath, index, { sync: false }))!;
    // everything flushed at once (the disk commits them together) before anything is renamed
    await Promise.all(temps.map(syncFile));
    await ensureLinks(paths, signer !== undefined);
    // from here on only renames: nothing more needs room on the disk
    for (const archive of [files, db]) await putInPlace(archive);
    await fs.rename(indexTemp, paths.indexPath);
    await syncDirectory(paths.dir);
  } catch (error) {
    for (const temp of temps) await removeFile(temp).catch(() => undefined);
    throw asDiskFull(error, paths.dbPath);
  }
}

/**
 * Signs the archives again (`NAME.db.tar.gz.sig`, `NAME.files.tar.gz.sig`): both signatures are
 * staged before either is renamed into place.
 */
export async function resignDatabase(paths: DatabasePaths, signer: Signer): Promise<void> {
  const staged: { temp: string; target: string }[] = [];
  try {
    for (const target of [paths.filesPath, paths.dbPath]) {
      if (!(await exists(target))) continue;
      const signature = await signer.sign(createReadStream(target, { highWaterMark: 1 << 20 }));
      staged.push({ temp: await stageFile(`${target}.sig`, signature), target: `${target}.sig` });
    }
    await ensureLinks(paths, true);
    for (const { temp, target } of staged.splice(0)) await fs.rename(temp, target);
    await syncDirectory(paths.dir);
  } catch (error) {
    for (const { temp } of staged) await removeFile(temp).catch(() => undefined);
    throw error;
  }
}

/**
 * `NAME.db -> NAME.db.tar.gz` and `NAME.files -> NAME.files.tar.gz`; with `signed`, the `.sig`
 * links too, else no `.sig` links.
 */
export async function ensureLinks(paths: DatabasePaths, signed: boolean): Promise<void> {
  for (const target of [paths.dbPath, paths.filesPath]) {
    const link = target.slice(0, -'.tar.gz'.length);
    await symlink(path.basename(target), link);
    if (signed) {
      await symlink(`${path.basename(target)}.sig`, `${link}.sig`);
    } else {
      await removeFile(`${link}.sig`);
    }
  }
}

/** What identifies a file for the index: size, modification time and inode. */
export function fingerprint(stat: { size: number; mtimeMs: number; ino: number }): Fingerprint {
  return { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino };
}

export function sameFile(a: Fingerprint, b: Fingerprint): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino;
}

/** The fingerprint of a regular file, or undefined when there is none. */
export async function statOf(file: string): Promise<Fingerprint | undefined> {
  const stat = await fs.stat(file).catch(() => undefined);
  return stat?.isFile() ? fingerprint(stat) : undefined;
}

export async function exists(file: string): Promise<boolean> {
  return (await statOf(file)) !== undefined;
}

// --- Internal helpers -------------------------------------------------------------------------------

/**
 * Writes one archive beside `target`, its signature, and a link to the current archive that becomes
 * `.old` (as repo-add keeps it), each handed to `track` as soon as it exists. Not flushed yet: the
 * caller flushes every staged file at once.
 */
async function stageArchive(
  target: string,
  parts: Buffer[],
  signer: Signer | undefined,
  track: (file: string | undefined) => string | undefined,
): Promise<StagedArchive> {
  const previous = await fs.stat(target).catch(() => undefined);
  // pacman (curl's If-Modified-Since, for http:// and file:// alike) compares whole seconds: a
  // database replaced within the second of the last sync would look unchanged. Each version gets
  // a whole-second mtime later than the one it replaces.
  const mtime = Math.max(
    Math.floor(Date.now() / 1000),
    previous ? Math.floor(previous.mtimeMs / 1000) + 1 : 0,
  );
  const temp = track(await stageFile(target, parts, { mtime, sync: false }))!;
  let signature: string | undefined;
  if (signer) {
    const bytes = await signer.sign(createReadStream(temp, { highWaterMark: 1 << 20 }));
    signature = track(await stageFile(`${target}.sig`, bytes, { mtime, sync: false }));
  }
  const old = previous ? track(await keepOld(target)) : undefined;
  return { target, temp, signature, old, fingerprint: fingerprint(await fs.stat(temp)) };
}

/** A link to the current archive beside it (or a copy, where links are not possible). */
async function keepOld(target: string): Promise<string> {
  const temp = tempPathFor(`${target}.old`);
  try {
    await fs.link(target, temp);
    return temp;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV' && code !== 'EMLINK') throw error;
    return stageCopy(target, `${target}.old`);
  }
}

/** Renames a staged archive into place, with its signature (or without one) and its `.old`. */
async function putInPlace(archive: StagedArchive): Promise<void> {
  const { target, temp, signature, old } = archive;
  await fs.rename(temp, target);
  if (signature) await fs.rename(signature, `${target}.sig`);
  else await removeFile(`${target}.sig`);
  if (old) await fs.rename(old, `${target}.old`);
}

/** Points `link` at `target` (relative), replacing whatever is there atomically. */
async function symlink(target: string, link: string): Promise<void> {
  const current = await fs.readlink(link).catch(() => undefined);
  if (current === target) return;
  const temp = tempPathFor(link);
  try {
    await fs.symlink(target, temp);
    await fs.rename(temp, link);
  } catch (error) {
    await removeFile(temp).catch(() => undefined);
    throw asDiskFull(error, link);
  }
}
