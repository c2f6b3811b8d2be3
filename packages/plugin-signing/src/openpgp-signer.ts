import {
  constants,
  createHash,
  createPrivateKey,
  type JsonWebKey,
  type KeyObject,
  privateEncrypt,
  sign as signWithNode,
} from 'node:crypto';
import * as fs from 'node:fs/promises';
import { createNoopLogger, type Logger, NotFoundError, type Signer } from '@serene/core';
import type * as OpenPgp from 'openpgp';
import { SIGNING_ERROR_CODES as CODES, type SigningErrorCode, SigningKeyError } from './errors.js';
import {
  HASH_ALGORITHMS,
  type HashName,
  hashedPart,
  type SignatureIssuer,
  signaturePacket,
  trailer,
} from './packet.js';

/** Name of the OpenPGP signer, for logs. */
export const OPENPGP_SIGNER_NAME = 'openpgp';

/** What `GET /key` answers (with 404) when the server has no signing key, as the original does. */
export const NO_SIGNING_KEY_MESSAGE = 'the server has no private key to sign packages';

/** RSA keys below this size are refused. */
export const MIN_RSA_BITS = 2048;

/** A key that expires within this many days is warned about at start. */
const EXPIRY_WARNING_DAYS = 30;

type OpenPgpLib = typeof OpenPgp;

/** Options of {@link loadOpenPgpSigner}. */
export interface OpenPgpSignerOptions {
  /**
   * Path of the armoured (or binary) secret key, `/app/sign_key.asc` in the container. When the file
   * does not exist, packages are published unsigned and the loader returns `undefined`.
   */
  keyFile?: string | undefined;
  /** The key itself, armoured, instead of `keyFile` (takes precedence over it). */
  armoredKey?: string | undefined;
  /** Password of an encrypted secret key (`SIGN_KEY_PASSWORD`); ignored for a key without one. */
  password?: string | undefined;
  /**
   * Digest of the signatures; pacman accepts both. SHA-256 is what gpg 2.2 picks for its own keys,
   * and the faster on CPUs with SHA extensions.
   * @default 'sha256'
   */
  hash?: HashName;
  /**
   * Clock for key validity and signature creation times.
   * @default () => new Date()
   */
  now?: () => Date;
  /** @default a logger that drops everything */
  logger?: Logger;
  /**
   * The `openpgp` module (key parsing, decryption, validation and export); loaded only when there
   * is a key.
   * @default await import('openpgp')
   */
  lib?: OpenPgpLib;
}

/** A {@link Signer} backed by an OpenPGP key file, with what it signs with. */
export interface OpenPgpSigner extends Signer {
  /** Upper-case hex fingerprint of the (sub)key that makes the signatures. */
  readonly signingKeyFingerprint: string;
  /** Algorithm and size of the signing (sub)key: `ed25519`, `rsa3072`. */
  readonly algorithm: string;
  /** When the signing (sub)key or its certificate expires; `undefined` when never. */
  readonly expires: Date | undefined;
}

/**
 * Reads an OpenPGP secret key, validates it once and returns a {@link Signer} that makes binary
 * detached v4 signatures with it, or `undefined` when there is no key (nothing is signed then).
 *
 * @remarks The first valid, non-revoked, non-expired signing-capable (sub)key is used, primary key
 * first, as the original does. Every problem with the key (a wrong or missing password, a public
 * key only, no signing (sub)key, expired, revoked, RSA under 2,048 bits, an algorithm pacman's GnuPG
 * cannot check) throws a {@link SigningKeyError} whose message says which and what to do, so that the
 * server does not start with a key it cannot sign with.
 *
 * Signing streams: the data is hashed with `node:crypto` chunk by chunk, and only the digest is
 * signed (`node:crypto` as well), so a package of any size takes constant memory.
 */
