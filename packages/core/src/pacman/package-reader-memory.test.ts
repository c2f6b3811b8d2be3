// readPackage on packages of hundreds of MiB: it writes and reads about 1.3 GiB, so this runs with
// `npm test`, not in the fast set (vitest.fast.config.ts). The rest of the reader is in
// package-reader.test.ts.
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { pack as tarPack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasProgram } from '../testing/pacman.js';
import { setupMissing } from '../testing/setup.js';
import { readPackage } from './package-reader.js';

const exec = promisify(execFile);
const MB = 1024 * 1024;

const md5sum = async (file: string): Promise<string> => (await exec('md5sum', [file])).stdout.split(' ')[0]!;

/** Runs `work` while sampling the process's RSS; returns its result and the peak growth. */
async function withPeakRss<T>(work: () => Promise<T>): Promise<{ result: T; growth: number }> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, growth: peak - base };
  } finally {
    clearInterval(timer);
  }
}

/** Streams a tar of `.PKGINFO` and one file of `size` zero bytes through `compressor` into `file`. */
async function writeZeroPackage(file: string, size: number, compressor: string[]): Promise<void> {
  const pack = tarPack();
  const out = await fs.open(file, 'w');
  const child = spawn(compressor[0]!, compressor.slice(1), { stdio: ['pipe', out.fd, 'inherit'] });
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${compressor[0]} exit ${code}`)),
    );
  });
  const producing = (async () => {
    pack.entry({ name: '.PKGINFO' }, 'pkgname = zeros\npkgver = 1-1\n');
    const entry = pack.entry({ name: 'usr/share/zeros', size });
    const zeros = Buffer.alloc(MB);
    for (let left = size; left > 0; left -= zeros.length) {
      if (!entry.write(left >= zeros.length ? zeros : zeros.subarray(0, left))) {
        await new Promise((resolve) => entry.once('drain', resolve));
      }
    }
    entry.end();
    pack.finalize();
  })();
  await Promise.all([pipeline(pack, child.stdin), exited, producing]);
  await out.close();
}

const SUITE = 'readPackage with bounded memory';
const missing = ['bsdtar', 'zstd', 'xz', 'gzip', 'md5sum'].filter((tool) => !hasProgram(tool));
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-reader-memory-'));
});

afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

// these tests make their packages with Debian's libarchive tools and compressors; `npm test` installs them
describe.skipIf(setupMissing(SUITE, missing))(
  `${SUITE} (missing tools: ${missing.join(', ') || 'none'})`,
  () => {
    it('reads a 256 MiB package with little memory, by either zstd decoder', async () => {
      const work = await fs.mkdtemp(path.join(dir, 'big-'));
      const file = path.join(work, 'big-1-1-any.pkg.tar.zst');
      // random data: incompressible, so the package is as large as its payload
      await exec('sh', [
        '-c',
        `cd "$1" && printf 'pkgname = big\\npkgver = 1-1\\n' > .PKGINFO && mkdir -p usr/share &&
       head -c 256M /dev/urandom > usr/share/payload &&
       bsdtar -cf - .PKGINFO usr | zstd -1 -T0 -q -c > "$2" && rm -r usr`,
        'sh',
        work,
        file,
      ]);
      const md5 = await md5sum(file);
      for (const externalZstd of [true, false]) {
        const started = performance.now();
        const { result, growth } = await withPeakRss(() => readPackage(file, { externalZstd }));
        const seconds = (performance.now() - started) / 1000;
        console.info(
          `256 MiB zstd package (${externalZstd ? 'zstd program' : 'fzstd'}): ${seconds.toFixed(1)} s, ` +
            `${(result.csize / MB / seconds).toFixed(0)} MiB/s, RSS growth ${(growth / MB).toFixed(0)} MiB`,
        );
        expect(result.files).toEqual(['usr/', 'usr/share/', 'usr/share/payload']);
        expect(result.md5).toBe(md5);
        expect(growth).toBeLessThan(128 * MB);
      }
      const quick = await withPeakRss(() => readPackage(file, { files: false }));
      expect(quick.result.md5).toBe(md5);
      expect(quick.growth).toBeLessThan(128 * MB);
    }, 300_000);

    it('decompresses highly compressible packages without buffering their output', async () => {
      const cases: [string, string[], number][] = [
        ['zeros.pkg.tar.zst', ['zstd', '-q', '-1', '-c'], 512 * MB],
        ['zeros.pkg.tar.gz', ['gzip', '-1', '-c'], 256 * MB],
        ['zeros.pkg.tar.xz', ['xz', '-0', '-c'], 256 * MB],
      ];
      for (const [name, compressor, size] of cases) {
        const file = path.join(dir, name);
        await writeZeroPackage(file, size, compressor);
        const started = performance.now();
        const { result, growth } = await withPeakRss(() => readPackage(file));
        const seconds = (performance.now() - started) / 1000;
        console.info(
          `${size / MB} MiB of zeros as ${name} (${(result.csize / 1024).toFixed(0)} KiB): ` +
            `${seconds.toFixed(1)} s, RSS growth ${(growth / MB).toFixed(0)} MiB`,
        );
        expect(result.files).toEqual(['usr/share/zeros']);
        expect(growth).toBeLessThan(128 * MB);
        await fs.rm(file);
      }
    }, 300_000);
  },
);
