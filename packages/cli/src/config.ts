/**
 * The client's configuration, as the original CLI's (docs/compatibility.md#cli): `serene.yml` in the XDG config
 * folder with the server `url` (and the legacy `secret` and `elevator`), and the secret in
 * `secret.txt` in the XDG data folder, created on first use.
 */
import { createHash, randomInt } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

/** The placeholder the original wrote for `secret`: it means "use the secret file". */
const LEGACY_SECRET_PLACEHOLDER = 'empty';
const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** Length of a generated secret, as the original's. */
export const SECRET_LENGTH = 64;

/** Where the client keeps its files, from the environment it is given. */
export interface ClientPaths {
  /** `$XDG_CONFIG_HOME/serene.yml` */
  config: string;
  /** `$XDG_DATA_HOME/serene/secret.txt` */
  secret: string;
  /** `$XDG_CACHE_HOME/serene-package-completions.txt` */
  completions: string;
}

/** The contents of `serene.yml`. */
export interface ClientConfig {
  /** the server, without a trailing slash */
  url: string;
  /** legacy: a secret kept in the config file instead of the secret file */
  secret?: string | undefined;
  /** the program that runs pacman as root @default 'sudo' */
  elevator: string;
}

/** A configuration file that is not what it should be (exit 1, with its path). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The client's paths from `env` (`XDG_CONFIG_HOME`, `XDG_DATA_HOME`, `XDG_CACHE_HOME`, `HOME`). */
export function clientPaths(env: NodeJS.ProcessEnv): ClientPaths {
  const home = env.HOME || os.homedir();
  // the XDG spec: relative values are invalid and are ignored
  const xdg = (name: string, fallback: string) => {
    const value = env[name];
    return value && path.isAbsolute(value) ? value : path.join(home, fallback);
  };
  return {
    config: path.join(xdg('XDG_CONFIG_HOME', '.config'), 'serene.yml'),
    secret: path.join(xdg('XDG_DATA_HOME', '.local/share'), 'serene', 'secret.txt'),
    completions: path.join(xdg('XDG_CACHE_HOME', '.cache'), 'serene-package-completions.txt'),
  };
}

/** Reads `serene.yml`; undefined when it does not exist. */
export async function readConfig(file: string): Promise<ClientConfig | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  // yaml is loaded here only: commands that read no configuration do not pay for it
  const { parse } = await import('yaml');
  let data: unknown;
  try {
    data = parse(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid YAML: ${(error as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigError(`${file} must be a YAML mapping with the key 'url'`);
  }
  const { url, secret, elevator } = data as Record<string, unknown>;
  if (typeof url !== 'string' || url.trim() === '') {
    throw new ConfigError(`${file} has no 'url' (the server, e.g. url: https://serene.example.org)`);
  }
  if (secret !== undefined && secret !== null && typeof secret !== 'string') {
    throw new ConfigError(`${file}: 'secret' must be a string`);
  }
  if (
    elevator !== undefined &&
    elevator !== null &&
    (typeof elevator !== 'string' || elevator.trim() === '')
  ) {
    throw new ConfigError(`${file}: 'elevator' must be a command such as sudo or doas`);
  }
  return {
    url: normalizeUrl(url),
    secret: typeof secret === 'string' && secret !== LEGACY_SECRET_PLACEHOLDER ? secret.trim() : undefined,
    elevator: typeof elevator === 'string' ? elevator.trim() : 'sudo',
  };
}

/** Writes a new `serene.yml` with the server url only (the legacy keys are never written). */
export async function writeConfig(file: string, url: string): Promise<void> {
  const { stringify } = await import('yaml');
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeDurably(file, stringify({ url: normalizeUrl(url) }));
}

/** A server url as the client joins paths to it: trimmed, without trailing slashes. */
export function normalizeUrl(url: string): string {
  return url.trim().replace(/\/+$/, '');
}

/**
 * The secret of this machine: the file's contents (trimmed), or a new secret of 64 random
 * alphanumeric characters written to it (readable by the user only).
 */
export async function loadSecret(file: string): Promise<string> {
  try {
    const secret = (await fs.readFile(file, 'utf8')).trim();
    if (secret !== '') return secret;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  let secret = '';
  for (let i = 0; i < SECRET_LENGTH; i++) secret += SECRET_ALPHABET[randomInt(SECRET_ALPHABET.length)];
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeDurably(file, secret, 0o600);
  return secret;
}

/**
 * Writes a file in full or not at all (a full disk keeps the previous file); the engine that does
 * it is loaded only when a file is written, not at every start of the command.
 */
async function writeDurably(file: string, text: string, mode?: number): Promise<void> {
  const { writeFileDurable } = await import('@serene/core/pacman');
  await writeFileDurable(file, text, mode === undefined ? {} : { mode });
}

/** The token the server's `authorized_secrets` holds: standard Base64 of SHA-256 of the secret. */
export function secretToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64');
}

/** The `authorized_secrets` line of this machine: `<token> <user>@<hostname>`. */
export function authorizedSecretsLine(secret: string): string {
  let user = 'unknown';
  let host = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // no passwd entry (containers): keep 'unknown'
  }
  try {
    host = os.hostname() || 'unknown';
  } catch {
    // keep 'unknown'
  }
  return `${secretToken(secret)} ${user}@${host}`;
}
