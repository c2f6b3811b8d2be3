import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RunnerJob } from '@serene/core';
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

async function readText(entry: AsyncIterable<unknown>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of entry) parts.push(part as Buffer);
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
 */
export async function unpackOutputs(
  archive: NodeJS.ReadableStream,
  outputDir: string,
): Promise<BuildOutputs> {
  const outputs: BuildOutputs = { srcinfo: null, statsBefore: null, statsAfter: null, packages: [] };
  await fs.mkdir(outputDir, { recursive: true });
  const extractor = extract();
  archive.on('error', (error: Error) => extractor.destroy(error));
  archive.pipe(extractor);
  for await (const entry of extractor) {
    const name = entry.header.name.replace(/^\.?\/?[^/]*\//, '');
    if (entry.header.type !== 'file' || name.includes('/')) {
      entry.resume();
      continue;
    }
    if (name === '.SRCINFO') {
      outputs.srcinfo = await readText(entry);
    } else if (name === '.stats-before.json') {
      outputs.statsBefore = parseJson(await readText(entry));
    } else if (name === '.stats-after.json') {
      outputs.statsAfter = parseJson(await readText(entry));
    } else if (PACKAGE_FILE.test(name)) {
      const target = path.join(outputDir, name);
      const temp = path.join(outputDir, `.tmp.${name}`);
      await pipeline(entry as unknown as Readable, createWriteStream(temp));
      await fs.rename(temp, target);
      outputs.packages.push(target);
    } else {
      entry.resume();
    }
  }
  return outputs;
}

/** Reads the single file of a tar that `getArchive` returned for one file path. */
export async function readSingleFile(archive: NodeJS.ReadableStream): Promise<string | null> {
  const extractor = extract();
  archive.on('error', (error: Error) => extractor.destroy(error));
  archive.pipe(extractor);
  let text: string | null = null;
  for await (const entry of extractor) {
    if (entry.header.type === 'file' && text === null) text = await readText(entry);
    else entry.resume();
  }
  return text;
}
