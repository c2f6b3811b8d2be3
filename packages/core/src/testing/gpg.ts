import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** A throw-away GnuPG home with one fresh signing key. */
export interface TestGpgHome {
  homedir: string;
  fingerprint: string;
  /** the passphrase the key was protected with, if any */
  passphrase: string | undefined;
  /** Verifies a detached signature with gpg; resolves true iff gpg accepts it. */
  verify(dataFile: string, signatureFile: string): Promise<boolean>;
  cleanup(): Promise<void>;
}

/**
 * Creates a GnuPG home with a new key (ed25519 by default, or RSA of `rsaBits`), for tests. The key
 * is made on the spot and thrown away; no secret key is ever committed.
 */
export async function createTestGpgHome(
  options: { passphrase?: string; rsaBits?: number; uid?: string } = {},
): Promise<TestGpgHome> {
  const homedir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-gpg-'));
  await fs.chmod(homedir, 0o700);
  const uid = options.uid ?? 'serene test key <tests@serene.invalid>';
  const algo = options.rsaBits ? `rsa${options.rsaBits}` : 'ed25519';
  await exec('gpg', [
    '--batch',
    '--homedir',
    homedir,
    '--pinentry-mode',
    'loopback',
    '--passphrase',
    options.passphrase ?? '',
    '--quick-gen-key',
    uid,
    algo,
    'sign',
    'never',
  ]);
  const { stdout } = await exec('gpg', [
    '--batch',
    '--homedir',
    homedir,
    '--with-colons',
    '--fingerprint',
    uid,
  ]);
  const fingerprint = stdout
    .split('\n')
    .find((line) => line.startsWith('fpr:'))
    ?.split(':')[9];
  if (!fingerprint) throw new Error('gpg made no key');
  return {
    homedir,
    fingerprint,
    passphrase: options.passphrase,
    async verify(dataFile, signatureFile) {
      try {
        await exec('gpg', ['--batch', '--homedir', homedir, '--verify', signatureFile, dataFile]);
        return true;
      } catch {
        return false;
      }
    },
    async cleanup() {
      await exec('gpgconf', ['--homedir', homedir, '--kill', 'all']).catch(() => undefined);
      await fs.rm(homedir, { recursive: true, force: true });
    },
  };
}

/** Verifies a detached signature against an armoured public key in a fresh keyring. */
export async function verifyWithGpg(
  publicKey: string,
  dataFile: string,
  signatureFile: string,
): Promise<boolean> {
  const homedir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-gpgv-'));
  try {
    await fs.chmod(homedir, 0o700);
    const keyFile = path.join(homedir, 'key.asc');
    await fs.writeFile(keyFile, publicKey);
    await exec('gpg', ['--batch', '--homedir', homedir, '--import', keyFile]);
    await exec('gpg', [
      '--batch',
      '--homedir',
      homedir,
      '--trust-model',
      'always',
      '--verify',
      signatureFile,
      dataFile,
    ]);
    return true;
  } catch {
    return false;
  } finally {
    await exec('gpgconf', ['--homedir', homedir, '--kill', 'all']).catch(() => undefined);
    await fs.rm(homedir, { recursive: true, force: true });
  }
}
