import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { createFilesystemRepository, type FilesystemRepository, type Signer } from '@serene/core';
import {
  createPacmanSandbox,
  hasProgram,
  type PacmanSandbox,
  verifyWithGpg,
  writeSyntheticPackage,
} from '@serene/core/testing';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportPublicKey, loadOpenPgpSigner } from './openpgp-signer.js';

// End to end: our signatures on a repository that real pacman syncs and installs from with
// `SigLevel = Required DatabaseRequired`, after `pacman-key --add` and `--lsign-key` of the exported key.

const NAME = 'serene';
const STRICT = 'Required DatabaseRequired';
const tools = ['pacman', 'pacman-key', 'gpg'];
const missing = tools.filter((tool) => !hasProgram(tool));

/** A pacman sandbox that trusts `signer`'s key, as a user following the README would. */
async function trustingSandbox(dir: string, signer: Signer): Promise<PacmanSandbox> {
  const sandbox = await createPacmanSandbox([{ name: NAME, server: `file://${dir}`, sigLevel: STRICT }], {
    sigLevel: STRICT,
  });
  const init = await sandbox.pacmanKey(['--init']);
  expect(init.code, init.stderr).toBe(0);
  const keyFile = path.join(sandbox.root, 'serene.asc');
  await fs.writeFile(keyFile, await exportPublicKey(signer));
  const added = await sandbox.pacmanKey(['--add', keyFile]);
  expect(added.code, added.stderr).toBe(0);
  const signed = await sandbox.pacmanKey(['--lsign-key', await signer.fingerprint()]);
  expect(signed.code, signed.stderr).toBe(0);
  return sandbox;
}

async function expectVerified(signer: Signer, dir: string, files: readonly string[]): Promise<void> {
  const key = await signer.publicKey();
  for (const file of files) {
    expect(await verifyWithGpg(key, path.join(dir, file), path.join(dir, `${file}.sig`)), file).toBe(true);
  }
  for (const kind of ['db', 'files']) {
    const archive = path.join(dir, `${NAME}.${kind}.tar.gz`);
    expect(await verifyWithGpg(key, archive, `${archive}.sig`), archive).toBe(true);
    // the links resolve to the sibling signature (the original's dangle)
    expect(await fs.readlink(path.join(dir, `${NAME}.${kind}.sig`))).toBe(`${NAME}.${kind}.tar.gz.sig`);
    expect(await verifyWithGpg(key, archive, path.join(dir, `${NAME}.${kind}.sig`))).toBe(true);
  }
}

const install = ['-S', '--noscriptlet', '--nodeps', '--nodeps'];