export async function loadOpenPgpSigner(
  options: OpenPgpSignerOptions = {},
): Promise<OpenPgpSigner | undefined> {
  const logger = options.logger ?? createNoopLogger();
  const input = await readKeyInput(options);
  if (!input) {
    logger.info('no signing key: packages and the database are published unsigned', {
      keyFile: options.keyFile,
    });
    return undefined;
  }
  const lib = options.lib ?? (await import('openpgp'));
  const now = options.now ?? (() => new Date());
  const hash = options.hash ?? 'sha256';
  if (!(hash in HASH_ALGORITHMS)) throw new TypeError(`unknown signature hash '${hash}'`);

  const key = await parseKey(lib, input);
  const chosen = await chooseSigningKey(lib, key, input.source, now());
  await unlock(chosen, key, input.source, options.password, logger);
  const primitive = signingPrimitive(chosen);

  const fingerprint = key.getFingerprint().toUpperCase();
  const issuer: SignatureIssuer = {
    algorithm: chosen.packet.algorithm,
    fingerprint: Buffer.from(chosen.packet.getFingerprint(), 'hex'),
  };
  const expires = chosen.expires;
  const publicKey = key.toPublic().armor();

  const signer: OpenPgpSigner = {
    name: OPENPGP_SIGNER_NAME,
    signingKeyFingerprint: chosen.packet.getFingerprint().toUpperCase(),
    algorithm: primitive.algorithm,
    expires,

    async sign(data) {
      const created = now();
      if (expires && created >= expires) {
        throw new SigningKeyError(
          CODES.expired,
          `the signing key ${fingerprint} in ${input.source} expired on ${expires.toISOString()}; ${EXTEND}`,
        );
      }
      const hashed = hashedPart(issuer, hash, created);
      const hasher = createHash(hash);
      for await (const chunk of data) hasher.update(chunk);
      hasher.update(hashed);
      hasher.update(trailer(hashed.length));
      const digest = hasher.digest();
      return signaturePacket(hashed, issuer, digest, primitive.sign(digest, hash));
    },

    async publicKey() {
      return publicKey;
    },

    async fingerprint() {
      return fingerprint;
    },
  };

  await selfTest(lib, signer, key, now());
  logger.info('signing packages', {
    fingerprint,
    signingKey: signer.signingKeyFingerprint,
    algorithm: signer.algorithm,
    expires: expires?.toISOString() ?? 'never',
  });
  if (expires && expires.getTime() - now().getTime() < EXPIRY_WARNING_DAYS * 86_400_000) {
    logger.warn(`the signing key expires on ${expires.toISOString()}; ${EXTEND}`, { fingerprint });
  }
  return signer;
}

/**
 * The armoured public key of `signer`, as `GET /key` serves it.
 *
 * @throws NotFoundError with the original's message when the server signs nothing (no key file).
 */
export async function exportPublicKey(signer: Signer | undefined): Promise<string> {
  if (!signer) throw new NotFoundError(NO_SIGNING_KEY_MESSAGE);
  return signer.publicKey();
}

// --- Reading the key ----------------------------------------------------------------------------

const EXPORT = "export it with 'gpg --armor --export-secret-keys <fingerprint>'";
const EXTEND =
  "extend it with 'gpg --quick-set-expire <fingerprint> 2y' and 'gpg --quick-set-expire <fingerprint> 2y \"*\"' " +
  '(for the subkeys), export it again and give pacman users the renewed public key (GET /key)';

interface KeyInput {
  data: Uint8Array | string;
  /** names the key in messages: the file, or "the given key" */
  source: string;
}

async function readKeyInput(options: OpenPgpSignerOptions): Promise<KeyInput | undefined> {
  if (options.armoredKey !== undefined) return { data: options.armoredKey, source: 'the given key' };
  if (options.keyFile === undefined) return undefined;
  try {
    return { data: await fs.readFile(options.keyFile), source: `'${options.keyFile}'` };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SigningKeyError(
      CODES.unreadable,
      `cannot read the signing key file '${options.keyFile}' (${(error as Error).message}); ` +
        'make it readable by the server, or remove it to publish unsigned',
      { cause: error },
    );
  }
}

