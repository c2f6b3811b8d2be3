/**
 * Encoding of OpenPGP v4 signature packets (RFC 4880 §5.2.3, RFC 9580 §5.2.3), just what a detached
 * signature of a binary document needs. The data is hashed by the caller, so a signature of any size
 * streams; these helpers only frame the few hundred bytes around the digest.
 */

/** OpenPGP hash algorithm ids (RFC 4880 §9.4) of the digests serene signs with. */
export const HASH_ALGORITHMS = {
  sha256: { id: 8, digestInfo: Buffer.from('3031300d060960864801650304020105000420', 'hex') },
  sha512: { id: 10, digestInfo: Buffer.from('3051300d060960864801650304020305000440', 'hex') },
} as const;

/** A hash serene signs with: a `node:crypto` name and a key of {@link HASH_ALGORITHMS}. */
export type HashName = keyof typeof HASH_ALGORITHMS;

/** Signature type 0x00: signature of a binary document. */
const BINARY_DOCUMENT = 0x00;
/** Signature subpacket types (RFC 4880 §5.2.3.1, RFC 9580 §5.2.3.7). */
const SUBPACKET = { creationTime: 2, issuerKeyId: 16, issuerFingerprint: 33 } as const;
/** Packet tag of a signature packet. */
const SIGNATURE_TAG = 2;

/** What identifies the key a signature is made with. */
export interface SignatureIssuer {
  /** OpenPGP public-key algorithm id of the signing (sub)key (1 RSA, 22 EdDSA) */
  algorithm: number;
  /** the signing (sub)key's v4 fingerprint: 20 bytes */
  fingerprint: Uint8Array;
}

/**
 * The hashed part of a v4 binary-document signature: version, type, algorithms and the hashed
 * subpackets (creation time, issuer fingerprint). It is hashed after the data.
 */
export function hashedPart(issuer: SignatureIssuer, hash: HashName, created: Date): Buffer {
  const seconds = Math.floor(created.getTime() / 1000);
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > 0xffff_ffff) {
    throw new RangeError(`signature creation time ${created.toISOString()} is out of range`);
  }
  const time = Buffer.alloc(4);
  time.writeUInt32BE(seconds);
  const subpackets = Buffer.concat([
    // creation time is critical, as RFC 9580 §5.2.3.11 asks
    subpacket(SUBPACKET.creationTime, time, true),
    subpacket(SUBPACKET.issuerFingerprint, Buffer.concat([Buffer.from([4]), issuer.fingerprint])),
  ]);
  return Buffer.concat([
    Buffer.from([4, BINARY_DOCUMENT, issuer.algorithm, HASH_ALGORITHMS[hash].id]),
    uint16(subpackets.length),
    subpackets,
  ]);
}

/** The v4 trailer hashed after {@link hashedPart}: `04 FF` and the hashed part's length. */
export function trailer(hashedLength: number): Buffer {
  const bytes = Buffer.from([4, 0xff, 0, 0, 0, 0]);
  bytes.writeUInt32BE(hashedLength, 2);
  return bytes;
}

/**
 * The whole signature packet: the hashed part, the unhashed issuer key id (for older verifiers and
 * pacman's key lookup), the digest's first two bytes and the algorithm's signature MPIs.
 */
export function signaturePacket(
  hashed: Uint8Array,
  issuer: SignatureIssuer,
  digest: Uint8Array,
  mpis: readonly Uint8Array[],
): Buffer {
  const keyId = issuer.fingerprint.subarray(issuer.fingerprint.length - 8);
  const unhashed = subpacket(SUBPACKET.issuerKeyId, keyId);
  const body = Buffer.concat([
    hashed,
    uint16(unhashed.length),
    unhashed,
    digest.subarray(0, 2),
    ...mpis.map((value) => mpi(value)),
  ]);
  return Buffer.concat([packetHeader(SIGNATURE_TAG, body.length), body]);
}

/** A multiprecision integer: a two-byte bit count, then the big-endian value without leading zeros. */
export function mpi(value: Uint8Array): Buffer {
  let start = 0;
  while (start < value.length && value[start] === 0) start++;
  const bytes = value.subarray(start);
  const bits = bytes.length === 0 ? 0 : (bytes.length - 1) * 8 + (32 - Math.clz32(bytes[0]!));
  return Buffer.concat([uint16(bits), bytes]);
}

// --- Internal helpers ---------------------------------------------------------------------------

function subpacket(type: number, data: Uint8Array, critical = false): Buffer {
  return Buffer.concat([
    subpacketLength(data.length + 1),
    Buffer.from([critical ? type | 0x80 : type]),
    data,
  ]);
}

function subpacketLength(length: number): Buffer {
  if (length < 192) return Buffer.from([length]);
  if (length < 8384) return Buffer.from([((length - 192) >> 8) + 192, (length - 192) & 0xff]);
  const bytes = Buffer.from([0xff, 0, 0, 0, 0]);
  bytes.writeUInt32BE(length, 1);
  return bytes;
}

/** An old-format packet header, as gpg writes signature packets. */
function packetHeader(tag: number, length: number): Buffer {
  if (length < 0x100) return Buffer.from([0x80 | (tag << 2), length]);
  if (length < 0x10000) return Buffer.from([0x80 | (tag << 2) | 1, length >> 8, length & 0xff]);
  const bytes = Buffer.from([0x80 | (tag << 2) | 2, 0, 0, 0, 0]);
  bytes.writeUInt32BE(length, 1);
  return bytes;
}

function uint16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}
