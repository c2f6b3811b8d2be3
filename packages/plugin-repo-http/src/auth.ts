/**
 * Authentication as the original's (docs/compatibility.md#authentication): the raw secret in `Authorization`, its SHA-256 in
 * standard Base64 compared with the first word of each line of `authorized_secrets`; stateless
 * per-package webhook secrets derived from those tokens.
 *
 * Beyond the original: comparisons take the same time whatever matches, secrets are never logged,
 * and the file is not read on every request: a watch on its folder (and a periodic check of its
 * size, times and inode) tells when to read it again.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AuthenticationError,
  InputError,
  type Logger,
  NotAllowedError,
  UnavailableError,
} from '@serene/core';

/** What the file looked like when it was last read. */
interface Stamp {
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** Options of {@link AuthorizedSecrets}. */
export interface AuthorizedSecretsOptions {
  /** the `authorized_secrets` file */
  file: string;
  logger: Logger;
  /**
   * At most this long (ms) between checks of the file's size, times and inode, whatever the folder
   * watch says (a safety net for file systems without change events).
   * @default 2000
   */
  recheckMs?: number;
}

/** The SHA-256 of a secret in standard Base64 with padding: the token the file holds. */
export function secretToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64');
}

/**
 * The webhook secret of the user whose file token is `token`, for package `base`: URL-safe Base64
 * (with padding) of SHA-256 of `token-base-serverSecret` (docs/compatibility.md#webhook-secrets).
 */
export function webhookSecret(token: string, base: string, serverSecret: string): string {
  return createHash('sha256')
    .update(`${token}-${base}-${serverSecret}`, 'utf8')
    .digest('base64')
    .replace(/\+/g, '-')
    .replace(/\//g, '_');
}

/** Compares two strings in time that depends only on their lengths. */
function sameText(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The accepted secrets of `authorized_secrets`, kept in memory and read again when the file
 * changes.
 *
 * @remarks A missing file means nobody is authorized (logged once each time it goes missing); a file
 * that exists but cannot be read fails the request with 500, as the original's.
 */
export class AuthorizedSecrets {
  private readonly file: string;
  private readonly logger: Logger;
  private readonly recheckMs: number;
  private tokens: { text: string; bytes: Buffer; name: string }[] = [];
  private stamp: Stamp | 'missing' | undefined;
  private dirty = true;
  private checkedAt = 0;
  private pending: Promise<void> | undefined;
  private watcher: fs.FSWatcher | undefined;
  private watching = false;
  private watchTriedAt = 0;
  private closed = false;

  constructor(options: AuthorizedSecretsOptions) {
    this.file = path.resolve(options.file);
    this.logger = options.logger;
    this.recheckMs = options.recheckMs ?? 2000;
  }

  /** The tokens of the file (first word of each non-empty line). */
  async list(): Promise<readonly string[]> {
    await this.fresh();
    return this.tokens.map((token) => token.text);
  }

  /**
   * The token that `secret` hashes to, or undefined when the file does not hold it. Every token is
   * compared, in constant time, so the time taken says nothing about which one matched.
   */
  async match(secret: string): Promise<string | undefined> {
    await this.fresh();
    const wanted = Buffer.from(secretToken(secret));
    let found: string | undefined;
    for (const token of this.tokens) {
      if (sameText(token.bytes, wanted) && found === undefined) found = token.text;
    }
    return found;
  }

  /**
   * The token of the user whose webhook secret for `base` is `given`, or undefined when no token
   * gives it.
   */
  async matchWebhook(given: string, base: string, serverSecret: string): Promise<string | undefined> {
    await this.fresh();
    const wanted = Buffer.from(given);
    let found: string | undefined;
    for (const token of this.tokens) {
      const expected = Buffer.from(webhookSecret(token.text, base, serverSecret));
      if (sameText(expected, wanted) && found === undefined) found = token.text;
    }
    return found;
  }

  /**
   * The name of the secret whose token is `token`: the rest of its line in the file (`user@host`
   * as `serene host secret` writes it), or `secret <first 8 characters of the token>` when the
   * line has only the token. Names who asked for an action (a cancelled build).
   */
  nameOf(token: string): string {
    const name = this.tokens.find((entry) => entry.text === token)?.name;
    return name || `secret ${token.slice(0, 8)}`;
  }

  /** Stops watching the folder. */
  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
  }

  // --- internal helpers ---

  /** Makes sure the tokens reflect the file, reading it only when it changed. */
  private async fresh(): Promise<void> {
    this.watch();
    if (!this.dirty && Date.now() - this.checkedAt < this.recheckMs) return;
    // concurrent requests share one check
    this.pending ??= this.check().finally(() => {
      this.pending = undefined;
    });
    await this.pending;
  }

  private async check(): Promise<void> {
    // cleared before the stat: a change during the read marks it dirty again
    this.dirty = false;
    this.checkedAt = Date.now();
    let stat: fs.BigIntStats;
    try {
      stat = await fs.promises.stat(this.file, { bigint: true });
    } catch (error) {
      if (
        (error as NodeJS.ErrnoException).code === 'ENOENT' ||
        (error as NodeJS.ErrnoException).code === 'ENOTDIR'
      ) {
        if (this.stamp !== 'missing') {
          this.logger.warn(
            `authorized secrets file ${this.file} does not exist: nobody is authorized (write requests, and read requests unless reads are allowed, are refused)`,
          );
        }
        this.stamp = 'missing';
        this.tokens = [];
        return;
      }
      this.dirty = true;
      throw new Error('failed to read authorized secrets', { cause: error });
    }
    const stamp: Stamp = { ino: stat.ino, size: stat.size, mtimeNs: stat.mtimeNs, ctimeNs: stat.ctimeNs };
    const previous = this.stamp;
    if (
      previous !== undefined &&
      previous !== 'missing' &&
      previous.ino === stamp.ino &&
      previous.size === stamp.size &&
      previous.mtimeNs === stamp.mtimeNs &&
      previous.ctimeNs === stamp.ctimeNs
    ) {
      return;
    }
    let text: string;
    try {
      text = await fs.promises.readFile(this.file, 'utf8');
    } catch (error) {
      this.dirty = true;
      throw new Error('failed to read authorized secrets', { cause: error });
    }
    this.tokens = parseAuthorizedSecretLines(text).map(({ token, name }) => ({
      text: token,
      bytes: Buffer.from(token),
      name,
    }));
    this.stamp = stamp;
    // counts only: the tokens themselves are never logged
    this.logger.info('authorized secrets loaded', { file: this.file, secrets: this.tokens.length });
  }

  /** Watches the file's folder (any change there may be a new file, a rename or a symlink swap). */
  private watch(): void {
    if (this.watching || this.closed || Date.now() - this.watchTriedAt < this.recheckMs) return;
    this.watching = true;
    this.watchTriedAt = Date.now();
    try {
      this.watcher = fs.watch(path.dirname(this.file), { persistent: false }, () => {
        this.dirty = true;
      });
      this.watcher.on('error', (error) => {
        this.logger.warn('watching the authorized secrets folder failed; checking the file periodically', {
          error: error.message,
        });
        this.watcher?.close();
        this.watcher = undefined;
        this.watching = false;
        this.dirty = true;
      });
    } catch (error) {
      // no folder yet, or no watches left: the periodic check covers it; the next request after it
      // tries to watch again
      this.watching = false;
      this.logger.debug('cannot watch the authorized secrets folder', { error: (error as Error).message });
    }
  }
}

/** The tokens of an `authorized_secrets` text: the first word of each line that has one. */
export function parseAuthorizedSecrets(text: string): string[] {
  return parseAuthorizedSecretLines(text).map((line) => line.token);
}

/** The lines of an `authorized_secrets` text that have a token: the first word, and the rest (its name). */
export function parseAuthorizedSecretLines(text: string): { token: string; name: string }[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [token = '', ...rest] = line.trim().split(/\s+/);
      return { token, name: rest.join(' ') };
    })
    .filter((line) => line.token !== '');
}