async function parseKey(lib: OpenPgpLib, input: KeyInput): Promise<OpenPgp.PrivateKey> {
  const text = typeof input.data === 'string' ? input.data : Buffer.from(input.data).toString('latin1');
  const blocks = text.match(/-----BEGIN PGP [A-Z ]+-----/g)?.length ?? 0;
  if (blocks > 1) {
    throw new SigningKeyError(
      CODES.unreadable,
      `${input.source} holds ${blocks} armoured blocks; keep only the secret key to sign with: ${EXPORT}`,
    );
  }
  let keys: OpenPgp.Key[];
  try {
    keys = text.includes('-----BEGIN PGP')
      ? await lib.readKeys({ armoredKeys: text })
      : await lib.readKeys({
          binaryKeys: typeof input.data === 'string' ? Buffer.from(input.data) : input.data,
        });
  } catch (error) {
    throw new SigningKeyError(
      CODES.unreadable,
      `${input.source} is not an OpenPGP key (${(error as Error).message}); ${EXPORT}`,
      { cause: error },
    );
  }
  if (keys.length !== 1) {
    throw new SigningKeyError(
      CODES.unreadable,
      `${input.source} holds ${keys.length} keys; keep only the one to sign with: ${EXPORT}`,
    );
  }
  const key = keys[0]!;
  const fingerprint = key.getFingerprint().toUpperCase();
  if (!key.isPrivate()) {
    throw new SigningKeyError(
      CODES.publicKeyOnly,
      `${input.source} holds only the public key ${fingerprint}, but signing needs its secret part: ` +
        `export it with 'gpg --armor --export-secret-keys ${fingerprint}', or sign through a gpg-agent that holds it (its socket as S.gpg-agent in the data folder)`,
    );
  }
  return key;
}

// --- Choosing the signing (sub)key --------------------------------------------------------------

type KeyPacket =
  | OpenPgp.PublicKeyPacket
  | OpenPgp.SecretKeyPacket
  | OpenPgp.PublicSubkeyPacket
  | OpenPgp.SecretSubkeyPacket;

/** A (sub)key that may sign, with its secret packet. */
interface SigningCandidate {
  packet: OpenPgp.SecretKeyPacket | OpenPgp.SecretSubkeyPacket;
  /** `primary key 0123…` or `subkey 0123…`, for messages */
  label: string;
  expires: Date | undefined;
}

interface Problem {
  code: SigningErrorCode;
  message: string;
}

/** Config for openpgp's own checks: size limits are ours, so that the error can say so. */
function checkConfig(lib: OpenPgpLib): OpenPgp.Config {
  return { ...lib.config, minRSABits: 512, allowMissingKeyFlags: true };
}

async function chooseSigningKey(
  lib: OpenPgpLib,
  key: OpenPgp.PrivateKey,
  source: string,
  date: Date,
): Promise<SigningCandidate> {
  const config = checkConfig(lib);
  const fingerprint = key.getFingerprint().toUpperCase();
  const subject = `the key ${fingerprint} in ${source}`;
  if (await key.isRevoked(undefined, undefined, date, config)) {
    throw new SigningKeyError(
      CODES.revoked,
      `${subject} is revoked; make a new signing key, put it in ${source}, and have pacman users add its public key (GET /key)`,
    );
  }
  try {
    await key.verifyPrimaryKey(date, undefined, config);
  } catch (error) {
    const message = (error as Error).message;
    if (/expired/i.test(message)) {
      const expiry = await key.getExpirationTime(undefined, config).catch(() => null);
      const when = expiry instanceof Date ? ` on ${expiry.toISOString()}` : '';
      throw new SigningKeyError(CODES.expired, `${subject} expired${when}; ${EXTEND}`, { cause: error });
    }
    throw new SigningKeyError(CODES.invalid, `${subject} is not valid (${message}); ${EXPORT}`, {
      cause: error,
    });
  }
  const primaryExpiry = asDate(await key.getExpirationTime(undefined, config));

  const purposes: string[] = [];
  const problems: Problem[] = [];

  // primary key first, then the subkeys in the file's order, as the original picks
  const entries: { packet: KeyPacket; label: string; flags: number | undefined; subkey?: OpenPgp.Subkey }[] =
    [];
  const primarySignature = (await key.getPrimaryUser(date, undefined, config)).selfCertification;
  entries.push({
    packet: key.keyPacket,
    label: `primary key ${keyId(key.keyPacket)}`,
    flags: primarySignature.keyFlags?.[0],
  });
  for (const subkey of key.subkeys) {
    const newest = [...subkey.bindingSignatures].sort((a, b) => time(b.created) - time(a.created))[0];
    entries.push({
      packet: subkey.keyPacket,
      label: `subkey ${keyId(subkey.keyPacket)}`,
      flags: newest?.keyFlags?.[0],
      subkey,
    });
  }

  for (const entry of entries) {
    purposes.push(`${entry.label}: ${describeFlags(lib, entry.flags)}`);
    if (!canSign(lib, entry.packet, entry.flags)) continue;
    const problem = await signingProblem(lib, key, entry, date, config);
    if (problem) {
      problems.push(problem);
      continue;
    }
    const ownExpiry = entry.subkey ? asDate(await entry.subkey.getExpirationTime(date, config)) : undefined;
    return {
      packet: entry.packet as OpenPgp.SecretKeyPacket | OpenPgp.SecretSubkeyPacket,
      label: entry.label,
      expires: earliest(primaryExpiry, ownExpiry),
    };
  }

  const first = problems[0];
  if (!first) {
    throw new SigningKeyError(
      CODES.noSigningKey,
      `${subject} has no (sub)key that may sign data (${purposes.join('; ')}); add a signing subkey with ` +
        `'gpg --quick-add-key ${fingerprint} ed25519 sign' and export the key again`,
    );
  }
  const more =
    problems.length > 1 ? ` (its ${problems.length - 1} other signing (sub)keys cannot be used either)` : '';
  throw new SigningKeyError(first.code, `${first.message}${more}`);
}

