import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPacmanSandbox, hasProgram } from '../testing/pacman.js';
import { writeSyntheticPackage } from '../testing/synthetic-package.js';
import { RepoDatabase } from './database.js';
import { parseIndex, parseRows } from './database-index.js';
import { formatDesc, formatFiles } from './desc.js';
import { readPackage } from './package-reader.js';
import { TAR_END, tarDirectory, tarFile } from './tar.js';

let root: string;
let dir: string;
let pkgs: string;

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-db-'));
  dir = path.join(root, 'repo');
  pkgs = path.join(root, 'pkgs');
  await fs.mkdir(dir);
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const dbFile = () => path.join(dir, 'test.db.tar.gz');

/** The files of a database archive (`entry/file -> contents`), read with zlib and a minimal tar parser. */
async function contentsOf(archive: string): Promise<Map<string, string>> {
  // zlib reads concatenated gzip members as one stream, as libarchive does
  const tar = zlib.gunzipSync(await fs.readFile(archive));
  const result = new Map<string, string>();
  let longName: string | undefined;
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const size = Number.parseInt(header.toString('ascii', 124, 136).replace(/\0.*$/, ''), 8);
    const type = String.fromCharCode(header[156]!);
    const data = tar.subarray(offset + 512, offset + 512 + size);
    const name = longName ?? header.toString('utf8', 0, 100).replace(/\0.*$/, '');
    longName = undefined;
    if (type === 'x') longName = /path=(.*)\n/.exec(data.toString('utf8'))?.[1];
    else if (type === '0') result.set(name, data.toString('utf8'));
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return new Map([...result].sort(([a], [b]) => (a < b ? -1 : 1)));
}

