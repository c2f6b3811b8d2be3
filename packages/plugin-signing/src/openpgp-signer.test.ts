import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { createMemoryLogger, NotFoundError } from '@serene/core';
import {
  createTestGpgHome,
  hasProgram,
  type TestGpgHome,
  testSigner,
  verifyWithGpg,
} from '@serene/core/testing';
import * as openpgp from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNING_ERROR_CODES, SigningKeyError } from './errors.js';
import {
  exportPublicKey,
  loadOpenPgpSigner,
  NO_SIGNING_KEY_MESSAGE,
  type OpenPgpSignerOptions,
} from './openpgp-signer.js';

const exec = promisify(execFile);
const USER = { name: 'serene test key', email: 'tests@serene.invalid' };
const DAY = 86_400_000;

/** The secret key of a gpg home, armoured, as the README tells users to export it. */
async function exportSecretKey(
  home: TestGpgHome,
  selector = home.fingerprint,
  command = '--export-secret-keys',
) {
  const { stdout } = await exec('gpg', [
    '--batch',
    '--homedir',
    home.homedir,
    '--pinentry-mode',
    'loopback',
    '--passphrase',
    home.passphrase ?? '',
    '--armor',
    command,
    selector,
  ]);
  return stdout;
}

async function gpgIn(home: string, args: string[]): Promise<string> {
  const { stdout } = await exec('gpg', [
    '--batch',
    '--homedir',
    home,
    '--pinentry-mode',
    'loopback',
    '--passphrase',
    '',
    ...args,
  ]);
  return stdout;
}

async function refusal(options: OpenPgpSignerOptions): Promise<SigningKeyError> {
  try {
    await loadOpenPgpSigner(options);
  } catch (error) {
    expect(error).toBeInstanceOf(SigningKeyError);
    return error as SigningKeyError;
  }
  throw new Error('the key was accepted');
}

type KeyOptions = { passphrase?: string; date?: Date; keyExpirationTime?: number };

/** A fresh ed25519 key (legacy EdDSA, as gpg makes it), armoured. */
const ed25519 = (extra: KeyOptions = {}) =>
  openpgp.generateKey({ ...extra, type: 'ecc', curve: 'ed25519Legacy', userIDs: [USER], format: 'armored' });

/** The same, as an openpgp object. */
const ed25519Object = () =>
  openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [USER], format: 'object' });

// --- Conformance --------------------------------------------------------------------------------

let gpgHome: TestGpgHome | undefined;

testSigner('openpgp (ed25519, made and exported by gpg, with a password)', {
  async create() {
    gpgHome = await createTestGpgHome({ passphrase: 'correct horse' });
    const signer = await loadOpenPgpSigner({
      armoredKey: await exportSecretKey(gpgHome),
      password: 'correct horse',
    });
    return signer!;
  },
  cleanup: async () => gpgHome?.cleanup(),
  additionalTests({ signer, dir }) {
    it("signs with gpg's key, verifiable in the key's own keyring", async () => {
      expect(await signer().fingerprint()).toBe(gpgHome!.fingerprint);
      const file = path.join(dir(), 'keyring.bin');
      await fs.writeFile(file, 'verified by the keyring that made the key\n');
      await fs.writeFile(
        `${file}.sig`,
        await signer().sign(
          (async function* () {
            yield await fs.readFile(file);
          })(),
        ),
      );
      expect(await gpgHome!.verify(file, `${file}.sig`)).toBe(true);
    });
  },
});

testSigner('openpgp (RSA 3072, made by openpgp, SHA-512)', {
  async create() {
    const { privateKey } = await openpgp.generateKey({
      type: 'rsa',
      rsaBits: 3072,
      userIDs: [USER],
      format: 'armored',
    });
    const signer = await loadOpenPgpSigner({ armoredKey: privateKey, hash: 'sha512' });
    expect(signer?.algorithm).toBe('rsa3072');
    return signer!;
  },
});

// --- Loading ------------------------------------------------------------------------------------

