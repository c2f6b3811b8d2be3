/**
 * Reading the raw package file: 2 MiB chunks, hashed (md5, sha256) and counted as they are read; a
 * part of the package reader (package-reader.ts).
 */
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { createLimiter } from '../concurrency.js';

export class FileSource {
  readonly md5: Hash | undefined;
  readonly sha256: Hash | undefined;
  bytes = 0;
  private eof = false;
  private readonly serial = createLimiter(1);

  constructor(
    private readonly handle: fs.FileHandle,
    private readonly chunkSize: number,
    /** the size fstat told: reading stops there without one more read to see the end */
    private readonly size: number,
    hash: boolean,
  ) {
    if (hash) {
      this.md5 = createHash('md5');
      this.sha256 = createHash('sha256');
    }
  }

  /** The next chunk of the file (a fresh buffer each time), or `undefined` at its end. Serialized. */
  next(): Promise<Buffer | undefined> {
    return this.serial(() => this.read());
  }

  /** Reads (and hashes) the rest of the file. */
  async drain(): Promise<void> {
    while ((await this.next()) !== undefined) {
      // hashed by next()
    }
  }

  private async read(): Promise<Buffer | undefined> {
    if (this.eof || (this.size > 0 && this.bytes >= this.size)) return undefined;
    const buffer = Buffer.allocUnsafeSlow(this.chunkSize);
    const { bytesRead } = await this.handle.read(buffer, 0, buffer.length, null);
    if (bytesRead === 0) {
      this.eof = true;
      return undefined;
    }
    const chunk = bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
    this.md5?.update(chunk);
    this.sha256?.update(chunk);
    this.bytes += bytesRead;
    return chunk;
  }
}
