/**
 * The decompressors of the package reader (zstd, xz, gzip, bzip2, none, told by magic bytes): each
 * feeds the tar walker until it wants no more or the input ends; large zstd packages may go through
 * the `zstd` program.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { ReadableStream } from 'node:stream/web';
import * as zlib from 'node:zlib';
import type { Decompress as ZstdDecompressType } from 'fzstd';
import { FileSource } from './package-file-source.js';
import { PackageFormatError, ZSTD_MAX_WINDOW } from './package-format.js';

type Compression = 'zstd' | 'xz' | 'gzip' | 'bzip2' | 'none';

export function detectCompression(head: Uint8Array): Compression {
  const at = (i: number) => head[i];
  if (at(0) === 0x28 && at(1) === 0xb5 && at(2) === 0x2f && at(3) === 0xfd) return 'zstd';
  if (at(0) === 0xfd && at(1) === 0x37 && at(2) === 0x7a && at(3) === 0x58 && at(4) === 0x5a && at(5) === 0) {
    return 'xz';
  }
  if (at(0) === 0x1f && at(1) === 0x8b) return 'gzip';
  if (at(0) === 0x42 && at(1) === 0x5a && at(2) === 0x68) return 'bzip2';
  return 'none';
}

/** Feeds decompressed chunks to the walker; returns false once no more are wanted. */
export type Sink = (chunk: Uint8Array) => boolean;

export interface Input {
  first: Buffer;
  source: FileSource;
  /** `first` is the whole file */
  whole: boolean;
}

async function* chunksOf(input: Input): AsyncGenerator<Buffer> {
  yield input.first;
  for (;;) {
    const chunk = await input.source.next();
    if (chunk === undefined) return;
    yield chunk;
  }
}

export async function decodeNone(input: Input, sink: Sink): Promise<void> {
  for await (const chunk of chunksOf(input)) if (!sink(chunk)) return;
}

/**
 * Follows zstd frame and block headers as the compressed bytes go by, so that a frame asking for
 * more than libzstd's default window (128 MiB, which bsdtar enforces too) is refused before fzstd
 * allocates it, and so that a stream cut between frames is told from a complete one.
 */
class ZstdFrameGuard {
  private header = new Uint8Array(18);
  private headerLength = 0;
  private inBlocks = false;
  private skip = 0;
  private checksum = false;

  /**
   * Checks the next compressed bytes. Returns -1 when they are fine, else the offset in `chunk` up
   * to which they may still be decompressed (where the offending header starts) and sets `error`.
   */
  feed(chunk: Uint8Array): number {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - i);
        i += k;
        this.skip -= k;
        continue;
      }
      const headerStart = Math.max(0, i - this.headerLength);
      this.header[this.headerLength++] = chunk[i++]!;
      const h = this.header;
      if (this.inBlocks) {
        if (this.headerLength < 3) continue;
        const bits = h[0]! | (h[1]! << 8) | (h[2]! << 16);
        const type = (bits >> 1) & 3;
        const size = bits >>> 3;
        if (type === 3) return this.fail(headerStart, 'corrupt zstd data (reserved block type)');
        if (size > 128 * 1024) return this.fail(headerStart, 'corrupt zstd data (block too large)');
        this.headerLength = 0;
        this.skip = type === 1 ? 1 : size;
        if (bits & 1) {
          this.skip += this.checksum ? 4 : 0;
          this.inBlocks = false;
        }
        continue;
      }
      if (this.headerLength < 5) continue;
      const magic = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
      if ((magic & 0xfffffff0) === 0x184d2a50) {
        if (this.headerLength < 8) continue;
        this.skip = (h[4]! | (h[5]! << 8) | (h[6]! << 16) | (h[7]! << 24)) >>> 0;
        this.headerLength = 0;
        continue;
      }
      if (magic !== 0xfd2fb528) return this.fail(headerStart, 'corrupt zstd data (bad frame magic)');
      const descriptor = h[4]!;
      if (descriptor & 0x08) return this.fail(headerStart, 'corrupt zstd data (reserved frame header bit)');
      const singleSegment = (descriptor >> 5) & 1;
      const fcsFlag = descriptor >> 6;
      const dictBytes = [0, 1, 2, 4][descriptor & 3]!;
      const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
      const headerSize = 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
      if (this.headerLength < headerSize) continue;
      let window: number;
      if (singleSegment) {
        const at = 5 + dictBytes;
        let fcs = 0;
        for (let k = fcsBytes - 1; k >= 0; k--) fcs = fcs * 256 + h[at + k]!;
        window = fcsBytes === 2 ? fcs + 256 : fcs;
      } else {
        const exponent = h[5]! >> 3;
        const base = 2 ** (10 + exponent);
        window = base + (base / 8) * (h[5]! & 7);
      }
      if (window > ZSTD_MAX_WINDOW) {
        return this.fail(
          headerStart,
          `zstd window of ${window} bytes exceeds the limit of ${ZSTD_MAX_WINDOW}`,
        );
      }
      this.checksum = (descriptor & 0x04) !== 0;
      this.headerLength = 0;
      this.inBlocks = true;
    }
    return -1;
  }

  error: PackageFormatError | undefined;

  private fail(offset: number, message: string): number {
    this.error = new PackageFormatError(message);
    return offset;
  }

  /** Whether the input ended between frames. */
  get complete(): boolean {
    return !this.inBlocks && this.skip === 0 && this.headerLength === 0;
  }
}

