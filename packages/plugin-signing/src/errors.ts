import { InputError } from '@serene/core';

/** The stable codes of {@link SigningKeyError}, one per way a signing key can be unusable. */
export const SIGNING_ERROR_CODES = {
  /** the file cannot be read, or is not an OpenPGP key */
  unreadable: 'SIGNING_ERR_UNREADABLE',
  /** the file holds only a public key, or no secret part for any signing (sub)key */
  publicKeyOnly: 'SIGNING_ERR_PUBLIC_KEY_ONLY',
  /** the secret key is encrypted and no password was given */
  passwordRequired: 'SIGNING_ERR_PASSWORD_REQUIRED',
  /** the password does not decrypt the secret key */
  wrongPassword: 'SIGNING_ERR_WRONG_PASSWORD',
  /** no (sub)key may make data signatures */
  noSigningKey: 'SIGNING_ERR_NO_SIGNING_KEY',
  /** the key, or every signing (sub)key, has expired */
  expired: 'SIGNING_ERR_KEY_EXPIRED',
  /** the key, or every signing (sub)key, is revoked */
  revoked: 'SIGNING_ERR_KEY_REVOKED',
  /** the signing key is RSA under 2,048 bits */
  tooWeak: 'SIGNING_ERR_KEY_TOO_WEAK',
  /** the signing key's algorithm or version is one pacman's GnuPG or serene cannot use */
  unsupported: 'SIGNING_ERR_UNSUPPORTED_KEY',
  /** the key is malformed: no valid self-signature, or secret and public parts that do not match */
  invalid: 'SIGNING_ERR_INVALID_KEY',
} as const;

/** One of {@link SIGNING_ERROR_CODES}. */
export type SigningErrorCode = (typeof SIGNING_ERROR_CODES)[keyof typeof SIGNING_ERROR_CODES];

/**
 * The signing key given to serene cannot be used; the message says which problem and what to do.
 *
 * @remarks Thrown at start-up by `loadOpenPgpSigner`, so that a server never runs with a key it
 * cannot sign with; and by `sign` when the key expires while the server runs.
 */
export class SigningKeyError extends InputError {
  declare readonly code: SigningErrorCode;

  constructor(code: SigningErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code });
  }
}
