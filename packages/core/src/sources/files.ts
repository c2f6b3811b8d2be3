import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { InputError } from '../errors.js';
import { checkSrcinfo, parseSrcinfo, type Srcinfo } from '../pacman/srcinfo.js';

/** File name of the `.SRCINFO` in a checkout. */
export const SRCINFO_FILE = '.SRCINFO';
/** File name of the PKGBUILD in a checkout. */
export const PKGBUILD_FILE = 'PKGBUILD';

/** Whether a path exists (any kind of file). */
export async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** The text of `<dir>/.SRCINFO`, or null when there is none. */
export async function readSrcinfoFile(dir: string): Promise<string | null> {
  try {
    return await fs.readFile(path.join(dir, SRCINFO_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new InputError('failed to read .SRCINFO', { cause: error });
  }
}

/** Reads `<dir>/PKGBUILD`. */
export async function readPkgbuildFile(dir: string): Promise<string> {
  try {
    return await fs.readFile(path.join(dir, PKGBUILD_FILE), 'utf8');
  } catch (error) {
    throw new InputError('failed to read PKGBUILD', { cause: error });
  }
}

/** Parses a `.SRCINFO`, naming `what` in the error. */
export function parseSrcinfoOf(text: string, what: string): Srcinfo {
  try {
    return parseSrcinfo(text);
  } catch (error) {
    throw new InputError(`failed to parse ${what}`, { cause: error });
  }
}

/** Checks that a `.SRCINFO` parses (as {@link parseSrcinfoOf}), without keeping the parse. */
export function checkSrcinfoOf(text: string, what: string): void {
  try {
    checkSrcinfo(text);
  } catch (error) {
    throw new InputError(`failed to parse ${what}`, { cause: error });
  }
}