/** Why a signing-capable (sub)key cannot be used, or `undefined` when it can. */
async function signingProblem(
  lib: OpenPgpLib,
  key: OpenPgp.PrivateKey,
  entry: { packet: KeyPacket; label: string; subkey?: OpenPgp.Subkey },
  date: Date,
  config: OpenPgp.Config,
): Promise<Problem | undefined> {
  const fingerprint = key.getFingerprint().toUpperCase();
  const subject = `the signing ${entry.label} of key ${fingerprint}`;
  if (entry.subkey) {
    try {
      await entry.subkey.verify(date, config);
    } catch (error) {
      const message = (error as Error).message;
      if (/revoked/i.test(message)) {
        return {
          code: CODES.revoked,
          message: `${subject} is revoked; add a new signing subkey with 'gpg --quick-add-key ${fingerprint} ed25519 sign' and export the key again`,
        };
      }
      if (/expired/i.test(message)) {
        return { code: CODES.expired, message: `${subject} has expired; ${EXTEND}` };
      }
      return { code: CODES.invalid, message: `${subject} is not valid (${message}); ${EXPORT}` };
    }
  }
  const packet = entry.packet;
  const info = packet.getAlgorithmInfo();
  if (packet.version !== 4) {
    return {
      code: CODES.unsupported,
      message: `${subject} is a version ${packet.version} key, which pacman's GnuPG cannot verify; make a (v4) key with gpg`,
    };
  }
  if (!supportedAlgorithm(lib, packet)) {
    const curve = info.curve ? ` (${info.curve})` : '';
    return {
      code: CODES.unsupported,
      message:
        `${subject} uses ${info.algorithm}${curve}, which serene cannot sign with; add an ed25519 or RSA signing subkey ` +
        `with 'gpg --quick-add-key ${fingerprint} ed25519 sign' and export the key again`,
    };
  }
  if (isRsa(lib, packet) && (info.bits ?? 0) < MIN_RSA_BITS) {
    return {
      code: CODES.tooWeak,
      message:
        `${subject} is RSA of ${info.bits} bits, under the ${MIN_RSA_BITS} bits serene accepts; ` +
        'make a new key with \'gpg --quick-gen-key "<name> <email>" rsa3072 sign never\' (or ed25519)',
    };
  }
  if (
    !(packet instanceof lib.SecretKeyPacket || packet instanceof lib.SecretSubkeyPacket) ||
    packet.isDummy()
  ) {
    return {
      code: CODES.publicKeyOnly,
      message:
        `the secret part of ${subject} is not in the file (gpg exported only a stub: the key lives on a smartcard, ` +
        `or it was left out of the export); ${EXPORT}, from a keyring that holds the secret signing key`,
    };
  }
  try {
    const found = await key.getSigningKey(packet.getKeyID(), date, undefined, config);
    if (!found.getKeyID().equals(packet.getKeyID())) throw new Error('another key was found');
  } catch (error) {
    return {
      code: CODES.invalid,
      message: `${subject} is not valid (${(error as Error).message}); ${EXPORT}`,
    };
  }
  return undefined;
}

