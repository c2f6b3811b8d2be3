import { spawn } from 'node:child_process';
import type { Signer } from '../contracts/signer.js';
import { PluginError } from '../errors.js';

/** Name of the gpg signer, for logs. */
export const GPG_SIGNER_NAME = 'gpg';

/** Options of {@link createGpgSigner}. */
export interface GpgSignerOptions {
  /** GNUPGHOME holding the secret key (or an agent that holds it) */
  homedir: string;
  /** fingerprint, key id or user id of the signing key */
  key: string;
  /** passphrase of the key, given to gpg through a pipe (never on the command line) */
  passphrase?: string | undefined;
  /**
   * the gpg program
   * @default 'gpg'
   */
  gpg?: string;
  /** more options for every gpg call, before the command (`--no-autostart`, `--pinentry-mode error`) */
  args?: readonly string[];
}

/**
 * A {@link Signer} that runs GnuPG: keys in a keyring, an agent or a smartcard. The data is piped
 * through gpg's standard input, so it streams.
 */
export function createGpgSigner(options: GpgSignerOptions): Signer {
  const gpg = options.gpg ?? 'gpg';
  const base = ['--batch', '--no-tty', '--homedir', options.homedir, ...(options.args ?? [])];

  const run = (args: string[], input?: AsyncIterable<Uint8Array>): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const withPassphrase =
        options.passphrase === undefined
          ? args
          : ['--pinentry-mode', 'loopback', '--passphrase-fd', '3', ...args];
      const child = spawn(gpg, [...base, ...withPassphrase], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
      child.on('error', (error) =>
        reject(new PluginError(GPG_SIGNER_NAME, `cannot run ${gpg}`, { cause: error })),
      );
      child.on('close', (code) => {
        if (code === 0) resolve(Buffer.concat(out));
        else {
          const message = Buffer.concat(err).toString('utf8').trim();
          reject(new PluginError(GPG_SIGNER_NAME, `gpg ${args[0]} failed (exit ${code}): ${message}`));
        }
      });
      const passphrasePipe = child.stdio[3] as NodeJS.WritableStream | null;
      if (passphrasePipe)
        passphrasePipe.end(options.passphrase === undefined ? '' : `${options.passphrase}\n`);
      child.stdin.on('error', () => {}); // gpg may exit early; its exit code tells why
      if (!input) {
        child.stdin.end();
        return;
      }
      (async () => {
        for await (const chunk of input) {
          if (!child.stdin.write(chunk)) await new Promise((done) => child.stdin.once('drain', done));
        }
        child.stdin.end();
      })().catch((error) => {
        child.kill();
        reject(error);
      });
    });

  return {
    name: GPG_SIGNER_NAME,
    async sign(data) {
      const signature = await run(
        ['--detach-sign', '--no-armor', '--local-user', options.key, '--output', '-'],
        data,
      );
      return new Uint8Array(signature);
    },
    async publicKey() {
      return (await run(['--armor', '--export', options.key])).toString('utf8');
    },
    async fingerprint() {
      const listing = (await run(['--with-colons', '--fingerprint', options.key])).toString('utf8');
      const line = listing.split('\n').find((row) => row.startsWith('fpr:'));
      const fpr = line?.split(':')[9];
      if (!fpr) throw new PluginError(GPG_SIGNER_NAME, `no fingerprint for key '${options.key}'`);
      return fpr.toUpperCase();
    },
  };
}
