import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  asDiskFull,
  BUILD_OUTPUT_LIMITS,
  BuildOutputError,
  type BuildOutputLimits,
  formatBytes,
  type RunnerJob,
  removeFile,
} from '@serene/core';
import { extract, pack } from 'tar-stream';

/** The generated input files of a build, with their names in `/app/build` (as the original's). */
export function inputFiles(inputs: RunnerJob['inputs']): Record<string, string> {
  return {
    'custom-repo': inputs.customRepo,
    'serene-prepare.sh': inputs.prepare,
    'makepkg-flags': inputs.makepkgFlags,
  };
}

/** One entry of a source tree, found before anything is streamed. */
interface TreeEntry {
  name: string;
  file: string;
  stat: Stats;
  linkname?: string;
}

async function walk(dir: string, prefix: string, into: TreeEntry[]): Promise<TreeEntry[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const file = path.join(dir, entry.name);
    const name = `${prefix}${entry.name}`;
    const stat = await fs.lstat(file);
    if (stat.isDirectory()) {
      into.push({ name, file, stat });
      await walk(file, `${name}/`, into);
    } else if (stat.isSymbolicLink()) {
      into.push({ name, file, stat, linkname: await fs.readlink(file) });
    } else if (stat.isFile()) {
      into.push({ name, file, stat });
    }
    // sockets, fifos and devices have no place in package sources
  }
  return into;
}

/**
 * A tar stream of a source folder's tree (files, folders, symbolic links, modes kept) followed by
 * the generated files (mode 0444), for upload into `/app/build`. The tree is listed first, so a
 * missing folder rejects here; file contents are streamed, not buffered. Should a file vanish while
 * streaming, the stream is destroyed with that error.
 */
export async function packInputs(
  sourceDir: string,
  generated: Record<string, string> = {},
): Promise<Readable> {
  const tree = await walk(sourceDir, '', []);
  const archive = pack();
  const mtime = new Date();
  (async () => {
    for (const { name, file, stat, linkname } of tree) {
      const header = { name, mode: stat.mode & 0o7777, mtime: stat.mtime, uid: 0, gid: 0 };
      if (stat.isDirectory()) archive.entry({ ...header, type: 'directory' });
      else if (linkname !== undefined) archive.entry({ ...header, type: 'symlink', linkname });
      else
        await pipeline(createReadStream(file), archive.entry({ ...header, type: 'file', size: stat.size }));
    }
    for (const [name, text] of Object.entries(generated)) {
      archive.entry({ name, mode: 0o444, mtime, uid: 0, gid: 0, type: 'file' }, text);
    }
    archive.finalize();
  })().catch((error: unknown) => archive.destroy(error as Error));
  return archive as unknown as Readable;
}

/** What a build left in `/app/target`. */
export interface BuildOutputs {
  srcinfo: string | null;
  statsBefore: unknown;
  statsAfter: unknown;
  /** paths of the package files written into the output folder */
  packages: string[];
}

const PACKAGE_FILE = /\.pkg\.tar(\.[a-z0-9]+)?$/;

/**
 * Reads a tar entry as text, at most `limit` bytes: a build is untrusted, and what is read into
 * memory is bounded.
 *
 * @throws BuildOutputError when the entry is larger (from its header, before anything is read)
 */
async function readText(
  entry: AsyncIterable<unknown> & { header: { size?: number } },
  name: string,
  limit: number,
): Promise<string> {
  const tooLarge = () =>
    new BuildOutputError(`the build's ${name} is larger than ${formatBytes(limit)}; nothing was published`);
  if ((entry.header.size ?? 0) > limit) throw tooLarge();
  const parts: Buffer[] = [];
  let length = 0;
  for await (const part of entry) {
    length += (part as Buffer).length;
    if (length > limit) throw tooLarge();
    parts.push(part as Buffer);
  }
  return Buffer.concat(parts).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Reads the tar of `/app/target` (entries under `target/`) once, in order: `.SRCINFO` and the stats
 * files are kept in memory, package files are streamed into `outputDir`, anything else is skipped.
 * The build is untrusted: `.SRCINFO` and the stats files are read up to a size, and the number of
 * entries and the bytes of package files are bounded (`limits`); over a limit, or on a full disk,
 * it fails with a {@link BuildOutputError} or a `DiskFullError` naming it, the archive stream is
 * destroyed, and no partial package file is left.
 */
export async function unpackOutputs(
  archive: NodeJS.ReadableStream,
  outputDir: string,
  limits: Readonly<BuildOutputLimits> = BUILD_OUTPUT_LIMITS,
): Promise<BuildOutputs> {
  const outputs: BuildOutputs = { srcinfo: null, statsBefore: null, statsAfter: null, packages: [] };
  await fs.mkdir(outputDir, { recursive: true });
  const extractor = extract();
  archive.on('error', (error: Error) => extractor.destroy(error));
  archive.pipe(extractor);
  let entries = 0;
  let packageBytes = 0;
  try {
    for await (const entry of extractor) {
      if (++entries > limits.entries) {
        throw new BuildOutputError(
          `the build left more than ${limits.entries} files in its output; nothing was published`,
        );
      }
      const name = entry.header.name.replace(/^\.?\/?[^/]*\//, '');
      if (entry.header.type !== 'file' || name.includes('/')) {
        entry.resume();
        continue;
      }
      if (name === '.SRCINFO') {
        outputs.srcinfo = await readText(entry, name, limits.srcinfoBytes);
      } else if (name === '.stats-before.json') {
        outputs.statsBefore = parseJson(await readText(entry, name, limits.statsBytes));
      } else if (name === '.stats-after.json') {
        outputs.statsAfter = parseJson(await readText(entry, name, limits.statsBytes));
      } else if (PACKAGE_FILE.test(name)) {
        packageBytes += entry.header.size ?? 0;
        if (packageBytes > limits.packageBytes) {
          throw new BuildOutputError(
            `the build's package files are larger than ${formatBytes(limits.packageBytes)} together; nothing was published`,
          );
        }
        const target = path.join(outputDir, name);
        const temp = path.join(outputDir, `.tmp.${name}`);
        try {
          await pipeline(entry as unknown as Readable, createWriteStream(temp));
          await fs.rename(temp, target);
        } catch (error) {
          await removeFile(temp).catch(() => undefined);
          throw asDiskFull(error, target);
        }
        outputs.packages.push(target);
      } else {
        entry.resume();
      }
    }
  } catch (error) {
    // stop reading what the build sends
    (archive as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    throw error;
  }
  return outputs;
}

/** Reads the single file of a tar that `getArchive` returned for one file path (a `.SRCINFO`), at most `limit` bytes. */
export async function readSingleFile(
  archive: NodeJS.ReadableStream,
  limit = BUILD_OUTPUT_LIMITS.srcinfoBytes,
): Promise<string | null> {
  const extractor = extract();
  archive.on('error', (error: Error) => extractor.destroy(error));
  archive.pipe(extractor);
  let text: string | null = null;
  try {
    for await (const entry of extractor) {
      if (entry.header.type === 'file' && text === null) text = await readText(entry, '.SRCINFO', limit);
      else entry.resume();
    }
  } catch (error) {
    (archive as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    throw error;
  }
  return text;
}