describe('RepoDatabase', () => {
  it('refuses a path that is not NAME.db.tar.gz, or a missing folder', async () => {
    expect((await errorOf(RepoDatabase.open(path.join(dir, 'test.db')))).name).toBe('InputError');
    expect((await errorOf(RepoDatabase.open(path.join(dir, 'test.db.tar.zst')))).message).toMatch(
      /valid database archive extension/,
    );
    expect((await errorOf(RepoDatabase.open(path.join(root, 'nope', 'test.db.tar.gz')))).message).toMatch(
      /does not exist/,
    );
  });

  it('adding one package does not read the other package files (the index keeps them)', async () => {
    // 100 entries: several chunks, and an entry that sorts last changes only the last one
    const files = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        writeSyntheticPackage(pkgs, { name: `p${String(i).padStart(3, '0')}`, version: '1.0-1' }),
      ),
    );
    const db = await RepoDatabase.open(dbFile());
    await db.add(files);
    const before = await fs.readFile(dbFile());
    // the others' files are gone: a writer that re-read them would fail
    for (const file of files) await fs.rm(file);
    const extra = await writeSyntheticPackage(pkgs, { name: 'zzz', version: '1.0-1' });
    const again = await RepoDatabase.open(dbFile());
    await again.add([extra]);
    expect((await again.list()).map((entry) => entry.name)).toContain('zzz');
    expect((await again.list()).length).toBe(101);
    // the other entries' compressed bytes were carried over unchanged
    const after = await fs.readFile(dbFile());
    const endMember = zlib.gzipSync(TAR_END, { level: 6 }).length;
    expect(after.subarray(0, 200).equals(before.subarray(0, 200))).toBe(true);
    expect(after.length).toBeGreaterThan(before.length - endMember);
  });

  it('keeps entries right through many adds, replacements and removes across chunks', async () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const name = (i: number) => `r${String(i).padStart(3, '0')}`;
    const current = new Map<string, string>();
    const make = async (i: number, version: string) =>
      writeSyntheticPackage(path.join(pkgs, version), {
        name: name(i),
        version,
        depends: [`${name(random(200))}>=1`],
        files: { [`usr/share/${name(i)}/${'x'.repeat(random(120))}`]: `${i}\n` },
      });
    const initial = await Promise.all(Array.from({ length: 150 }, (_, i) => make(i * 2, '1.0-1')));
    for (const [i, file] of initial.entries()) current.set(name(i * 2), file);
    await (await RepoDatabase.open(dbFile())).add(initial);
    for (let step = 0; step < 40; step++) {
      const db = await RepoDatabase.open(dbFile());
      const names = [...current.keys()];
      const action = step === 20 ? 3 : random(3);
      if (action === 3) {
        // many at once: 20 removed, 20 added (entries are found without reading every chunk's rows)
        const doomed = names.filter((_, k) => k % 5 === 0).slice(0, 20);
        await db.remove(doomed);
        for (const doomedName of doomed) current.delete(doomedName);
        const picks = Array.from({ length: 20 }, (_, k) => 1 + k * 14);
        const files = await Promise.all(picks.map((i) => make(i, `${2 + step}.0-1`)));
        await (await RepoDatabase.open(dbFile())).add(files);
        for (const [k, i] of picks.entries()) current.set(name(i), files[k]!);
      } else if (action === 0 && names.length > 0) {
        // removes a few, from anywhere
        const doomed = [
          ...new Set(Array.from({ length: 1 + random(4) }, () => names[random(names.length)]!)),
        ];
        await db.remove(doomed);
        for (const doomedName of doomed) current.delete(doomedName);
      } else {
        // adds new names (odd numbers sort between the others, 300+ after them) or new versions
        const picks = [...new Set(Array.from({ length: 1 + random(3) }, () => random(320)))];
        const files = await Promise.all(picks.map((i) => make(i, `${2 + step}.0-1`)));
        await db.add(files);
        for (const [k, i] of picks.entries()) current.set(name(i), files[k]!);
      }
    }
    // the same as a database written at once from the same packages
    const fresh = path.join(root, 'fresh');
    await fs.mkdir(fresh);
    await (await RepoDatabase.open(path.join(fresh, 'test.db.tar.gz'))).add([...current.values()]);
    for (const kind of ['db', 'files']) {
      const mine = await contentsOf(path.join(dir, `test.${kind}.tar.gz`));
      expect(mine).toEqual(await contentsOf(path.join(fresh, `test.${kind}.tar.gz`)));
      expect([...mine.keys()].filter((file) => file.endsWith('/desc'))).toHaveLength(current.size);
    }
    expect((await (await RepoDatabase.open(dbFile())).list()).map((entry) => entry.name)).toEqual(
      [...current.keys()].sort(),
    );
    // and chunked: neither one member per entry nor one for all
    const index = parseIndex(await fs.readFile(path.join(dir, '.test.serene-index')));
    const sizes = index!.chunks.map((chunk) => parseRows(chunk.rows).length);
    expect(sizes.length).toBeGreaterThan(2);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(64);
  }, 60_000);

  it('reads a database written by the previous version (one member per entry, index version 1) and upgrades it', async () => {
    const files = await Promise.all(
      Array.from({ length: 12 }, (_, i) => writeSyntheticPackage(pkgs, { name: `v${i}`, version: '1.0-1' })),
    );
    // the previous writer's layout, byte for byte: a gzip member per entry, then the end member
    const mtime = 1_700_000_000;
    const members = { db: [] as Buffer[], files: [] as Buffer[] };
    const entries: Record<string, unknown>[] = [];
    const offsets = { db: 0, files: 0 };
    const read = await Promise.all(files.map((file) => readPackage(file)));
    // sorted as the previous writer did: bytewise by entry directory
    read.sort((a, b) => Buffer.compare(Buffer.from(a.pkginfo.pkgname), Buffer.from(b.pkginfo.pkgname)));
    for (const pkg of read) {
      const dirName = `${pkg.pkginfo.pkgname}-${pkg.pkginfo.pkgver}`;
      const desc = Buffer.from(formatDesc(pkg));
      const head = [...tarDirectory(`${dirName}/`, mtime), ...tarFile(`${dirName}/desc`, desc, mtime)];
      const db = zlib.gzipSync(Buffer.concat(head), { level: 6 });
      const withFiles = Buffer.concat([
        ...head,
        ...tarFile(`${dirName}/files`, Buffer.from(formatFiles(pkg.files)), mtime),
      ]);
      const filesMember = zlib.gzipSync(withFiles, { level: 6 });
      entries.push({
        name: pkg.pkginfo.pkgname,
        version: pkg.pkginfo.pkgver,
        filename: pkg.filename,
        base: pkg.pkginfo.pkgbase,
        arch: pkg.pkginfo.arch,
        signed: false,
        db: [offsets.db, db.length],
        files: [offsets.files, filesMember.length],
      });
      members.db.push(db);
      members.files.push(filesMember);
      offsets.db += db.length;
      offsets.files += filesMember.length;
    }
    const end = zlib.gzipSync(TAR_END, { level: 6 });
    const filesPath = path.join(dir, 'test.files.tar.gz');
    await fs.writeFile(dbFile(), Buffer.concat([...members.db, end]));
    await fs.writeFile(filesPath, Buffer.concat([...members.files, end]));
    const fingerprint = async (file: string) => {
      const stat = await fs.stat(file);
      return { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino };
    };
    const indexPath = path.join(dir, '.test.serene-index.json');
    await fs.writeFile(
      indexPath,
      JSON.stringify({
        version: 1,
        db: await fingerprint(dbFile()),
        files: await fingerprint(filesPath),
        entries,
      }),
    );
    const before = { db: await contentsOf(dbFile()), files: await contentsOf(filesPath) };

    const db = await RepoDatabase.open(dbFile());
    expect((await db.list()).map((entry) => entry.name)).toEqual(files.map((_, i) => `v${i}`).sort());
    const extra = await writeSyntheticPackage(pkgs, { name: 'v99', version: '1.0-1' });
    await db.add([extra]);
    await db.remove(['v3']);
    expect(parseIndex(await fs.readFile(path.join(dir, '.test.serene-index')))).toBeDefined();
    await expect(fs.access(indexPath)).rejects.toThrow();
    // every old entry carried over as it was, with the change applied
    const after = { db: await contentsOf(dbFile()), files: await contentsOf(filesPath) };
    for (const kind of ['db', 'files'] as const) {
      const expected = new Map(before[kind]);
      for (const file of ['desc', 'files']) expected.delete(`v3-1.0-1/${file}`);
      const added = [...after[kind]].filter(([file]) => file.startsWith('v99-'));
      expect(added).toHaveLength(kind === 'db' ? 1 : 2);
      expect(new Map([...after[kind]].filter(([file]) => !file.startsWith('v99-')))).toEqual(expected);
    }
  });

  it('gives every database version a later whole-second mtime, so pacman never takes a new one for the old', async () => {
    const a = await writeSyntheticPackage(pkgs, { name: 'alpha', version: '1.0-1' });
    const b = await writeSyntheticPackage(pkgs, { name: 'beta', version: '1.0-1' });
    const db = await RepoDatabase.open(dbFile());
    const seconds = async () => Math.floor((await fs.stat(dbFile())).mtimeMs / 1000);
    await db.add([a]);
    const first = await seconds();
    await db.add([b]);
    const second = await seconds();
    await db.remove(['alpha']);
    const third = await seconds();
    expect(second).toBeGreaterThan(first);
    expect(third).toBeGreaterThan(second);
    expect(
      Math.floor((await fs.stat(path.join(dir, 'test.files.tar.gz'))).mtimeMs / 1000),
    ).toBeGreaterThanOrEqual(third - 1);
    // the kept .old is the previous version, with its own mtime
    expect(Math.floor((await fs.stat(`${dbFile()}.old`)).mtimeMs / 1000)).toBe(second);
  });

  it('notices a database changed behind its back and re-reads it', async () => {
    const a = await writeSyntheticPackage(pkgs, { name: 'alpha', version: '1.0-1' });
    const b = await writeSyntheticPackage(pkgs, { name: 'beta', version: '1.0-1' });
    const db = await RepoDatabase.open(dbFile());
    await db.add([a]);
    // another writer replaces the database with one that lists beta only
    const other = path.join(root, 'other');
    await fs.mkdir(other);
    const otherDb = await RepoDatabase.open(path.join(other, 'test.db.tar.gz'));
    await otherDb.add([b]);
    for (const kind of ['db', 'files']) {
      await fs.copyFile(path.join(other, `test.${kind}.tar.gz`), path.join(dir, `test.${kind}.tar.gz`));
    }
    expect((await db.list()).map((entry) => entry.name)).toEqual(['beta']);
  });

  it('refuses a database that is not one and leaves it as it was', async () => {
    await fs.writeFile(dbFile(), 'not a database at all');
    const a = await writeSyntheticPackage(pkgs, { name: 'alpha', version: '1.0-1' });
    const db = await RepoDatabase.open(dbFile());
    const error = await errorOf(db.add([a]));
    expect(error.name).toBe('InvalidDatabaseError');
    expect(error.message).toMatch(/not a proper pacman database/);
    expect(await fs.readFile(dbFile(), 'utf8')).toBe('not a database at all');
    // a tar.gz with foreign members is not one either
    await fs.writeFile(
      dbFile(),
      zlib.gzipSync(Buffer.concat([...tarFile('etc/passwd', Buffer.from('x'), 0), TAR_END])),
    );
    expect((await errorOf(db.add([a]))).name).toBe('InvalidDatabaseError');
  });

  it('refuses hostile package metadata without touching the database', async () => {
    const good = await writeSyntheticPackage(pkgs, { name: 'alpha', version: '1.0-1' });
    const db = await RepoDatabase.open(dbFile());
    await db.add([good]);
    const before = await fs.readFile(dbFile());
    await fs.mkdir(path.join(pkgs, 'bad'), { recursive: true });
    for (const name of ['../evil', 'a/b', '.hidden']) {
      // a package whose .PKGINFO names it dangerously, made by hand
      const hostile = path.join(pkgs, 'bad', 'hostile.pkg.tar.gz');
      const pkginfo = `pkgname = ${name}\npkgver = 1.0-1\narch = x86_64\n`;
      await fs.writeFile(
        hostile,
        zlib.gzipSync(Buffer.concat([...tarFile('.PKGINFO', Buffer.from(pkginfo), 0), TAR_END])),
      );
      const error = await errorOf(db.add([hostile]));
      expect(error.name).toBe('InvalidPackageError');
    }
    expect(await fs.readFile(dbFile())).toEqual(before);
  });

  it('implements repo-add -n, -p and -R', async () => {
    const v1 = await writeSyntheticPackage(pkgs, { name: 'alpha', version: '1.0-1' });
    const v2 = await writeSyntheticPackage(pkgs, { name: 'alpha', version: '2.0-1' });
    await fs.writeFile(`${v1}.sig`, Buffer.from([0x89, 0x01, 0x02]));
    const db = await RepoDatabase.open(dbFile());
    await db.add([v1]);
    expect((await db.add([v1], { onlyNew: true })).skipped).toHaveLength(1);
    const up = await db.add([v2], { removeOld: true });
    expect(up.replaced.map((entry) => entry.version)).toEqual(['1.0-1']);
    expect(up.deleted.sort()).toEqual([v1, `${v1}.sig`].sort());
    const v0 = await writeSyntheticPackage(pkgs, { name: 'alpha', version: '0.5-1' });
    expect((await db.add([v0], { preventDowngrade: true })).skipped[0]?.reason).toMatch(/newer version/);
    expect((await db.list()).map((entry) => entry.version)).toEqual(['2.0-1']);
  });

  it('waits for a live lock holder, then fails with LockedError; takes over a dead one', async () => {
    await fs.writeFile(`${dbFile()}.lck`, '1\n'); // pid 1 is alive
    const db = await RepoDatabase.open(dbFile(), { lockTimeoutMs: 200 });
    const error = await errorOf(db.init());
    expect(error.name).toBe('LockedError');
    expect(error.message).toMatch(/held by process 1/);
    // a pid that does not exist: the lock is stale
    await fs.writeFile(`${dbFile()}.lck`, '999999999\n');
    await db.init();
    await expect(fs.access(`${dbFile()}.lck`)).rejects.toThrow();
    expect(await db.list()).toEqual([]);
  });

  it('serializes writers across processes with repo-add (same lock file)', async () => {
    const files = await Promise.all(
      Array.from({ length: 8 }, (_, i) => writeSyntheticPackage(pkgs, { name: `c${i}`, version: '1.0-1' })),
    );
    const a = await RepoDatabase.open(dbFile());
    const b = await RepoDatabase.open(dbFile());
    await Promise.all(files.map((file, i) => (i % 2 === 0 ? a : b).add([file])));
    expect((await a.list()).map((entry) => entry.name)).toEqual(files.map((_, i) => `c${i}`));
  });

  it.skipIf(!hasProgram('pacman'))('an emptied database is still one pacman syncs', async () => {
    const a = await writeSyntheticPackage(pkgs, { name: 'alpha', version: '1.0-1' });
    const db = await RepoDatabase.open(dbFile());
    await db.add([a]);
    await db.remove(['alpha']);
    const sandbox = await createPacmanSandbox([{ name: 'test', server: `file://${dir}` }]);
    try {
      expect((await sandbox.pacman(['-Sy'])).code).toBe(0);
      expect((await sandbox.pacman(['-Sl', 'test'])).stdout).toBe('');
    } finally {
      await sandbox.cleanup();
    }
  });
});
