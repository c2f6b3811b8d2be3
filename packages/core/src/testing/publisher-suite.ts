import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Publisher } from '../contracts/publisher.js';
import type { Signer } from '../contracts/signer.js';
import { verifyWithGpg } from './gpg.js';
import { createPacmanSandbox, hasProgram } from './pacman.js';
import { writeSyntheticPackage } from './synthetic-package.js';

/** What a publisher under test is created with. */
export interface PublisherContext {
  /** an empty folder for the repository */
  dir: string;
  /** repository name */
  name: string;
  signer?: Signer | undefined;
}

/** Options of {@link testPublisher}. */
export interface PublisherSuiteOptions {
  create: (context: PublisherContext) => Promise<Publisher> | Publisher;
  /** when given, the suite also runs with signing on */
  signer?: () => Promise<Signer>;
  additionalTests?: (context: {
    publisher: () => Publisher;
    dir: () => string;
    packages: () => string;
  }) => void;
}

const NAME = 'conform';

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

/**
 * The `Publisher` conformance suite: every implementation runs it. Where real pacman is installed,
 * pacman itself reads the published repository.
 */
export function testPublisher(name: string, options: PublisherSuiteOptions): void {
  const variants: { label: string; signed: boolean }[] = [{ label: 'unsigned', signed: false }];
  if (options.signer) variants.push({ label: 'signed', signed: true });

  for (const variant of variants) {
    describe(`Publisher conformance: ${name} (${variant.label})`, () => {
      let root: string;
      let dir: string;
      let packages: string;
      let publisher: Publisher;
      let signer: Signer | undefined;

      beforeEach(async () => {
        root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-publisher-'));
        dir = path.join(root, 'repo');
        packages = path.join(root, 'packages');
        await fs.mkdir(dir);
        signer = variant.signed ? await options.signer!() : undefined;
        publisher = await options.create({ dir, name: NAME, signer });
        await publisher.init();
      });
      afterEach(async () => {
        await publisher?.dispose?.();
        await signer?.dispose?.();
        await fs.rm(root, { recursive: true, force: true });
      });

      const pacmanList = async (): Promise<string> => {
        const sandbox = await createPacmanSandbox([{ name: NAME, server: `file://${dir}` }]);
        try {
          const sync = await sandbox.pacman(['-Sy']);
          expect(sync.code, sync.stderr).toBe(0);
          const list = await sandbox.pacman(['-Sl', NAME]);
          expect(list.code, list.stderr).toBe(0);
          return list.stdout;
        } finally {
          await sandbox.cleanup();
        }
      };

      it('init creates an empty database with its links, and is idempotent', async () => {
        await publisher.init();
        expect(await publisher.list()).toEqual([]);
        expect(await fs.readlink(path.join(dir, `${NAME}.db`))).toBe(`${NAME}.db.tar.gz`);
        expect(await fs.readlink(path.join(dir, `${NAME}.files`))).toBe(`${NAME}.files.tar.gz`);
        await fs.access(path.join(dir, `${NAME}.db`));
        if (hasProgram('pacman')) expect(await pacmanList()).toBe('');
      });

      it('publishes packages, copies their files, and lists them', async () => {
        const a = await writeSyntheticPackage(packages, { name: 'alpha', version: '1.0-1' });
        const b = await writeSyntheticPackage(packages, { name: 'beta', version: '1:2.0-3', arch: 'any' });
        const result = await publisher.publish([a, b]);
        expect(result.added.map((entry) => entry.name).sort()).toEqual(['alpha', 'beta']);
        expect(result.replaced).toEqual([]);
        const list = await publisher.list();
        expect(list.map((entry) => [entry.name, entry.version, entry.filename])).toEqual([
          ['alpha', '1.0-1', path.basename(a)],
          ['beta', '1:2.0-3', path.basename(b)],
        ]);
        for (const entry of list) {
          await fs.access(path.join(dir, entry.filename));
          expect(entry.signed).toBe(variant.signed);
        }
        if (hasProgram('pacman')) {
          expect(await pacmanList()).toBe(`${NAME} alpha 1.0-1\n${NAME} beta 1:2.0-3\n`);
        }
      });

      it('replaces an older version and deletes its file', async () => {
        const old = await writeSyntheticPackage(packages, { name: 'alpha', version: '1.0-1' });
        await publisher.publish([old]);
        const next = await writeSyntheticPackage(packages, { name: 'alpha', version: '1.1-1' });
        const result = await publisher.publish([next]);
        expect(result.replaced.map((entry) => entry.version)).toEqual(['1.0-1']);
        expect((await publisher.list()).map((entry) => entry.version)).toEqual(['1.1-1']);
        await expect(fs.access(path.join(dir, path.basename(old)))).rejects.toThrow();
        await expect(fs.access(path.join(dir, `${path.basename(old)}.sig`))).rejects.toThrow();
        await fs.access(path.join(dir, path.basename(next)));
      });

      it('refuses a file that is not a package and changes nothing', async () => {
        const good = await writeSyntheticPackage(packages, { name: 'alpha', version: '1.0-1' });
        await publisher.publish([good]);
        const before = await fs.readFile(path.join(dir, `${NAME}.db.tar.gz`));
        const bad = path.join(packages, 'bad-1.0-1-x86_64.pkg.tar.zst');
        await fs.writeFile(bad, 'this is not a package');
        const other = await writeSyntheticPackage(packages, { name: 'gamma', version: '1.0-1' });
        const error = await errorOf(publisher.publish([other, bad]));
        expect(error.name).toBe('InvalidPackageError');
        expect(error.message).toContain('bad-1.0-1-x86_64.pkg.tar.zst');
        expect((await publisher.list()).map((entry) => entry.name)).toEqual(['alpha']);
        expect(await fs.readFile(path.join(dir, `${NAME}.db.tar.gz`))).toEqual(before);
        await expect(fs.access(path.join(dir, path.basename(other)))).rejects.toThrow();
      });

      it('removes packages with their files; an unknown name changes nothing', async () => {
        const a = await writeSyntheticPackage(packages, { name: 'alpha', version: '1.0-1' });
        const b = await writeSyntheticPackage(packages, { name: 'beta', version: '1.0-1' });
        await publisher.publish([a, b]);
        const error = await errorOf(publisher.remove(['alpha', 'nope']));
        expect(error.name).toBe('NotFoundError');
        expect((await publisher.list()).map((entry) => entry.name)).toEqual(['alpha', 'beta']);
        const removed = await publisher.remove(['alpha']);
        expect(removed.map((entry) => entry.name)).toEqual(['alpha']);
        expect((await publisher.list()).map((entry) => entry.name)).toEqual(['beta']);
        await expect(fs.access(path.join(dir, path.basename(a)))).rejects.toThrow();
        if (hasProgram('pacman')) expect(await pacmanList()).toBe(`${NAME} beta 1.0-1\n`);
      });

      it('serializes concurrent publishes without losing any', async () => {
        const files = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            writeSyntheticPackage(packages, { name: `pkg${String(i).padStart(2, '0')}`, version: '1.0-1' }),
          ),
        );
        await Promise.all(files.map((file) => publisher.publish([file])));
        expect((await publisher.list()).map((entry) => entry.name)).toEqual(
          files.map((_, i) => `pkg${String(i).padStart(2, '0')}`),
        );
      });

      if (variant.signed) {
        it('signs packages and the database, with links that resolve', async () => {
          const a = await writeSyntheticPackage(packages, { name: 'alpha', version: '1.0-1' });
          await publisher.publish([a]);
          const key = await signer!.publicKey();
          const published = path.join(dir, path.basename(a));
          expect(await verifyWithGpg(key, published, `${published}.sig`)).toBe(true);
          for (const kind of ['db', 'files']) {
            const archive = path.join(dir, `${NAME}.${kind}.tar.gz`);
            expect(await verifyWithGpg(key, archive, `${archive}.sig`)).toBe(true);
            // the link resolves (the original's dangled)
            expect(await verifyWithGpg(key, archive, path.join(dir, `${NAME}.${kind}.sig`))).toBe(true);
          }
        });
      }

      options.additionalTests?.({ publisher: () => publisher, dir: () => dir, packages: () => packages });
    });
  }
}
