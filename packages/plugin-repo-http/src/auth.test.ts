import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMemoryLogger, type LogRecord } from '@serene/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuthorizedSecrets,
  AuthorizedSecretsError,
  authorize,
  authorizeWebhook,
  checkAuthorizedSecretsFile,
  parseAuthorizedSecrets,
  secretOf,
  secretToken,
  webhookSecret,
} from './auth.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function secretsIn(text: string | undefined, logs: LogRecord[] = []) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-auth-'));
  dirs.push(dir);
  const file = path.join(dir, 'authorized_secrets');
  if (text !== undefined) await fs.writeFile(file, text);
  return { file, secrets: new AuthorizedSecrets({ file, logger: createMemoryLogger(logs), recheckMs: 50 }) };
}

describe('tokens and webhook secrets', () => {
  it('hashes secrets as the original: standard Base64 with padding of SHA-256', () => {
    expect(secretToken('')).toBe('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
    expect(secretToken('hello')).toBe('LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=');
  });

  it('derives webhook secrets in URL-safe Base64 with padding from token, base and server secret', () => {
    const secret = webhookSecret('LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=', 'foo', 'server');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}=$/);
    expect(secret).not.toBe(webhookSecret('LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=', 'bar', 'server'));
  });

  it('reads the first word of every line', () => {
    expect(parseAuthorizedSecrets('  \nAAA= me@laptop\n\tBBB=\n\n CCC= a b c \n')).toEqual([
      'AAA=',
      'BBB=',
      'CCC=',
    ]);
    expect(parseAuthorizedSecrets('')).toEqual([]);
  });

  it('reads the Authorization header as the original: missing, visible ASCII, or empty', () => {
    expect(secretOf(undefined)).toBeUndefined();
    expect(secretOf('abc def')).toBe('abc def');
    expect(secretOf('abc\u00e9')).toBe('');
  });
});

describe('AuthorizedSecrets', () => {
  it('authorizes the listed secrets only: 401 without one, 403 for a wrong one; reads may be open', async () => {
    const { secrets } = await secretsIn(`${secretToken('s3cret')} me\n`);
    expect(await authorize(secrets, 's3cret', 'write', false)).toBe(secretToken('s3cret'));
    await expect(authorize(secrets, undefined, 'write', false)).rejects.toThrow('no secret provided');
    await expect(authorize(secrets, 'nope', 'read', false)).rejects.toThrow('invalid secret');
    expect(await authorize(secrets, 'nope', 'read', true)).toBeUndefined();
    await expect(authorize(secrets, 'nope', 'write', true)).rejects.toThrow('invalid secret');
    secrets.close();
  });

  it('treats a missing file as nobody, and reads a new one', async () => {
    const logs: LogRecord[] = [];
    const { file, secrets } = await secretsIn(undefined, logs);
    expect(await secrets.match('s3cret')).toBeUndefined();
    expect(logs.filter((line) => line.level === 'warn')).toHaveLength(1);
    expect(await secrets.match('s3cret')).toBeUndefined();
    expect(logs.filter((line) => line.level === 'warn')).toHaveLength(1);
    await fs.writeFile(file, `${secretToken('s3cret')}\n`);
    await sleep(100);
    expect(await secrets.match('s3cret')).toBe(secretToken('s3cret'));
    secrets.close();
  });

  it('does not read the file again while it is unchanged', async () => {
    const logs: LogRecord[] = [];
    const { secrets } = await secretsIn(`${secretToken('a')}\n`, logs);
    for (let i = 0; i < 20; i++) await secrets.match('a');
    await sleep(120);
    await secrets.match('a');
    expect(logs.filter((line) => line.message === 'authorized secrets loaded')).toHaveLength(1);
    secrets.close();
  });

  it('checks webhook secrets against every user', async () => {
    const { secrets } = await secretsIn(`${secretToken('a')} one\n${secretToken('b')} two\n`);
    const given = webhookSecret(secretToken('b'), 'pkg', 'server');
    await expect(authorizeWebhook(secrets, given, 'pkg', 'server')).resolves.toBeUndefined();
    await expect(authorizeWebhook(secrets, given, 'other', 'server')).rejects.toThrow(
      'no signing secret found',
    );
    await expect(authorizeWebhook(secrets, undefined, 'pkg', 'server')).rejects.toThrow(
      'no webhook secret provided',
    );
    await expect(authorizeWebhook(secrets, given, 'pkg', undefined)).rejects.toThrow(
      "webhooks aren't enabled",
    );
    secrets.close();
  });
});

describe('checkAuthorizedSecretsFile (at start)', () => {
  it('accepts a missing file (nobody authorized yet) and a readable file', async () => {
    const missing = await secretsIn(undefined);
    await expect(checkAuthorizedSecretsFile(missing.file)).resolves.toBeUndefined();
    const present = await secretsIn('abc= me\n');
    await expect(checkAuthorizedSecretsFile(present.file)).resolves.toBeUndefined();
  });

  it('refuses a directory (what a bind mount of a missing file makes) naming the path and the fix', async () => {
    const { file } = await secretsIn(undefined);
    await fs.mkdir(file);
    const error = await checkAuthorizedSecretsFile(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthorizedSecretsError);
    expect((error as AuthorizedSecretsError).code).toBe('SERENE_ERR_AUTHORIZED_SECRETS');
    expect((error as Error).message).toMatch(
      new RegExp(`^the authorized secrets file ${file.replaceAll('/', '\\/')} is a directory: `),
    );
    expect((error as Error).message).toContain('mount the folder instead');
  });
});