describe('loadOpenPgpSigner', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-signing-'));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('signs nothing without a key file, and GET /key then answers 404', async () => {
    const logger = createMemoryLogger();
    expect(await loadOpenPgpSigner({ keyFile: path.join(dir, 'sign_key.asc'), logger })).toBeUndefined();
    expect(await loadOpenPgpSigner({})).toBeUndefined();
    expect(logger.records.map((record) => record.message)).toContain(
      'no signing key: packages and the database are published unsigned',
    );
    const error = await exportPublicKey(undefined).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as Error).message).toBe(NO_SIGNING_KEY_MESSAGE);
  });

  it('reads an armoured key file, exports only the public part, and logs what it signs with', async () => {
    const { privateKey } = await ed25519({ passphrase: 'pw' });
    const keyFile = path.join(dir, 'sign_key.asc');
    await fs.writeFile(keyFile, privateKey, { mode: 0o600 });
    const logger = createMemoryLogger();
    const signer = await loadOpenPgpSigner({ keyFile, password: 'pw', logger });
    expect(signer?.algorithm).toBe('ed25519');
    expect(signer?.expires).toBeUndefined();
    const exported = await exportPublicKey(signer);
    expect(exported).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    expect(exported).not.toContain('PRIVATE KEY');
    const parsed = await openpgp.readKey({ armoredKey: exported });
    expect(parsed.isPrivate()).toBe(false);
    expect(parsed.getFingerprint().toUpperCase()).toBe(await signer!.fingerprint());
    const line = logger.records.find((record) => record.message === 'signing packages');
    expect(line?.meta).toMatchObject({ fingerprint: await signer!.fingerprint(), algorithm: 'ed25519' });
  });

  it('reads a binary key too', async () => {
    const { privateKey } = await ed25519Object();
    const keyFile = path.join(dir, 'sign_key.gpg');
    await fs.writeFile(keyFile, privateKey.write());
    expect((await loadOpenPgpSigner({ keyFile }))?.algorithm).toBe('ed25519');
  });

  it('stops at a key file it cannot read or parse', async () => {
    const notAKey = path.join(dir, 'not-a-key.asc');
    await fs.writeFile(notAKey, 'hello\n');
    expect((await refusal({ keyFile: notAKey })).code).toBe(SIGNING_ERROR_CODES.unreadable);
    const folder = path.join(dir, 'a-folder.asc');
    await fs.mkdir(folder);
    const error = await refusal({ keyFile: folder });
    expect(error.code).toBe(SIGNING_ERROR_CODES.unreadable);
    expect(error.message).toContain(folder);
    const [a, b] = await Promise.all([ed25519(), ed25519()]);
    const blocks = await refusal({ armoredKey: `${a.privateKey}\n${b.privateKey}` });
    expect(blocks.code).toBe(SIGNING_ERROR_CODES.unreadable);
    expect(blocks.message).toMatch(/holds 2 armoured blocks/);
    const both = path.join(dir, 'two-keys.gpg');
    const binary = (armoredKey: string) => openpgp.readKey({ armoredKey }).then((key) => key.write());
    await fs.writeFile(both, Buffer.concat([await binary(a.privateKey), await binary(b.privateKey)]));
    const two = await refusal({ keyFile: both });
    expect(two.code).toBe(SIGNING_ERROR_CODES.unreadable);
    expect(two.message).toMatch(/holds 2 keys/);
  });
});

// --- Keys that stop the start ------------------------------------------------------------------

describe('keys that stop the start, each with what to do', () => {
  it('an encrypted key with a wrong password', async () => {
    const { privateKey } = await ed25519({ passphrase: 'right' });
    const error = await refusal({ armoredKey: privateKey, password: 'wrong' });
    expect(error.code).toBe(SIGNING_ERROR_CODES.wrongPassword);
    expect(error.name).toBe('SigningKeyError');
    expect(error.message).toMatch(
      /password in SIGN_KEY_PASSWORD does not unlock .*set it to the key's password/,
    );
  });

  it('an encrypted key without a password', async () => {
    const { privateKey } = await ed25519({ passphrase: 'right' });
    const error = await refusal({ armoredKey: privateKey });
    expect(error.code).toBe(SIGNING_ERROR_CODES.passwordRequired);
    expect(error.message).toMatch(/protected by a password and none is set; set SIGN_KEY_PASSWORD/);
  });

  it('a public key only', async () => {
    const { publicKey } = await ed25519();
    const error = await refusal({ armoredKey: publicKey });
    expect(error.code).toBe(SIGNING_ERROR_CODES.publicKeyOnly);
    expect(error.message).toMatch(/holds only the public key .*'gpg --armor --export-secret-keys/);
  });

  it('an expired key', async () => {
    const { privateKey } = await ed25519({ date: new Date(Date.now() - 2 * DAY), keyExpirationTime: 3600 });
    const error = await refusal({ armoredKey: privateKey });
    expect(error.code).toBe(SIGNING_ERROR_CODES.expired);
    expect(error.message).toMatch(/expired on .*gpg --quick-set-expire/);
  });

  it('a revoked key', async () => {
    const { privateKey: generated } = await ed25519Object();
    const { privateKey } = await openpgp.revokeKey({ key: generated, format: 'armored' });
    const error = await refusal({ armoredKey: privateKey });
    expect(error.code).toBe(SIGNING_ERROR_CODES.revoked);
    expect(error.message).toMatch(/is revoked; make a new signing key/);
  });

  it('an RSA key under 2,048 bits', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'rsa',
      rsaBits: 1024,
      userIDs: [USER],
      format: 'armored',
      config: { minRSABits: 1024 },
    });
    const error = await refusal({ armoredKey: privateKey });
    expect(error.code).toBe(SIGNING_ERROR_CODES.tooWeak);
    expect(error.message).toMatch(/RSA of 1024 bits, under the 2048 bits .* rsa3072/);
  });

  it('a key pacman cannot check (ECDSA)', async () => {
    const { privateKey } = await openpgp.generateKey({
      type: 'ecc',
      curve: 'nistP256',
      userIDs: [USER],
      format: 'armored',
    });
    const error = await refusal({ armoredKey: privateKey });
    expect(error.code).toBe(SIGNING_ERROR_CODES.unsupported);
    expect(error.message).toMatch(/uses ecdsa \(nistP256\).*ed25519 sign/);
  });

  it('a key that expires while the server runs stops signing', async () => {
    const { privateKey } = await ed25519({ keyExpirationTime: 3600 });
    let clock = new Date();
    const logger = createMemoryLogger();
    const signer = await loadOpenPgpSigner({ armoredKey: privateKey, now: () => clock, logger });
    expect(
      logger.records.some((record) => record.level === 'warn' && /expires on/.test(record.message)),
    ).toBe(true);
    clock = new Date(clock.getTime() + 2 * 3600_000);
    const error = await signer!
      .sign(
        (async function* () {
          yield Buffer.from('late');
        })(),
      )
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SigningKeyError);
    expect((error as SigningKeyError).code).toBe(SIGNING_ERROR_CODES.expired);
  });
});