/** Decrypts the chosen secret (sub)key with the password and checks it against its public part. */
async function unlock(
  chosen: SigningCandidate,
  key: OpenPgp.PrivateKey,
  source: string,
  password: string | undefined,
  logger: Logger,
): Promise<void> {
  const fingerprint = key.getFingerprint().toUpperCase();
  if (chosen.packet.isDecrypted()) {
    if (password)
      logger.debug('the signing key is not protected; its password is not needed', { fingerprint });
  } else {
    if (password === undefined) {
      throw new SigningKeyError(
        CODES.passwordRequired,
        `the signing key ${fingerprint} in ${source} is protected by a password and none is set; ` +
          "set SIGN_KEY_PASSWORD to the key's password",
      );
    }
    try {
      await chosen.packet.decrypt(password);
    } catch (error) {
      const message = (error as Error).message;
      if (/passphrase/i.test(message)) {
        throw new SigningKeyError(
          CODES.wrongPassword,
          `the password in SIGN_KEY_PASSWORD does not unlock the signing key ${fingerprint} in ${source}; ` +
            "set it to the key's password",
          { cause: error },
        );
      }
      throw new SigningKeyError(
        CODES.invalid,
        `cannot decrypt the signing key ${fingerprint} in ${source} (${message}); ${EXPORT}`,
        { cause: error },
      );
    }
  }
  try {
    await chosen.packet.validate();
  } catch (error) {
    throw new SigningKeyError(
      CODES.invalid,
      `the secret part of the signing ${chosen.label} in ${source} does not match its public part ` +
        `(${(error as Error).message}); the file is damaged: ${EXPORT}`,
      { cause: error },
    );
  }
}

// --- Signing primitives -------------------------------------------------------------------------

interface SigningPrimitive {
  /** `ed25519`, `rsa3072` */
  algorithm: string;
  /** Signs a digest and returns the signature's MPIs (RSA: one, EdDSA: r and s). */
  sign(digest: Buffer, hash: HashName): Uint8Array[];
}

/** Builds a `node:crypto` key from the decrypted OpenPGP parameters. */
function signingPrimitive(chosen: SigningCandidate): SigningPrimitive {
  const packet = chosen.packet;
  const pub = packet.publicParams as Record<string, Uint8Array>;
  const priv = packet.privateParams as Record<string, Uint8Array> | null;
  if (!priv) throw new SigningKeyError(CODES.invalid, `the signing ${chosen.label} has no secret parameters`);
  const info = packet.getAlgorithmInfo();

  if (info.algorithm === 'eddsaLegacy') {
    const q = pub.Q!;
    // a native (0x40-prefixed) Ed25519 point, and the 32-byte seed
    const jwk: JsonWebKey = {
      kty: 'OKP',
      crv: 'Ed25519',
      x: base64url(q.subarray(1)),
      d: base64url(leftPad(priv.seed!, 32)),
    };
    const keyObject = createPrivateKey({ key: jwk, format: 'jwk' });
    return {
      algorithm: 'ed25519',
      sign(digest) {
        const signature = signWithNode(null, digest, keyObject);
        return [signature.subarray(0, 32), signature.subarray(32)];
      },
    };
  }

  // RSA: OpenPGP keeps p < q and u = p⁻¹ mod q; JWK wants qi = q⁻¹ mod p, so the roles swap
  const n = toBigInt(pub.n!);
  const d = toBigInt(priv.d!);
  const p = toBigInt(priv.q!);
  const q = toBigInt(priv.p!);
  const jwk: JsonWebKey = {
    kty: 'RSA',
    n: base64url(pub.n!),
    e: base64url(pub.e!),
    d: base64url(priv.d!),
    p: base64url(fromBigInt(p)),
    q: base64url(fromBigInt(q)),
    dp: base64url(fromBigInt(d % (p - 1n))),
    dq: base64url(fromBigInt(d % (q - 1n))),
    qi: base64url(fromBigInt(modInverse(q, p))),
  };
  const keyObject: KeyObject = createPrivateKey({ key: jwk, format: 'jwk' });
  const bits = n.toString(2).length;
  return {
    algorithm: `rsa${bits}`,
    sign(digest, hash) {
      // EMSA-PKCS1-v1_5 over DigestInfo(digest): what RSA signatures in OpenPGP are
      const signature = privateEncrypt(
        { key: keyObject, padding: constants.RSA_PKCS1_PADDING },
        Buffer.concat([HASH_ALGORITHMS[hash].digestInfo, digest]),
      );
      return [signature];
    },
  };
}

