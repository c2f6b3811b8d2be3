/**
 * A `Signer` makes detached, binary OpenPGP signatures that pacman verifies.
 *
 * @remarks `sign` must stream: a package of hundreds of MB is never held in memory whole.
 */
export interface Signer {
  /** Short name of the implementation, for logs (`openpgp`, `gpg`). */
  readonly name: string;
  /** Signs everything `data` yields and returns the binary (not armoured) detached signature. */
  sign(data: AsyncIterable<Uint8Array>): Promise<Uint8Array>;
  /** The public key, ASCII-armoured, as `GET /key` serves it. */
  publicKey(): Promise<string>;
  /** Upper-case hex fingerprint of the signing key's certificate. */
  fingerprint(): Promise<string>;
  /** Prepares the signer when serene starts (starts an agent, checks the key); a rejection stops the start. */
  init?(): Promise<void>;
  /** Releases resources (agents, temp folders); called once, when serene stops. */
  dispose?(): Promise<void>;
}