// --- Keys made by gpg: a certify-only primary key and subkeys ---------------------------------------

describe.skipIf(!hasProgram('gpg'))('keys with a certify-only primary key (as gpg makes them)', () => {
  let home: string;
  let primary: string;

  beforeAll(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-gpg-subkeys-'));
    await fs.chmod(home, 0o700);
    await gpgIn(home, [
      '--quick-gen-key',
      'serene subkeys <tests@serene.invalid>',
      'ed25519',
      'cert',
      'never',
    ]);
    const listing = await gpgIn(home, ['--with-colons', '--fingerprint']);
    primary = listing
      .split('\n')
      .find((line) => line.startsWith('fpr:'))!
      .split(':')[9]!;
  });
  afterAll(async () => {
    await exec('gpgconf', ['--homedir', home, '--kill', 'all']).catch(() => undefined);
    await fs.rm(home, { recursive: true, force: true });
  });

  it('refuses a key whose only subkey is for encryption', async () => {
    await gpgIn(home, ['--quick-add-key', primary, 'cv25519', 'encr', 'never']);
    const armoredKey = await gpgIn(home, ['--armor', '--export-secret-keys', primary]);
    const error = await refusal({ armoredKey });
    expect(error.code).toBe(SIGNING_ERROR_CODES.noSigningKey);
    expect(error.message).toMatch(
      /no \(sub\)key that may sign data \(primary key \w+: certify; subkey \w+: encrypt\)/,
    );
    expect(error.message).toContain(`gpg --quick-add-key ${primary} ed25519 sign`);
  });

  it('skips an expired signing subkey for the next valid one, and gpg verifies its signatures', async () => {
    const armoredKey = await gpgIn(home, ['--armor', '--export-secret-keys', primary]);
    let key = await openpgp.readPrivateKey({ armoredKey });
    key = await key.addSubkey({ sign: true, keyExpirationTime: 3600 });
    const onlyExpiring = key.armor();
    key = await key.addSubkey({ sign: true });
    const [expiring, valid] = key.subkeys.slice(-2).map((subkey) => subkey.getFingerprint().toUpperCase());
    // two hours on, the first signing subkey has expired
    const later = () => new Date(Date.now() + 2 * 3600_000);

    const error = await refusal({ armoredKey: onlyExpiring, now: later });
    expect(error.code).toBe(SIGNING_ERROR_CODES.expired);
    expect(error.message).toContain('the signing subkey');

    expect((await loadOpenPgpSigner({ armoredKey: key.armor() }))?.signingKeyFingerprint).toBe(expiring);
    const signer = await loadOpenPgpSigner({ armoredKey: key.armor(), now: later });
    expect(signer?.signingKeyFingerprint).toBe(valid);
    expect(await signer!.fingerprint()).toBe(primary);
    const file = path.join(home, 'data.bin');
    await fs.writeFile(file, 'signed by a subkey\n');
    await fs.writeFile(
      `${file}.sig`,
      await signer!.sign(
        (async function* () {
          yield Buffer.from('signed by a subkey\n');
        })(),
      ),
    );
    expect(await verifyWithGpg(await signer!.publicKey(), file, `${file}.sig`)).toBe(true);
  });

  it('signs with a subkey when gpg exported the primary key as a stub (--export-secret-subkeys)', async () => {
    await gpgIn(home, ['--quick-add-key', primary, 'ed25519', 'sign', 'never']);
    const armoredKey = await gpgIn(home, ['--armor', '--export-secret-subkeys', primary]);
    const signer = await loadOpenPgpSigner({ armoredKey });
    expect(signer?.signingKeyFingerprint).not.toBe(primary);
    const file = path.join(home, 'stub.bin');
    await fs.writeFile(file, 'primary key offline\n');
    await fs.writeFile(
      `${file}.sig`,
      await signer!.sign(
        (async function* () {
          yield Buffer.from('primary key offline\n');
        })(),
      ),
    );
    expect(await verifyWithGpg(await signer!.publicKey(), file, `${file}.sig`)).toBe(true);
  });
});
