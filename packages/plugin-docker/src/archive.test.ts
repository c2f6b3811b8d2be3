import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { mountTmpfs, tmpfsSupport } from '@serene/core/testing';
import { pack } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inputFiles, packInputs, readSingleFile, unpackOutputs } from './archive.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-archive-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Unpacks a tar stream into a folder with the real tar program. */
async function untar(stream: Readable, into: string): Promise<void> {
  const { spawn } = await import('node:child_process');
  await fs.mkdir(into, { recursive: true });
  const child = spawn('tar', ['-x', '-p', '-C', into], { stdio: ['pipe', 'ignore', 'inherit'] });
  stream.pipe(child.stdin);
  await new Promise<void>((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar exited ${code}`)))),
  );
}

describe('packInputs', () => {
  it('packs the source tree with modes and links, then the generated files read-only', async () => {
    const source = path.join(dir, 'source');
    await fs.mkdir(path.join(source, 'patches'), { recursive: true });
    await fs.writeFile(path.join(source, 'PKGBUILD'), 'pkgname=x\n');
    await fs.writeFile(path.join(source, 'patches', 'fix.patch'), 'diff\n');
    await fs.writeFile(path.join(source, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    await fs.symlink('PKGBUILD', path.join(source, 'link'));
    const generated = inputFiles({
      customRepo: '[serene]\n',
      prepare: 'echo hi\n',
      makepkgFlags: '--nocheck ',
    });
    const out = path.join(dir, 'out');
    await untar(await packInputs(source, generated), out);
    expect(await fs.readFile(path.join(out, 'PKGBUILD'), 'utf8')).toBe('pkgname=x\n');
    expect(await fs.readFile(path.join(out, 'patches', 'fix.patch'), 'utf8')).toBe('diff\n');
    expect((await fs.stat(path.join(out, 'run.sh'))).mode & 0o777).toBe(0o755);
    expect(await fs.readlink(path.join(out, 'link'))).toBe('PKGBUILD');
    expect(await fs.readFile(path.join(out, 'custom-repo'), 'utf8')).toBe('[serene]\n');
    expect(await fs.readFile(path.join(out, 'serene-prepare.sh'), 'utf8')).toBe('echo hi\n');
    expect(await fs.readFile(path.join(out, 'makepkg-flags'), 'utf8')).toBe('--nocheck ');
    expect((await fs.stat(path.join(out, 'makepkg-flags'))).mode & 0o777).toBe(0o444);
  });

  it('rejects when the source folder is missing, before streaming', async () => {
    await expect(packInputs(path.join(dir, 'nope'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

function targetArchive(files: Record<string, string>): Readable {
  const archive = pack();
  archive.entry({ name: 'target/', type: 'directory' });
  for (const [name, text] of Object.entries(files)) archive.entry({ name: `target/${name}` }, text);
  archive.finalize();
  return archive as unknown as Readable;
}

describe('unpackOutputs', () => {
  it('keeps .SRCINFO and the stats, writes the package files, skips the rest', async () => {
    const outputs = await unpackOutputs(
      targetArchive({
        '.SRCINFO': 'pkgbase = x\n',
        '.stats-after.json': '{"memory_bytes_peak":2}',
        '.stats-before.json': '{"memory_bytes_peak":1}',
        'x-1.0-1-any.pkg.tar.zst': 'zstd bytes',
        'x-debug-1.0-1-x86_64.pkg.tar.xz': 'xz bytes',
        'notes.txt': 'ignored',
      }),
      path.join(dir, 'out'),
    );
    expect(outputs.srcinfo).toBe('pkgbase = x\n');
    expect(outputs.statsBefore).toEqual({ memory_bytes_peak: 1 });
    expect(outputs.statsAfter).toEqual({ memory_bytes_peak: 2 });
    expect(outputs.packages.map((file) => path.basename(file))).toEqual([
      'x-1.0-1-any.pkg.tar.zst',
      'x-debug-1.0-1-x86_64.pkg.tar.xz',
    ]);
    expect(await fs.readFile(outputs.packages[0]!, 'utf8')).toBe('zstd bytes');
    expect((await fs.readdir(path.join(dir, 'out'))).sort()).toEqual([
      'x-1.0-1-any.pkg.tar.zst',
      'x-debug-1.0-1-x86_64.pkg.tar.xz',
    ]);
  });

  it('reports what is missing as null, and a broken stats file as null', async () => {
    const outputs = await unpackOutputs(
      targetArchive({ '.stats-before.json': '{not json' }),
      path.join(dir, 'out'),
    );
    expect(outputs).toEqual({ srcinfo: null, statsBefore: null, statsAfter: null, packages: [] });
  });

  it('reads the single file of a one-file archive', async () => {
    const archive = pack();
    archive.entry({ name: '.SRCINFO' }, 'pkgbase = y\n');
    archive.finalize();
    expect(await readSingleFile(archive as unknown as Readable)).toBe('pkgbase = y\n');
  });

  describe('a build is untrusted: what it leaves is bounded', () => {
    const limits = { srcinfoBytes: 1024, statsBytes: 256, entries: 20, packageBytes: 4096 };

    async function failure(archive: Readable, out = path.join(dir, 'out')) {
      const error = await unpackOutputs(archive, out, limits).then(
        () => undefined,
        (caught: unknown) => caught as Error & { code?: string },
      );
      expect(error, 'expected a rejection').toBeDefined();
      return error!;
    }

    it('a .SRCINFO declaring gigabytes is refused from its header, without reading it', async () => {
      const archive = pack();
      // 8 GiB declared, then bytes that never end: reading it would not finish (nor fit in memory)
      const entry = archive.entry({ name: 'target/.SRCINFO', size: 8 * 1024 ** 3 });
      // the entry is cut off when the reader gives up: that is the point
      entry.on('error', () => undefined);
      const chunk = Buffer.alloc(1 << 16, 0x61);
      const feed = () => {
        while (entry.write(chunk)) {}
      };
      entry.on('drain', feed);
      feed();
      const error = await failure(archive as unknown as Readable);
      expect(error.name).toBe('BuildOutputError');
      expect(error.code).toBe('SERENE_ERR_BUILD_OUTPUT');
      expect(error.message).toBe("the build's .SRCINFO is larger than 1 KiB; nothing was published");
      await expect(readSingleFile(targetArchive({ '.SRCINFO': 'x'.repeat(2048) }), 1024)).rejects.toThrow(
        /larger than 1 KiB/,
      );
      archive.destroy();
    });

    it('a stats file over its limit, too many files, package files over their total', async () => {
      expect(
        (await failure(targetArchive({ '.stats-after.json': `{"a":"${'b'.repeat(300)}"}` }))).message,
      ).toBe("the build's .stats-after.json is larger than 256 bytes; nothing was published");
      const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`junk-${i}`, 'x']));
      expect((await failure(targetArchive(many))).message).toBe(
        'the build left more than 20 files in its output; nothing was published',
      );
      const big = await failure(
        targetArchive({
          'a-1-1-any.pkg.tar.zst': 'a'.repeat(3000),
          'b-1-1-any.pkg.tar.zst': 'b'.repeat(3000),
        }),
        path.join(dir, 'big'),
      );
      expect(big.message).toBe(
        "the build's package files are larger than 4 KiB together; nothing was published",
      );
      // no partial package file is left
      expect((await fs.readdir(path.join(dir, 'big'))).filter((name) => name.startsWith('.tmp.'))).toEqual(
        [],
      );
    });

    const tmpfs = tmpfsSupport();
    it.skipIf(!tmpfs.ok && process.env.CI !== 'true')(
      tmpfs.ok
        ? 'package files larger than the disk: DiskFullError naming the file, no partial file left (a real tmpfs)'
        : `package files larger than the disk (skipped: ${tmpfs.reason})`,
      async () => {
        const disk = await mountTmpfs(64);
        try {
          const out = path.join(disk.dir, 'out');
          const error = await unpackOutputs(
            targetArchive({ 'huge-1-1-any.pkg.tar.zst': 'z'.repeat(256 * 1024) }),
            out,
          ).then(
            () => undefined,
            (caught: unknown) => caught as Error & { path?: string },
          );
          expect(error?.name).toBe('DiskFullError');
          expect(error?.message).toMatch(/huge-1-1-any\.pkg\.tar\.zst' \(the disk is full\)/);
          expect(await fs.readdir(out)).toEqual([]);
        } finally {
          await disk.unmount();
        }
      },
    );
  });
});
