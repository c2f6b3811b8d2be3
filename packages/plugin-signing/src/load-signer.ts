/**
 * Which signer a data folder asks for, as the original decides: no key file, no signing; a secret key
 * in the file, the OpenPGP signer; only a public key and a gpg-agent socket beside it, signatures
 * through the agent (core's gpg-agent signer; the key on the agent's disk, a smartcard or a security
 * key).
 */
import * as fs from 'node:fs/promises';
import { createNoopLogger, type Logger, loadGpgAgentSigner, type Signer } from '@serene/core';
import { SIGNING_ERROR_CODES, SigningKeyError } from './errors.js';
import { loadOpenPgpSigner } from './openpgp-signer.js';

/** Options of {@link loadSigner}. */
export interface LoadSignerOptions {
  /** `sign_key.asc`: a secret key, or the public certificate of the agent's key */
  keyFile: string;
  /** `S.gpg-agent` (the original's `/app/S.gpg-agent`): when it exists, signing may go through it */
  agentSocket: string;
  /** `SIGN_KEY_PASSWORD`: the key file's password, or the agent key's passphrase or the card's PIN */
  password?: string | undefined;
  logger?: Logger;
}

/**
 * Loads the signer of a data folder, or `undefined` when there is no key file (unsigned publishing).
 *
 * @throws `SigningKeyError` for a key file it cannot use (and no agent to sign for it);
 *   `GpgAgentUnavailableError` / `GpgAgentKeyError` (core) when the agent does not answer or holds no
 *   usable key of the certificate.
 */
export async function loadSigner(options: LoadSignerOptions): Promise<Signer | undefined> {
  const logger = options.logger ?? createNoopLogger();
  const agent = await fs.lstat(options.agentSocket).then(
    () => true,
    () => false,
  );
  try {
    const signer = await loadOpenPgpSigner({ keyFile: options.keyFile, password: options.password, logger });
    if (signer && agent) {
      logger.warn('the key file holds a secret key: it signs, and the gpg-agent socket is not used', {
        keyFile: options.keyFile,
        agentSocket: options.agentSocket,
      });
    }
    return signer;
  } catch (error) {
    if (!agent || !(error instanceof SigningKeyError) || error.code !== SIGNING_ERROR_CODES.publicKeyOnly)
      throw error;
  }
  return loadGpgAgentSigner({
    socket: options.agentSocket,
    publicKeyFile: options.keyFile,
    passphrase: options.password,
    logger,
  });
}
