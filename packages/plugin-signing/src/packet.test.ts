import { describe, expect, it } from 'vitest';
import { hashedPart, mpi, signaturePacket, trailer } from './packet.js';

describe('OpenPGP v4 signature packets', () => {
  it('encodes MPIs without leading zeros, with their bit count', () => {
    expect(mpi(Uint8Array.from([0x01, 0xff]))).toEqual(Buffer.from([0x00, 0x09, 0x01, 0xff]));
    // an RSA signature that happens to start with zero bytes (1 in 256)
    expect(mpi(Uint8Array.from([0x00, 0x00, 0x80, 0x01]))).toEqual(Buffer.from([0x00, 0x10, 0x80, 0x01]));
    expect(mpi(Uint8Array.from([0x00]))).toEqual(Buffer.from([0x00, 0x00]));
    expect(mpi(new Uint8Array(0))).toEqual(Buffer.from([0x00, 0x00]));
  });

  it('frames a binary-document signature as gpg does', () => {
    const issuer = {
      algorithm: 22,
      fingerprint: Buffer.from('00112233445566778899aabbccddeeff01234567', 'hex'),
    };
    const hashed = hashedPart(issuer, 'sha256', new Date(1_700_000_000_000));
    // version 4, type 0x00, EdDSA, SHA-256, then creation time (critical) and issuer fingerprint
    expect(hashed.subarray(0, 4)).toEqual(Buffer.from([4, 0x00, 22, 8]));
    expect(hashed.readUInt16BE(4)).toBe(hashed.length - 6);
    expect(hashed.subarray(6, 12)).toEqual(Buffer.from([5, 0x82, 0x65, 0x53, 0xf1, 0x00]));
    expect(hashed.subarray(12, 15)).toEqual(Buffer.from([22, 33, 4]));
    expect(trailer(hashed.length)).toEqual(Buffer.from([4, 0xff, 0, 0, 0, hashed.length]));

    const r = Buffer.alloc(32, 1);
    const packet = signaturePacket(hashed, issuer, Buffer.from([0xab, 0xcd, 0xef]), [r, r]);
    // old-format tag 2 with a one-byte length, then the body
    expect(packet[0]).toBe(0x88);
    expect(packet[1]).toBe(packet.length - 2);
    const unhashed = packet.subarray(2 + hashed.length);
    // unhashed: the issuer key id (the fingerprint's last 8 bytes), then the digest's first 2 bytes
    expect(unhashed.subarray(0, 4)).toEqual(Buffer.from([0, 10, 9, 16]));
    expect(unhashed.subarray(4, 12)).toEqual(issuer.fingerprint.subarray(12));
    expect(unhashed.subarray(12, 14)).toEqual(Buffer.from([0xab, 0xcd]));
  });

  it('uses a two-byte length for RSA-sized signatures', () => {
    const issuer = { algorithm: 1, fingerprint: Buffer.alloc(20, 7) };
    const hashed = hashedPart(issuer, 'sha512', new Date());
    const packet = signaturePacket(hashed, issuer, Buffer.alloc(64), [Buffer.alloc(512, 0xff)]);
    expect(packet[0]).toBe(0x89);
    expect(packet.readUInt16BE(1)).toBe(packet.length - 3);
  });
});
