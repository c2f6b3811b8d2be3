#!/usr/bin/env node
/**
 * Custom tooling on `@serene/core` alone: turns a folder of package files into a signed pacman
 * repository, with no server, no Docker and no repo-add.
 *
 *   node examples/custom-tooling/dist/build-repo.js <packages folder> <repository folder> [name]
 *     GNUPGHOME=... SIGN_KEY=<fingerprint> [SIGN_KEY_PASSWORD=...]   sign with gpg (optional)
 *
 * Every `*.pkg.tar.*` in the folder is copied into the repository, signed, and listed in
 * `NAME.db.tar.gz`; an older version of a package already in the repository is replaced.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createFilesystemRepository, createGpgSigner, formatErrorChain } from '@serene/core';

/** Builds (or updates) the repository; returns the names it lists afterwards. */
export async function buildRepository(options: {
  packagesDir: string;
  repositoryDir: string;
  name?: string;
  gpg?: { homedir: string; key: string; passphrase?: string };
}): Promise<{ published: string[]; listed: string[] }> {
  const signer = options.gpg ? createGpgSigner(options.gpg) : undefined;
  const repository = createFilesystemRepository({ dir: options.repositoryDir, name: options.name, signer });
  await repository.init();
  const files = (await fs.readdir(options.packagesDir))
    .filter((file) => /\.pkg\.tar(\.(zst|xz|gz|bz2))?$/.test(file))
    .map((file) => path.join(options.packagesDir, file));
  const result = files.length > 0 ? await repository.publish(files) : { added: [] };
  return {
    published: result.added.map((entry) => entry.filename),
    listed: (await repository.list()).map((entry) => `${entry.name} ${entry.version}`),
  };
}

async function main(argv: string[]): Promise<number> {
  const [packagesDir, repositoryDir, name] = argv;
  if (!packagesDir || !repositoryDir) {
    process.stderr.write('usage: build-repo <packages folder> <repository folder> [name]\n');
    return 2;
  }
  const key = process.env.SIGN_KEY;
  const result = await buildRepository({
    packagesDir,
    repositoryDir,
    name,
    gpg: key
      ? {
          homedir: process.env.GNUPGHOME ?? path.join(os.homedir(), '.gnupg'),
          key,
          passphrase: process.env.SIGN_KEY_PASSWORD,
        }
      : undefined,
  });
  for (const file of result.published) process.stdout.write(`published ${file}\n`);
  process.stdout.write(`${result.listed.length} packages in the repository\n`);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('build-repo.ts')) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      process.stderr.write(`error: ${formatErrorChain(error)}\n`);
      process.exit(1);
    },
  );
}
