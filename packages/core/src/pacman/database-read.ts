/**
 * What a repository database change reads: package files with their signatures (all of them first,
 * so that one bad file changes nothing), and archives written by anyone (repo-add, or serene without
 * an index).
 */
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { mapLimit } from '../concurrency.js';
import type { RepoEntry } from '../contracts/publisher.js';
import { InputError, InvalidDatabaseError, InvalidPackageError } from '../errors.js';
import { type Loose, looseEntry } from './database-chunks.js';
import { formatDesc, formatFiles, parseDesc } from './desc.js';
import { readPackage } from './package-reader.js';
import type { PackageFile } from './types.js';

/** Package files read at once when adding many. */
const READ_CONCURRENCY = 8;
/** repo-add refuses package signatures larger than this. */
const MAX_SIGNATURE_SIZE = 16384;

/** A package read for an add: where it lies and its entry, ready to be written. */
export interface ReadPackage {
  file: string;
  loose: Loose;
}

/**
 * Reads every package first, with its signature, so that one bad file changes nothing. Each is
 * reduced to its entry's tar bytes as soon as it is read, so that many packages take little memory.
 */
export async function readAll(
  packages: readonly (string | PackageFile)[],
  includeSignatures = true,
): Promise<ReadPackage[]> {
  const problems: string[] = [];
  const read: ReadPackage[] = [];
  const seen = new Map<string, string>();
  const mtime = Math.floor(Date.now() / 1000);
  // read several at a time (I/O and hashing overlap), then check them in the given order
  type Result =
    | { name: string; file: string; loose: Loose }
    | { name: string; file: string; badSignature: unknown };
  const results = await mapLimit(
    packages,
    READ_CONCURRENCY,
    async (item): Promise<Result | { error: unknown }> => {
      try {
        const pkg = typeof item === 'string' ? await readPackageFile(item) : item;
        const found = { name: pkg.pkginfo.pkgname, file: pkg.path };
        try {
          const pgpsig = includeSignatures ? await readSignature(pkg.path) : undefined;
          const desc = Buffer.from(formatDesc(pkg, pgpsig));
          return {
            ...found,
            loose: looseEntry(entryOf(pkg, pgpsig), desc, Buffer.from(formatFiles(pkg.files)), mtime),
          };
        } catch (error) {
          return { ...found, badSignature: error };
        }
      } catch (error) {
        return { error };
      }
    },
  );
  for (const result of results) {
    try {
      if ('error' in result) throw result.error;
      const earlier = seen.get(result.name);
      if (earlier) {
        throw new InputError(`'${result.file}' and '${earlier}' are both packages of '${result.name}'`);
      }
      seen.set(result.name, result.file);
      if ('badSignature' in result) throw result.badSignature;
      read.push({ file: result.file, loose: result.loose });
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      problems.push(error.message);
    }
  }
  if (problems.length === 1) throw new InvalidPackageError(problems[0]!);
  if (problems.length > 1) throw new InvalidPackageError(problems.join('; '));
  return read;
}

function entryOf(pkg: PackageFile, pgpsig: string | undefined): RepoEntry {
  const info = pkg.pkginfo;
  return {
    name: info.pkgname,
    base: info.pkgbase,
    version: info.pkgver,
    filename: pkg.filename,
    arch: info.arch ?? 'any',
    signed: pgpsig !== undefined,
  };
}

async function readPackageFile(file: string): Promise<PackageFile> {
  const stat = await fs.stat(file).catch(() => undefined);
  if (!stat?.isFile()) throw new InvalidPackageError(`file '${file}' not found`);
  return readPackage(path.resolve(file));
}

/** base64 of `FILE.sig` when it exists, with repo-add's checks. */
async function readSignature(file: string): Promise<string | undefined> {
  const signature = await fs.readFile(`${file}.sig`).catch(() => undefined);
  if (!signature) return undefined;
  if (signature.includes('BEGIN PGP SIGNATURE')) {
    throw new InvalidPackageError(`cannot use armored signatures for packages: ${file}.sig`);
  }
  if (signature.length > MAX_SIGNATURE_SIZE || signature.length === 0) {
    throw new InvalidPackageError(`invalid package signature file '${file}.sig'`);
  }
  return signature.toString('base64');
}

/** Reads a database archive into `entry dir -> file name -> contents`. */
export async function readEntries(file: string): Promise<Map<string, Map<string, Buffer>>> {
  const entries = new Map<string, Map<string, Buffer>>();
  // loaded here: only databases without an index are read this way, and a CLI run should not pay for it
  const { extract } = await import('tar-stream');
  const parser = extract();
  parser.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: unknown) => {
      chunks.push(chunk as Buffer);
    });
    stream.on('end', () => {
      const name = header.name.replace(/^\.\//, '');
      const parts = name.split('/').filter((part) => part !== '');
      if (header.type === 'directory' && parts.length === 1) {
        if (!entries.has(parts[0]!)) entries.set(parts[0]!, new Map());
      } else if (header.type === 'file' && parts.length === 2) {
        const dir = entries.get(parts[0]!) ?? new Map<string, Buffer>();
        dir.set(parts[1]!, Buffer.concat(chunks));
        entries.set(parts[0]!, dir);
      } else {
        parser.destroy(new Error(`unexpected member '${name}'`));
        return;
      }
      next();
    });
    stream.on('error', next);
  });
  try {
    await pipeline(createReadStream(file), zlib.createGunzip(), parser);
  } catch (error) {
    throw new InvalidDatabaseError(`repository file '${file}' is not a proper pacman database`, {
      cause: error,
    });
  }
  return entries;
}

/** Reads the entries of archives written by anyone (repo-add, or serene without an index). */
export async function readArchives(dbPath: string, filesPath: string | undefined): Promise<Loose[]> {
  const db = await readEntries(dbPath);
  const files = filesPath ? await readEntries(filesPath) : new Map<string, Map<string, Buffer>>();
  const loose: Loose[] = [];
  const mtime = Math.floor(Date.now() / 1000);
  for (const [dirName, contents] of db) {
    const desc = contents.get('desc');
    if (!desc) {
      throw new InvalidDatabaseError(`repository file '${dbPath}' is not a proper pacman database`);
    }
    const fields = parseDesc(desc.toString('utf8'));
    const name = fields.get('NAME')?.[0];
    const version = fields.get('VERSION')?.[0];
    const filename = fields.get('FILENAME')?.[0];
    if (!name || !version || !filename || dirName !== `${name}-${version}`) {
      throw new InvalidDatabaseError(`repository file '${dbPath}' has a malformed entry '${dirName}'`);
    }
    const entry: RepoEntry = {
      name,
      version,
      filename,
      base: fields.get('BASE')?.[0],
      arch: fields.get('ARCH')?.[0] ?? 'any',
      signed: fields.has('PGPSIG'),
    };
    const filesText = files.get(dirName)?.get('files') ?? Buffer.from('%FILES%\n');
    loose.push(looseEntry(entry, desc, filesText, mtime));
  }
  return loose;
}
