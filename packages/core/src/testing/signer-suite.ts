import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Signer } from '../contracts/signer.js';
import { verifyWithGpg } from './gpg.js';
import { hasProgram } from './pacman.js';

/** Options of {@link testSigner}. */
export interface SignerSuiteOptions {
  /** creates the signer under test (its key is the suite's to verify against) */
  create: () => Promise<Signer> | Signer;
  /** releases what `create` made (keys, homes) */
  cleanup?: () => Promise<void>;
  /**
   * size of the streamed payload that checks memory stays flat
   * @default 128 MiB
   */
  largeBytes?: number;
  additionalTests?: (context: { signer: () => Signer; dir: () => string }) => void;
}

async function* chunks(total: number, size = 1 << 20): AsyncGenerator<Uint8Array> {
  const block = Buffer.alloc(size);
  for (let i = 0; i < size; i++) block[i] = (i * 31 + 7) & 0xff;
  for (let sent = 0; sent < total; sent += size) yield block.subarray(0, Math.min(size, total - sent));
}

/**
 * The `Signer` conformance suite: every implementation runs it. Signatures are checked with real
 * gpg (`gpg --verify`), so the suite is skipped only where gpg is not installed.
 */
export function testSigner(name: string, options: SignerSuiteOptions): void {
  describe.skipIf(!hasProgram('gpg'))(`Signer conformance: ${name}`, () => {
    let signer: Signer;
    let dir: string;

    beforeAll(async () => {
      signer = await options.create();
      dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-signer-'));
    });
    afterAll(async () => {
      await signer?.dispose?.();
      await options.cleanup?.();
      if (dir) await fs.rm(dir, { recursive: true, force: true });
    });

    const signFile = async (file: string): Promise<string> => {
      const signature = await signer.sign(createReadStream(file));
      await fs.writeFile(`${file}.sig`, signature);
      return `${file}.sig`;
    };

    it('exports an armoured public key and a hex fingerprint', async () => {
      const key = await signer.publicKey();
      expect(key).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
      expect(key.trim()).toMatch(/-----END PGP PUBLIC KEY BLOCK-----$/);
      expect(await signer.fingerprint()).toMatch(/^([0-9A-F]{40}|[0-9A-F]{64})$/);
    });

    it('makes binary detached signatures that gpg verifies', async () => {
      const file = path.join(dir, 'small.bin');
      await fs.writeFile(file, 'hello pacman\n');
      const sig = await signFile(file);
      const bytes = await fs.readFile(sig);
      expect(bytes.includes('BEGIN PGP')).toBe(false);
      expect(bytes[0]! & 0x80).toBe(0x80); // an OpenPGP packet tag, not text
      expect(await verifyWithGpg(await signer.publicKey(), file, sig)).toBe(true);
    });

    it('signs what a stream yields across many chunks', async () => {
      const file = path.join(dir, 'chunked.bin');
      const parts: Buffer[] = [];
      for await (const part of chunks(3_000_001, 4096)) parts.push(Buffer.from(part));
      await fs.writeFile(file, Buffer.concat(parts));
      const signature = await signer.sign(chunks(3_000_001, 4096));
      await fs.writeFile(`${file}.sig`, signature);
      expect(await verifyWithGpg(await signer.publicKey(), file, `${file}.sig`)).toBe(true);
    });

    it('makes signatures that fail for tampered data', async () => {
      const file = path.join(dir, 'tamper.bin');
      await fs.writeFile(file, 'the original content\n');
      const sig = await signFile(file);
      await fs.writeFile(file, 'the original content!\n');
      expect(await verifyWithGpg(await signer.publicKey(), file, sig)).toBe(false);
    });

    it('signs an empty input', async () => {
      const file = path.join(dir, 'empty.bin');
      await fs.writeFile(file, '');
      const sig = await signFile(file);
      expect(await verifyWithGpg(await signer.publicKey(), file, sig)).toBe(true);
    });

    it('streams a large input with flat memory', async () => {
      const total = options.largeBytes ?? 128 * 1024 * 1024;
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 20);
      try {
        const signature = await signer.sign(chunks(total));
        expect(signature.length).toBeGreaterThan(0);
      } finally {
        clearInterval(sampler);
      }
      expect(peak - before).toBeLessThan(Math.min(total / 2, 96 * 1024 * 1024));
    });

    options.additionalTests?.({ signer: () => signer, dir: () => dir });
  });
}
