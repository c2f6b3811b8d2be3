/**
 * @serene/plugin-signing: OpenPGP signatures that pacman trusts, made from an armoured key file
 * (`/app/sign_key.asc`) with the `openpgp` package for the key and `node:crypto` for the data; or,
 * with only a public key and a gpg-agent socket beside it, through the agent (`loadSigner`).
 */

export { SIGNING_ERROR_CODES, type SigningErrorCode, SigningKeyError } from './errors.js';
export { type LoadSignerOptions, loadSigner } from './load-signer.js';
export {
  exportPublicKey,
  loadOpenPgpSigner,
  MIN_RSA_BITS,
  NO_SIGNING_KEY_MESSAGE,
  OPENPGP_SIGNER_NAME,
  type OpenPgpSigner,
  type OpenPgpSignerOptions,
} from './openpgp-signer.js';
export type { HashName } from './packet.js';