/** Signs a few bytes and checks the signature with openpgp, so a key that signs wrong never starts. */
async function selfTest(lib: OpenPgpLib, signer: Signer, key: OpenPgp.PrivateKey, date: Date): Promise<void> {
  const data = Buffer.from('serene signing self-test\n');
  try {
    const signature = await signer.sign(
      (async function* () {
        yield data;
      })(),
    );
    const message = await lib.createMessage({ binary: new Uint8Array(data) });
    const parsed = await lib.readSignature({ binarySignature: signature });
    const result = await lib.verify({
      message,
      signature: parsed,
      verificationKeys: key.toPublic(),
      date,
      format: 'binary',
      config: checkConfig(lib),
    });
    await result.signatures[0]?.verified;
    if (result.signatures.length !== 1) throw new Error('no signature was read back');
  } catch (error) {
    if (error instanceof SigningKeyError) throw error;
    throw new SigningKeyError(
      CODES.invalid,
      `a test signature with the key ${key.getFingerprint().toUpperCase()} does not verify (${(error as Error).message}); ${EXPORT}`,
      { cause: error },
    );
  }
}

// --- Internal helpers ---------------------------------------------------------------------------

function canSign(lib: OpenPgpLib, packet: KeyPacket, flags: number | undefined): boolean {
  const signs = [
    lib.enums.publicKey.rsaEncryptSign,
    lib.enums.publicKey.rsaSign,
    lib.enums.publicKey.dsa,
    lib.enums.publicKey.ecdsa,
    lib.enums.publicKey.eddsaLegacy,
    lib.enums.publicKey.ed25519,
    lib.enums.publicKey.ed448,
  ] as number[];
  if (!signs.includes(packet.algorithm)) return false;
  // a v4 key without key flags may be used for anything its algorithm can do
  return flags === undefined || (flags & lib.enums.keyFlags.signData) !== 0;
}

function supportedAlgorithm(lib: OpenPgpLib, packet: KeyPacket): boolean {
  if (isRsa(lib, packet)) return true;
  return (
    packet.algorithm === lib.enums.publicKey.eddsaLegacy &&
    packet.getAlgorithmInfo().curve === 'ed25519Legacy'
  );
}

function isRsa(lib: OpenPgpLib, packet: KeyPacket): boolean {
  return (
    packet.algorithm === lib.enums.publicKey.rsaEncryptSign ||
    packet.algorithm === lib.enums.publicKey.rsaSign
  );
}

function describeFlags(lib: OpenPgpLib, flags: number | undefined): string {
  if (flags === undefined) return 'no usage flags';
  const names: string[] = [];
  const all = lib.enums.keyFlags;
  if (flags & all.certifyKeys) names.push('certify');
  if (flags & all.signData) names.push('sign');
  if (flags & (all.encryptCommunication | all.encryptStorage)) names.push('encrypt');
  if (flags & all.authentication) names.push('authenticate');
  return names.length > 0 ? names.join(', ') : 'no usage';
}

function keyId(packet: KeyPacket): string {
  return packet.getKeyID().toHex().toUpperCase();
}

function time(date: Date | null): number {
  return date ? date.getTime() : 0;
}

function asDate(expiry: Date | number | null): Date | undefined {
  return expiry instanceof Date ? expiry : undefined;
}

function earliest(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (!a) return b;
  if (!b) return a;
  return a < b ? a : b;
}

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

function leftPad(bytes: Uint8Array, length: number): Uint8Array {
  if (bytes.length >= length) return bytes;
  const padded = new Uint8Array(length);
  padded.set(bytes, length - bytes.length);
  return padded;
}

function toBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

function fromBigInt(value: bigint): Uint8Array {
  const hex = value.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex');
}

/** `a⁻¹ mod m` by the extended Euclidean algorithm (m prime here). */
function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [a % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const quotient = oldR / r;
    [oldR, r] = [r, oldR - quotient * r];
    [oldS, s] = [s, oldS - quotient * s];
  }
  if (oldR !== 1n)
    throw new SigningKeyError(CODES.invalid, 'the RSA key is malformed (its primes share a factor)');
  return ((oldS % m) + m) % m;
}
