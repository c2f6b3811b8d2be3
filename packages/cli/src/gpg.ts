/**
 * The user's GnuPG, as repo-add uses it for `-s`, `-k` and `-v`: the default keyring (`GNUPGHOME`,
 * else `~/.gnupg`) and its agent, so that keys on a smartcard and keys whose passphrase the agent
 * asks for work as they do with repo-add.
 */
import { spawn } from 'node:child_process';
import type { ReadStream } from 'node:fs';
import type { Signer } from '@serene/core';

/** gpg could not do what was asked; the message says why in repo-add's words. */
export class GpgError extends Error {
  override readonly name = 'GpgError';
}

/** What a gpg run printed. */
interface GpgOutput {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs gpg with the user's environment; the terminal stays on stdin, so that pinentry can ask. */
function gpg(args: readonly string[], env: NodeJS.ProcessEnv, program = 'gpg'): Promise<GpgOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, [...args], { env, stdio: ['inherit', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'ENOENT'
          ? new GpgError('Cannot find the gpg binary! Is GnuPG installed?')
          : new GpgError(`cannot run gpg: ${error.message}`),
      ),
    );
    child.once('close', (code) =>
      resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }),
    );
  });
}

/**
 * Checks that the keyring holds the secret key to sign with (`key`, or any), as repo-add does
 * before it changes anything; rejects with repo-add's message otherwise.
 */
export async function checkSecretKey(env: NodeJS.ProcessEnv, key: string | undefined): Promise<void> {
  const output = await gpg(['--list-secret-key', ...(key ? [key] : [])], env);
  // gpg exits 0 and prints nothing when the keyring has no secret key at all
  if (output.code === 0 && output.stdout.length > 0) return;
  throw new GpgError(
    key ? `The key ${key} does not exist in your keyring.` : 'There is no key in your keyring.',
  );
}

/**
 * Verifies `FILE.sig` against `FILE` with the user's keyring (`gpg --verify`), as repo-add's `-v`;
 * resolves with what gpg printed and whether it accepted the signature.
 */
export async function verifySignature(
  env: NodeJS.ProcessEnv,
  file: string,
): Promise<{ valid: boolean; report: string }> {
  const output = await gpg(['--verify', `${file}.sig`, file], env);
  return { valid: output.code === 0, report: output.stderr };
}

/** Options of {@link createUserGpgSigner}. */
export interface UserGpgSignerOptions {
  env: NodeJS.ProcessEnv;
  /** `-k`: the key to sign with (`gpg -u`); the keyring's default key without it */
  key?: string | undefined;
  /** awaited before the first signature (the secret key check runs beside the database work) */
  ready?: Promise<void>;
  /** told about each signature made: the file it signs */
  onSigned?: (file: string) => void;
}

/**
 * A {@link Signer} that runs `gpg --detach-sign --no-armor [-u KEY]` on the file, as repo-add does.
 * The engine hands it a read stream of the file it wrote; gpg is given the file's path instead of a
 * pipe, so that its standard input stays the terminal (a pinentry may need it) and nothing is copied
 * through this process.
 */
export function createUserGpgSigner(options: UserGpgSignerOptions): Signer {
  const { env, key } = options;
  const user = key ? ['-u', key] : [];
  return {
    name: 'gpg',
    async sign(data) {
      const file = (data as Partial<ReadStream>).path;
      if (typeof file !== 'string') throw new GpgError('the gpg signer signs files only');
      // not read here: closed before it opens (quietly: the file may be gone by then)
      (data as ReadStream).on('error', () => undefined).destroy();
      await options.ready;
      const output = await gpg(
        ['--detach-sign', '--use-agent', '--no-armor', ...user, '--output', '-', file],
        env,
      );
      if (output.code !== 0 || output.stdout.length === 0) {
        const name = file
          .split('/')
          .pop()!
          .replace(/^\.tmp\./, '');
        throw new GpgError(
          `Failed to sign package database file '${name}'${output.stderr ? `: ${lastLine(output.stderr)}` : ''}`,
        );
      }
      options.onSigned?.(file);
      return new Uint8Array(output.stdout);
    },
    async publicKey() {
      const output = await gpg(['--armor', '--export', ...(key ? [key] : [])], env);
      return output.stdout.toString('utf8');
    },
    async fingerprint() {
      const output = await gpg(['--with-colons', '--list-secret-keys', ...(key ? [key] : [])], env);
      const line = output.stdout
        .toString('utf8')
        .split('\n')
        .find((row) => row.startsWith('fpr:'));
      const fpr = line?.split(':')[9];
      if (!fpr)
        throw new GpgError(
          key ? `The key ${key} does not exist in your keyring.` : 'There is no key in your keyring.',
        );
      return fpr.toUpperCase();
    },
  };
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1]!.replace(/^gpg: /, '');
}