// reason: these tests need Debian's pacman and pacman-key, and gpg; `npm test` installs them
describe.skipIf(missing.length > 0)(
  `pacman trusts our signatures (missing: ${missing.join(', ') || 'none'})`,
  () => {
    let root: string;
    let packages: string;
    let signer: Signer;
    let stranger: Signer;
    const sandboxes: PacmanSandbox[] = [];

    beforeAll(async () => {
      root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-signing-e2e-'));
      packages = path.join(root, 'packages');
      const make = async () => {
        const { privateKey } = await openpgp.generateKey({
          type: 'ecc',
          curve: 'ed25519Legacy',
          userIDs: [{ name: 'serene e2e', email: 'e2e@serene.invalid' }],
          format: 'armored',
          passphrase: 'e2e',
        });
        return (await loadOpenPgpSigner({ armoredKey: privateKey, password: 'e2e' }))!;
      };
      [signer, stranger] = await Promise.all([make(), make()]);
    });

    afterAll(async () => {
      for (const sandbox of sandboxes) await sandbox.cleanup();
      if (root) await fs.rm(root, { recursive: true, force: true });
    });

    describe('a repository signed from the start', () => {
      let dir: string;
      let repo: FilesystemRepository;
      let sandbox: PacmanSandbox;
      let files: string[];

      beforeAll(async () => {
        dir = path.join(root, 'signed');
        repo = createFilesystemRepository({ dir, name: NAME, signer });
        await repo.init();
        const built = await Promise.all([
          writeSyntheticPackage(packages, {
            name: 'hello',
            version: '1.0-1',
            files: { 'usr/share/hello/README': 'hi\n' },
          }),
          writeSyntheticPackage(packages, {
            name: 'world',
            version: '2:3.1-2',
            arch: 'any',
            depends: ['hello'],
          }),
          writeSyntheticPackage(packages, { name: 'spare', version: '0.1-1' }),
        ]);
        await repo.publish(built);
        files = built.map((file) => path.basename(file));
        sandbox = await trustingSandbox(dir, signer);
        sandboxes.push(sandbox);
      });

      it('signs every package and both archives, lists %PGPSIG%, and gpg --verify accepts them all', async () => {
        expect((await repo.list()).map((entry) => [entry.name, entry.signed])).toEqual([
          ['hello', true],
          ['spare', true],
          ['world', true],
        ]);
        await expectVerified(signer, dir, files);
        // each desc entry carries the package's own signature, base64, as repo-add writes it
        const db = zlib.gunzipSync(await fs.readFile(path.join(dir, `${NAME}.db.tar.gz`))).toString('latin1');
        const listed = [...db.matchAll(/%PGPSIG%\n([A-Za-z0-9+/=]+)\n/g)].map((match) => match[1]).sort();
        const expected = await Promise.all(
          files.map(async (file) => (await fs.readFile(path.join(dir, `${file}.sig`))).toString('base64')),
        );
        expect(listed).toEqual(expected.sort());
      });

      it('pacman syncs and installs with SigLevel = Required DatabaseRequired', async () => {
        const sync = await sandbox.pacman(['-Sy']);
        expect(sync.code, sync.stderr).toBe(0);
        const installed = await sandbox.pacman([...install, 'hello', 'world']);
        expect(installed.code, installed.stderr + installed.stdout).toBe(0);
        expect((await sandbox.pacman(['-Q'])).stdout).toBe('hello 1.0-1\nworld 2:3.1-2\n');
        await fs.access(path.join(sandbox.root, 'usr/share/hello/README'));
      });

      it('pacman refuses a tampered package whose database entry was updated', async () => {
        // another build under the same file name: its checksum goes into a database that we sign
        // again, but its signature is still the old package's
        const evil = await writeSyntheticPackage(path.join(root, 'evil'), {
          name: 'spare',
          version: '0.1-1',
          files: { 'usr/bin/spare': '#!/bin/sh\necho pwned\n' },
        });
        const target = path.join(dir, path.basename(evil));
        await fs.copyFile(evil, target);
        await (await repo.database()).add([target]);
        const sync = await sandbox.pacman(['-Syy']);
        expect(sync.code, sync.stderr).toBe(0);
        const refused = await sandbox.pacman([...install, 'spare']);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(
          /spare: signature from .* is invalid.*invalid or corrupted package \(PGP signature\)/s,
        );
        expect((await sandbox.pacman(['-Q', 'spare'])).code).not.toBe(0);
      });

      it('pacman refuses a package signed by a key it does not trust', async () => {
        const other = await writeSyntheticPackage(packages, { name: 'other', version: '1.0-1' });
        await repo.publish([other]);
        const published = path.join(dir, path.basename(other));
        await fs.writeFile(`${published}.sig`, await stranger.sign(createReadStream(published)));
        await (await repo.database()).add([published]);
        expect((await sandbox.pacman(['-Syy'])).code).toBe(0);
        const refused = await sandbox.pacman([...install, 'other']);
        expect(refused.code).not.toBe(0);
        // pacman read the issuer key id from our signature and did not find that key in its keyring
        expect(refused.stderr).toMatch(
          /key "[0-9A-F]{16}" could not be looked up.*required key missing from keyring/s,
        );
        expect(refused.stderr).toContain((await stranger.fingerprint()).slice(-16));
      });

      it('pacman refuses a tampered database', async () => {
        // an unsigned copy of the repository, with one more package, put over ours: our old
        // signature no longer matches it
        const copy = path.join(root, 'copy');
        await fs.cp(dir, copy, { recursive: true, verbatimSymlinks: true });
        const intruder = await writeSyntheticPackage(path.join(root, 'evil'), {
          name: 'intruder',
          version: '1.0-1',
        });
        await createFilesystemRepository({ dir: copy, name: NAME }).publish([intruder]);
        const archive = path.join(dir, `${NAME}.db.tar.gz`);
        const original = await fs.readFile(archive);
        await fs.copyFile(path.join(copy, `${NAME}.db.tar.gz`), archive);
        try {
          const refused = await sandbox.pacman(['-Syy']);
          expect(refused.code).not.toBe(0);
          expect(refused.stderr).toMatch(
            /serene: signature from .* is invalid.*corrupted database \(PGP signature\)/s,
          );
          expect((await sandbox.pacman(['-Si', 'intruder'])).code).not.toBe(0);
        } finally {
          await fs.writeFile(archive, original);
        }
        expect((await sandbox.pacman(['-Syy'])).code).toBe(0);
      });
    });

    describe('signing turned on after packages were published', () => {
      let dir: string;

      it('re-signs what is published, and signs new builds', async () => {
        dir = path.join(root, 'later');
        const unsigned = createFilesystemRepository({ dir, name: NAME });
        await unsigned.init();
        const first = await writeSyntheticPackage(path.join(root, 'later-packages'), {
          name: 'early',
          version: '1.0-1',
        });
        await unsigned.publish([first]);
        await expect(fs.access(path.join(dir, `${path.basename(first)}.sig`))).rejects.toThrow();
        await expect(fs.access(path.join(dir, `${NAME}.db.tar.gz.sig`))).rejects.toThrow();

        // the server restarts with a key
        const repo = createFilesystemRepository({ dir, name: NAME, signer });
        await repo.resign!();
        expect((await repo.list()).every((entry) => entry.signed)).toBe(true);
        const next = await writeSyntheticPackage(path.join(root, 'later-packages'), {
          name: 'late',
          version: '1.0-1',
        });
        await repo.publish([next]);
        await expectVerified(signer, dir, [path.basename(first), path.basename(next)]);

        const sandbox = await trustingSandbox(dir, signer);
        sandboxes.push(sandbox);
        const sync = await sandbox.pacman(['-Sy']);
        expect(sync.code, sync.stderr).toBe(0);
        const installed = await sandbox.pacman([...install, 'early', 'late']);
        expect(installed.code, installed.stderr + installed.stdout).toBe(0);
        expect((await sandbox.pacman(['-Q'])).stdout).toBe('early 1.0-1\nlate 1.0-1\n');
      });
    });
  },
);