/** The smallest zstd window descriptor for at least `size` bytes. */
function windowDescriptor(size: number): number {
  for (let exponent = 0; exponent < 32; exponent++) {
    const base = 2 ** (10 + exponent);
    for (let mantissa = 0; mantissa < 8; mantissa++) {
      if (base + (base / 8) * mantissa >= size) return (exponent << 3) | mantissa;
    }
  }
  return 0xff;
}

/**
 * fzstd allocates (and zeroes, and shifts after every block) a buffer of the frame's whole window:
 * 2 MiB for a package of a few KiB that zstd compressed from a pipe (makepkg's case), which costs
 * more than the rest of reading it. When the whole file is in hand, every frame's block count bounds
 * what it can decompress to (128 KiB a block) and so how far back a match can reach: the window
 * descriptor is lowered to that. The bytes were hashed before this.
 */
function shrinkZstdWindows(data: Uint8Array): void {
  const u32 = (at: number) =>
    (data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16) | (data[at + 3]! << 24)) >>> 0;
  let i = 0;
  while (i + 6 <= data.length) {
    const magic = u32(i);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      if (i + 8 > data.length) return;
      i += 8 + u32(i + 4);
      continue;
    }
    if (magic !== 0xfd2fb528) return;
    const descriptor = data[i + 4]!;
    const singleSegment = (descriptor >> 5) & 1;
    const fcsFlag = descriptor >> 6;
    const dictBytes = [0, 1, 2, 4][descriptor & 3]!;
    const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
    let j = i + 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
    let blocks = 0;
    for (;;) {
      if (j + 3 > data.length) return;
      const bits = data[j]! | (data[j + 1]! << 8) | (data[j + 2]! << 16);
      j += 3 + (((bits >> 1) & 3) === 1 ? 1 : bits >>> 3);
      blocks++;
      if (bits & 1) break;
    }
    if (descriptor & 0x04) j += 4;
    if (!singleSegment) {
      const wd = data[i + 5]!;
      const base = 2 ** (10 + (wd >> 3));
      const declared = base + (base / 8) * (wd & 7);
      const needed = blocks * 128 * 1024;
      if (needed < declared) data[i + 5] = windowDescriptor(needed);
    }
    i = j;
  }
}

// The decoders are loaded on first use: a command that reads no package (or only zst ones through
// the zstd program) does not pay for them at start-up (~100-300 ms on a slow machine).
let fzstd: Promise<{ Decompress: typeof ZstdDecompressType }> | undefined;
type XzModule = typeof import('xz-decompress');
let xzModule: Promise<XzModule> | undefined;

export async function decodeZstd(input: Input, sink: Sink): Promise<void> {
  fzstd ??= import('fzstd');
  const ZstdDecompress = (await fzstd).Decompress;
  const guard = new ZstdFrameGuard();
  let wanted = true;
  let outputError: unknown;
  const decoder = new ZstdDecompress((data) => {
    if (!wanted || data.length === 0) return;
    try {
      wanted = sink(data);
    } catch (error) {
      outputError = error;
      wanted = false;
    }
  });
  const push = (chunk: Uint8Array, final: boolean) => {
    try {
      decoder.push(chunk, final);
    } catch (error) {
      if (outputError !== undefined) throw outputError;
      if (!wanted) return; // bytes after what the walker needed (e.g. after the tar end): ignored
      throw new PackageFormatError(
        `corrupt zstd data (${error instanceof Error ? error.message : String(error)})`,
      );
    }
    if (outputError !== undefined) throw outputError;
  };
  for await (const chunk of chunksOf(input)) {
    const stop = guard.feed(chunk);
    if (input.whole && stop === -1) shrinkZstdWindows(chunk);
    push(stop === -1 ? chunk : chunk.subarray(0, stop), false);
    if (!wanted) return;
    if (guard.error) throw guard.error;
  }
  if (!guard.complete) throw new PackageFormatError('truncated zstd data');
  push(new Uint8Array(0), true);
}