/** Access level of an endpoint. */
export type Access = 'read' | 'write';

/**
 * The secret of a request as the original reads it: undefined when there is no `Authorization`
 * header; a value with bytes other than visible ASCII counts as the empty string.
 */
export function secretOf(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? (header[0] ?? '') : header;
  return /^[\t\x20-\x7e]*$/.test(value) ? value : '';
}

/**
 * Checks a request's secret for an endpoint of the given access; returns the caller's file token
 * (undefined when reads are allowed to anybody and no check was made).
 *
 * @throws AuthenticationError `no secret provided`; NotAllowedError `invalid secret`
 */
export async function authorize(
  secrets: AuthorizedSecrets,
  header: string | string[] | undefined,
  access: Access,
  allowReads: boolean,
): Promise<string | undefined> {
  if (access === 'read' && allowReads) return undefined;
  const secret = secretOf(header);
  if (secret === undefined) throw new AuthenticationError('no secret provided');
  const token = await secrets.match(secret);
  if (token === undefined) throw new NotAllowedError('invalid secret');
  return token;
}

/**
 * Checks a webhook request's `secret` (docs/compatibility.md#webhook-secrets).
 *
 * @throws AuthenticationError without a secret; NotAllowedError when no user's secret matches;
 * UnavailableError when webhooks are off (and somebody is authorized at all)
 */
export async function authorizeWebhook(
  secrets: AuthorizedSecrets,
  given: string | undefined,
  base: string,
  serverSecret: string | undefined,
): Promise<void> {
  if (given === undefined) throw new AuthenticationError('no webhook secret provided');
  const tokens = await secrets.list();
  if (tokens.length > 0 && serverSecret === undefined) {
    throw new UnavailableError("webhooks aren't enabled on this server");
  }
  if (serverSecret === undefined || (await secrets.matchWebhook(given, base, serverSecret)) === undefined) {
    throw new NotAllowedError('no signing secret found');
  }
}

/** The `authorized_secrets` path exists but is no readable file (a directory, no permission). */
export class AuthorizedSecretsError extends InputError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_AUTHORIZED_SECRETS' });
  }
}

/**
 * Checked once at start: the `authorized_secrets` file is missing (nobody is authorized yet, which is
 * allowed) or a file this process can read. A directory (what `docker run -v` makes of a file that
 * did not exist) or an unreadable file is an {@link AuthorizedSecretsError} naming the path and what
 * to do, instead of every request answering 500 later.
 */
export async function checkAuthorizedSecretsFile(file: string): Promise<void> {
  const resolved = path.resolve(file);
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(resolved);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new AuthorizedSecretsError(
      `cannot read the authorized secrets file ${resolved}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  if (stat.isDirectory()) {
    throw new AuthorizedSecretsError(
      `the authorized secrets file ${resolved} is a directory: remove it and write the secret hashes to a file of that name (a Docker bind mount of a file that did not exist creates a directory: mount the folder instead)`,
    );
  }
  if (!stat.isFile()) {
    throw new AuthorizedSecretsError(`the authorized secrets file ${resolved} is not a regular file`);
  }
  try {
    await (await fs.promises.open(resolved, 'r')).close();
  } catch (error) {
    throw new AuthorizedSecretsError(
      `cannot read the authorized secrets file ${resolved}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} (the server needs to read it)`,
      { cause: error },
    );
  }
}
