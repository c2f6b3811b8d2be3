/**
 * The raw source (docs/compatibility.md#sources): a PKGBUILD given as text; its state is the
 * standard Base64 (with padding) of the SHA-256 of that text.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { InnerSource, RawSourceJson } from '../contracts/source.js';
import { writeFileDurable } from '../durable.js';
import { InputError } from '../errors.js';
import { PKGBUILD_FILE } from './files.js';

/** JSON tag of {@link RawSource}. */
export const RAW_SOURCE_TYPE = 'RawSource';

/** The state of a raw source: `base64std(sha256(pkgbuild))`, the hash the original also uses for secrets. */
export function rawSourceState(pkgbuild: string): string {
  return createHash('sha256').update(pkgbuild, 'utf8').digest('base64');
}

/**
 * A PKGBUILD kept in the source itself.
 *
 * @remarks The original writes the PKGBUILD into the build's input archive only; here it is written into
 * the source folder (mode 0666, as the archive has it) on `initialize` and `update`, so that runners and
 * the `.SRCINFO` generator read every kind of source from its folder.
 */
export class RawSource implements InnerSource {
  readonly type = RAW_SOURCE_TYPE;
  readonly text: string;

  constructor(pkgbuild: string) {
    this.text = pkgbuild;
  }

  /** Reads a `RawSource` JSON object. */
  static fromJSON(json: Record<string, unknown>): RawSource {
    if (typeof json.pkgbuild !== 'string') throw new InputError('RawSource needs a string field pkgbuild');
    return new RawSource(json.pkgbuild);
  }

  describe(): { label: string; url: string | null } {
    return { label: 'raw pkgbuild', url: null };
  }

  async initialize(dir: string): Promise<void> {
    await this.write(dir);
  }

  async update(dir: string): Promise<void> {
    await this.write(dir);
  }

  state(): string {
    return rawSourceState(this.text);
  }

  async pkgbuild(): Promise<string> {
    return this.text;
  }

  /** A raw source never has a `.SRCINFO` of its own: it is always generated. */
  async srcinfo(): Promise<string | null> {
    return null;
  }

  toJSON(): RawSourceJson {
    return { type: RAW_SOURCE_TYPE, pkgbuild: this.text };
  }

  private async write(dir: string): Promise<void> {
    const file = path.join(dir, PKGBUILD_FILE);
    // a session updates every package it builds: a PKGBUILD already as it must be is not written
    // again (a durable write syncs the file and its folder; a scheduled session of thousands of
    // raw packages did that for each; docs/benchmarks.md, issue 16). A file there is whole: it
    // was renamed into place after it was written.
    if (await isWritten(file, this.text)) return;
    await fs.mkdir(dir, { recursive: true });
    // in full or not at all (an update on a full disk keeps the previous PKGBUILD); the mode is set
    // exactly, not masked by the umask
    await writeFileDurable(file, this.text, { mode: 0o666 });
  }
}

/** Whether `file` holds exactly `text` with mode 0666. */
async function isWritten(file: string, text: string): Promise<boolean> {
  try {
    const handle = await fs.open(file, 'r');
    try {
      const stat = await handle.stat();
      if ((stat.mode & 0o7777) !== 0o666 || stat.size !== Buffer.byteLength(text)) return false;
      return (await handle.readFile('utf8')) === text;
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
}