export async function decodeXz(input: Input, sink: Sink): Promise<void> {
  const chunks = chunksOf(input);
  const compressed = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
    },
    { highWaterMark: 0 },
  );
  // xz-decompress serializes all its streams on one WASM context: a stream must always be read to
  // its end or cancelled, or every later xz read would wait forever.
  // a CommonJS module: its exports are the default export of the ES module
  xzModule ??= import('xz-decompress').then((module) => (module as { default?: XzModule }).default ?? module);
  const xzDecompress = await xzModule;
  const stream = new xzDecompress.XzReadableStream(
    compressed as unknown as globalThis.ReadableStream<Uint8Array>,
  );
  const reader = stream.getReader();
  let settled = false;
  let idle = 0;
  try {
    for (;;) {
      let result: Awaited<ReturnType<typeof reader.read>>;
      try {
        result = await reader.read();
      } catch (error) {
        settled = true; // an errored stream has released its context
        if (error instanceof PackageFormatError) throw error;
        throw new PackageFormatError(
          error instanceof TypeError || /error code/.test(String(error))
            ? 'truncated or corrupt xz data'
            : `corrupt xz data (${error instanceof Error ? error.message : String(error)})`,
        );
      }
      if (result.done) {
        settled = true;
        return;
      }
      if (result.value.length === 0) {
        // no progress: xz-embedded reports that as an error on the second call, but do not spin
        if (++idle > 100) throw new PackageFormatError('truncated or corrupt xz data');
        continue;
      }
      idle = 0;
      if (!sink(result.value)) return;
    }
  } finally {
    if (!settled) await reader.cancel().catch(() => undefined);
  }
}

/** Waits for all, then fails with the first failure: nothing is left running in the background. */
async function settleAll(promises: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
}

/** Waits until a writable can take more, or is gone. */
function writable(stream: Writable) {
  return new Promise<void>((resolve) => {
    if (stream.destroyed || !stream.writableNeedDrain) return resolve();
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

export async function decodeGzip(input: Input, sink: Sink): Promise<void> {
  const gunzip = zlib.createGunzip({ chunkSize: 128 * 1024 });
  let stopped = false;
  const finished = new Promise<void>((resolve, reject) => {
    gunzip.on('data', (data: Buffer) => {
      if (stopped) return;
      try {
        if (!sink(data)) {
          stopped = true;
          gunzip.destroy();
          resolve();
        }
      } catch (error) {
        stopped = true;
        gunzip.destroy();
        reject(error);
      }
    });
    gunzip.on('end', resolve);
    gunzip.on('close', resolve);
    gunzip.on('error', (error) => {
      if (stopped) return resolve();
      stopped = true;
      reject(new PackageFormatError(`corrupt gzip data (${error.message})`));
    });
  });
  const pump = (async () => {
    try {
      for await (const chunk of chunksOf(input)) {
        if (stopped) return;
        if (!gunzip.write(chunk)) await writable(gunzip);
      }
      if (!stopped) gunzip.end();
    } catch (error) {
      gunzip.destroy();
      throw error;
    }
  })();
  await settleAll([finished, pump]);
}

const programs = new Map<string, string | undefined>();

/** The absolute path of a program on the PATH, cached. */
export function findProgram(name: string): string | undefined {
  if (!programs.has(name)) {
    const found = (process.env.PATH ?? '/usr/bin:/bin')
      .split(path.delimiter)
      .filter((dir) => dir !== '')
      .map((dir) => path.join(dir, name))
      .find((file) => existsSync(file));
    programs.set(name, found);
  }
  return programs.get(name);
}

/** Decompresses through a program (`zstd -dc`, `bzip2 -dc`) reading stdin and writing stdout. */
export async function decodeWithProgram(
  program: string,
  args: string[],
  input: Input,
  sink: Sink,
): Promise<void> {
  const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const name = path.basename(program);
  let stopped = false;
  let stderr = '';
  const stdin = child.stdin!;
  stdin.on('error', () => undefined); // EPIPE once the program has exited or been stopped
  child.stdout!.on('error', () => undefined);
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    if (stderr.length < 4096) stderr += text;
  });
  child.stderr!.on('error', () => undefined);
  const stop = () => {
    if (stopped) return;
    stopped = true;
    child.stdout!.destroy();
    stdin.destroy();
    child.kill('SIGKILL');
  };
  const exited = new Promise<void>((resolve, reject) => {
    let failure: unknown;
    child.stdout!.on('data', (data: Buffer) => {
      if (stopped) return;
      try {
        if (!sink(data)) stop();
      } catch (error) {
        failure = error;
        stop();
      }
    });
    child.on('error', (error) => {
      stop();
      reject(new Error(`cannot run ${name}: ${error.message}`));
    });
    child.on('close', (code) => {
      const wasStopped = stopped;
      stopped = true; // the pump has nobody to write to any more
      if (failure !== undefined) return reject(failure);
      if (wasStopped || code === 0) return resolve();
      const message = stderr.trim().split('\n').slice(-2).join('; ');
      reject(new PackageFormatError(`corrupt ${name} data (${message || `exit code ${code}`})`));
    });
  });
  const pump = (async () => {
    try {
      for await (const chunk of chunksOf(input)) {
        if (stopped) return;
        if (!stdin.write(chunk)) await writable(stdin);
      }
      if (!stopped) stdin.end();
    } catch (error) {
      stop();
      throw error;
    }
  })();
  await settleAll([exited, pump]);
}
