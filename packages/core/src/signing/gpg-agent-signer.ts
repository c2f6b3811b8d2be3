/**
 * Signing through a running gpg-agent: the secret key stays in the agent (on its disk, or on a
 * smartcard or security key the agent reaches through its scdaemon); serene holds only the public
 * certificate. See docs/signing.md ("Signing through a gpg-agent").
 *
 * GnuPG itself does the work: a private, throw-away GnuPG home gets the certificate and a link to the
 * agent's socket, and `gpg` signs there (`--no-autostart`, so that a vanished agent is an error and
 * not a fresh, empty agent). `gpg-connect-agent KEYINFO` tells which keys the agent holds, and
 * `gpg --card-status` how many PIN tries a card has left.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Signer } from '../contracts/signer.js';
import { InputError, SereneError, UnavailableError } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';
import { createGpgSigner } from './gpg-signer.js';

/** Name of the gpg-agent signer, for logs. */
export const GPG_AGENT_SIGNER_NAME = 'gpg-agent';

/** How long one gpg or gpg-connect-agent call may take (a card may be slow; a PIN is never typed). */
const TOOL_TIMEOUT_MS = 60_000;

/** The gpg-agent does not answer at its socket (gone, stopped, socket removed). */
export class GpgAgentUnavailableError extends UnavailableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_GPG_AGENT_UNAVAILABLE' });
  }
}

/** The agent holds no usable secret key for the certificate, or the key needs a password not given. */
export class GpgAgentKeyError extends InputError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_GPG_AGENT_KEY' });
  }
}

/**
 * Signing was refused to protect a smartcard: its user PIN has a single try left (a wrong PIN would
 * lock it), it is locked, or its PIN counter cannot be read.
 */
export class SmartcardPinError extends SereneError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_SMARTCARD_PIN' });
  }
}

// --- the card's PIN counter ----------------------------------------------------------------------

/** What {@link parseCardStatus} reads from `gpg --card-status`. */
export interface CardStatus {
  /** the card's serial number, when printed */
  serial: string | undefined;
  /**
   * the retry counters of the user PIN (PW1, which signing uses), the reset code and the admin PIN,
   * in the order gpg prints them; empty when the output has no counter line
   */
  pinRetries: number[];
}

/**
 * Reads `gpg --card-status` output, with `--with-colons` (`pinretry:3:0:3:`, `serial:…:`) or as
 * people read it (`PIN retry counter : 3 0 3`, `Serial number ....: …`, English labels: run gpg with
 * `LC_ALL=C`).
 */
export function parseCardStatus(text: string): CardStatus {
  let serial: string | undefined;
  let pinRetries: number[] = [];
  const numbers = (fields: string[]) =>
    fields
      .map((field) => field.trim())
      .filter((field) => field !== '')
      .map(Number)
      .filter((value) => Number.isInteger(value) && value >= 0);
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith('pinretry:')) pinRetries = numbers(line.split(':').slice(1));
    else if (line.startsWith('serial:')) serial = line.split(':')[1] || undefined;
    else {
      const human = /^\s*([^:]*?)\s*\.*\s*:\s*(.*)$/.exec(line);
      if (!human) continue;
      const label = human[1]!.replace(/[ .]+$/, '');
      if (label === 'PIN retry counter') pinRetries = numbers(human[2]!.split(/\s+/));
      else if (label === 'Serial number') serial = human[2]!.trim() || undefined;
    }
  }
  return { serial, pinRetries };
}

/**
 * The last-PIN-try guard (as the original): throws a {@link SmartcardPinError} when the card's user
 * PIN has one try left ("one retry left") or none ("card is locked"), or when no counter was read.
 */
export function checkPinRetries(status: CardStatus, what = 'the smartcard'): void {
  const tries = status.pinRetries[0];
  const card = status.serial ? `${what} (serial ${status.serial})` : what;
  if (tries === undefined) {
    throw new SmartcardPinError(`refusing to sign: the PIN retry counter of ${card} could not be read`);
  }
  if (tries === 0) {
    throw new SmartcardPinError(
      `refusing to sign: ${card} is locked (no PIN retry left); unblock it with its PUK or admin PIN`,
    );
  }
  if (tries === 1) {
    throw new SmartcardPinError(
      `refusing to sign: ${card} has one retry left for its PIN; a wrong PIN would lock it. ` +
        'Check SIGN_KEY_PASSWORD, then reset the counter by entering the right PIN once (gpg --card-edit, verify)',
    );
  }
}

// --- keys the agent holds ------------------------------------------------------------------------

/** One line of the agent's `KEYINFO` answer. */
export interface AgentKeyInfo {
  keygrip: string;
  /** `D` on disk, `T` on a smartcard (token), `X` unknown, `-` missing */
  type: string;
  /** the card's serial number, for a key on a card */
  serial: string | undefined;
  /** the passphrase is in the agent's cache */
  cached: boolean;
  /** `P` protected by a passphrase, `C` not protected, `-` unknown */
  protection: string;
  /** disabled in the agent (`D` flag) */
  disabled: boolean;
  /** each use must be confirmed on the agent's side (`c` flag) */
  confirm: boolean;
}

/** Reads the `S KEYINFO …` status lines of `gpg-connect-agent 'KEYINFO …' /bye`. */
export function parseKeyInfo(text: string): AgentKeyInfo[] {
  const infos: AgentKeyInfo[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] !== 'S' || fields[1] !== 'KEYINFO' || !fields[2]) continue;
    const [, , keygrip, type = '-', serial = '-', , cached = '-', protection = '-', , , flags = '-'] = fields;
    infos.push({
      keygrip,
      type,
      serial: serial === '-' ? undefined : serial,
      cached: cached === '1',
      protection,
      disabled: flags !== '-' && flags.includes('D'),
      confirm: flags !== '-' && flags.includes('c'),
    });
  }
  return infos;
}

/** A key of the certificate that may sign, as `gpg --with-colons --with-keygrip --list-keys` lists it. */
export interface CertificateKey {
  fingerprint: string;
  keygrip: string;
  primary: boolean;
  /** gpg's validity field: `r` revoked, `e` expired, `i` invalid, `d` disabled, else usable */
  validity: string;
  /** lower-case capabilities of this (sub)key: `s` sign, `c` certify, `e` encrypt, `a` authenticate */
  capabilities: string;
}

/** Reads the (sub)keys of `gpg --with-colons --with-keygrip --list-keys` in listed order. */
export function parseColonKeys(text: string): { primary: string | undefined; keys: CertificateKey[] } {
  const keys: CertificateKey[] = [];
  let current: Partial<CertificateKey> | undefined;
  let primary: string | undefined;
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    const record = fields[0];
    if (record === 'pub' || record === 'sub') {
      current = {
        primary: record === 'pub',
        validity: fields[1] ?? '',
        capabilities: (fields[11] ?? '').replace(/[A-Z]/g, ''),
      };
    } else if (record === 'fpr' && current && current.fingerprint === undefined) {
      current.fingerprint = (fields[9] ?? '').toUpperCase();
      if (current.primary && primary === undefined) primary = current.fingerprint;
    } else if (record === 'grp' && current && current.keygrip === undefined) {
      current.keygrip = (fields[9] ?? '').toUpperCase();
      if (current.fingerprint) keys.push(current as CertificateKey);
      current = undefined;
    }
  }
  return { primary, keys };
}

// --- the signer ----------------------------------------------------------------------------------

/** Options of {@link loadGpgAgentSigner}. */
export interface GpgAgentSignerOptions {
  /** the agent's socket (`S.gpg-agent` in the data folder) */
  socket: string;
  /** the public certificate, armoured or binary (`sign_key.asc`) */
  publicKeyFile: string;
  /** `SIGN_KEY_PASSWORD`: the key's passphrase or the card's PIN, given when the agent asks */
  passphrase?: string | undefined;
  /** @default 'gpg' */
  gpg?: string;
  /** @default 'gpg-connect-agent' */
  gpgConnectAgent?: string;
  /**
   * What loading does when the agent does not answer (or a card refuses, by its PIN counter): `wait`
   * logs it and returns a signer whose signatures fail with the reason until the agent answers (the
   * key is chosen then); `fail` throws it.
   * @default 'wait'
   */
  whenUnavailable?: 'wait' | 'fail';
  /** @default a logger that drops everything */
  logger?: Logger;
}

/** A {@link Signer} whose key lives in a gpg-agent, with what it signs with. */
export interface GpgAgentSigner extends Signer {
  /** fingerprint of the (sub)key that makes the signatures (undefined until the agent answered) */
  readonly signingKeyFingerprint: string | undefined;
  /** the agent keeps that key on a smartcard (the PIN guard runs before each signature) */
  readonly onCard: boolean | undefined;
  /** the socket signatures go through */
  readonly socket: string;
  /**
   * the socket is a restricted one (the agent's extra socket): the key was found with `HAVEKEY`, and
   * whether it is on a card (so the PIN guard) cannot be known
   */
  readonly restricted: boolean | undefined;
  /** Checks that the agent answers and, for a card, the PIN guard (what each `sign` checks first). */
  check(): Promise<void>;
  dispose(): Promise<void>;
}

interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runTool(program: string, args: readonly string[]): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(
      program,
      args,
      { timeout: TOOL_TIMEOUT_MS, env: { ...process.env, LC_ALL: 'C', LANGUAGE: 'C' }, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (error && typeof (error as { code?: unknown }).code === 'string') {
          reject(new SereneError(`cannot run ${program}`, { cause: error }));
          return;
        }
        const code = error ? ((error as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** Resolves when something accepts connections at `socket`, else rejects with the reason. */
export function probeAgentSocket(socket: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const connection = net.connect(socket);
    const timer = setTimeout(() => {
      connection.destroy();
      reject(
        new GpgAgentUnavailableError(
          `the gpg-agent at ${socket} does not answer (no reply in ${timeoutMs} ms)`,
        ),
      );
    }, timeoutMs);
    connection.once('connect', () => {
      clearTimeout(timer);
      connection.destroy();
      resolve();
    });
    connection.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why =
        error.code === 'ENOENT'
          ? 'its socket is gone'
          : error.code === 'ECONNREFUSED'
            ? 'nothing listens on its socket (the agent stopped)'
            : error.message;
      reject(
        new GpgAgentUnavailableError(`the gpg-agent at ${socket} is not reachable: ${why}`, { cause: error }),
      );
    });
  });
}

/** Does gpg's message say that it could not reach an agent? */
function saysAgentGone(message: string): boolean {
  return /no gpg-agent running|connection refused|can't connect to the agent|No agent running|not connected to agent|IPC connect call failed|No such file or directory.*S\.gpg-agent/i.test(
    message,
  );
}

/**
 * Loads a {@link GpgAgentSigner}: imports the certificate into a private GnuPG home linked to the
 * agent's socket and chooses, as the original, the first (sub)key that may sign, is neither revoked
 * nor expired, and whose secret the agent holds without it being disabled or needing a
 * confirmation. A protected key on disk needs `passphrase`. When the agent does not answer yet, the
 * key is chosen when it does (see `whenUnavailable`).
 *
 * @throws {@link GpgAgentKeyError} when the certificate has no signing key, or the agent holds no
 *   usable key of it; {@link GpgAgentUnavailableError} when the agent does not answer and
 *   `whenUnavailable` is `fail`.
 */
export async function loadGpgAgentSigner(options: GpgAgentSignerOptions): Promise<GpgAgentSigner> {
  const logger = options.logger ?? createNoopLogger();
  const gpg = options.gpg ?? 'gpg';
  const connectAgent = options.gpgConnectAgent ?? 'gpg-connect-agent';
  const socket = path.resolve(options.socket);

  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-gpg-agent-'));
  const cleanup = () => fs.rm(home, { recursive: true, force: true });
  try {
    await fs.chmod(home, 0o700);
    const base = ['--homedir', home, '--batch', '--no-tty', '--no-autostart'];
    // where gpg looks for the agent of this home (the home itself, or /run/user/UID/gnupg/d.…)
    const dirs = await runTool('gpgconf', ['--homedir', home, '--list-dirs', 'agent-socket']);
    const linkPath =
      dirs.code === 0 && dirs.stdout.trim() ? dirs.stdout.trim() : path.join(home, 'S.gpg-agent');
    await fs.mkdir(path.dirname(linkPath), { recursive: true, mode: 0o700 });
    await fs.rm(linkPath, { force: true });
    await fs.symlink(socket, linkPath);

    const imported = await runTool(gpg, [
      ...base,
      '--import',
      '--import-options',
      'import-minimal',
      options.publicKeyFile,
    ]);
    if (imported.code !== 0) {
      throw new GpgAgentKeyError(
        `cannot read the certificate ${options.publicKeyFile}: ${imported.stderr.trim()}`,
      );
    }
    const listed = await runTool(gpg, [
      ...base,
      '--with-colons',
      '--with-keygrip',
      '--fixed-list-mode',
      '--list-keys',
    ]);
    const { primary, keys } = parseColonKeys(listed.stdout);
    if (!primary) throw new GpgAgentKeyError(`${options.publicKeyFile} holds no OpenPGP certificate`);
    const candidates = keys.filter((key) => key.capabilities.includes('s') && !/[reid]/.test(key.validity));
    if (candidates.length === 0) {
      throw new GpgAgentKeyError(
        `the certificate ${primary} in ${options.publicKeyFile} has no valid (not revoked or expired) key that may sign`,
      );
    }

    const keyInfo = async (
      keygrip: string,
    ): Promise<{ info: AgentKeyInfo | undefined; restricted: boolean }> => {
      const answer = await runTool(connectAgent, [
        '--homedir',
        home,
        '--no-autostart',
        `KEYINFO ${keygrip}`,
        '/bye',
      ]);
      if (answer.code !== 0 && saysAgentGone(answer.stderr + answer.stdout)) {
        throw new GpgAgentUnavailableError(
          `the gpg-agent at ${socket} is not reachable: ${answer.stderr.trim()}`,
        );
      }
      if (!/ERR \d+ Forbidden/.test(answer.stdout)) {
        const info = parseKeyInfo(answer.stdout).find((line) => line.keygrip.toUpperCase() === keygrip);
        return { info, restricted: false };
      }
      // a restricted socket (the agent's extra socket, made for forwarding) forbids KEYINFO: it only
      // tells whether it holds the key, not where or how
      const have = await runTool(connectAgent, [
        '--homedir',
        home,
        '--no-autostart',
        `HAVEKEY ${keygrip}`,
        '/bye',
      ]);
      if (!/^OK\b/m.test(have.stdout)) return { info: undefined, restricted: true };
      const info: AgentKeyInfo = {
        keygrip,
        type: 'X',
        serial: undefined,
        cached: false,
        protection: '-',
        disabled: false,
        confirm: false,
      };
      return { info, restricted: true };
    };

    /** The key the agent signs with, chosen once the agent answers. */
    interface Chosen {
      key: CertificateKey;
      info: AgentKeyInfo;
      onCard: boolean;
      restricted: boolean;
      signer: Signer;
    }
    const choose = async (): Promise<Chosen> => {
      let restricted = false;
      const skipped: string[] = [];
      let found: { key: CertificateKey; info: AgentKeyInfo } | undefined;
      for (const key of candidates) {
        const answer = await keyInfo(key.keygrip);
        restricted ||= answer.restricted;
        const info = answer.info;
        if (!info || info.type === '-') skipped.push(`${key.fingerprint}: not in the agent`);
        else if (info.disabled) skipped.push(`${key.fingerprint}: disabled in the agent`);
        else if (info.confirm) skipped.push(`${key.fingerprint}: the agent asks to confirm each use`);
        else {
          found = { key, info };
          break;
        }
      }
      if (!found) {
        throw new GpgAgentKeyError(
          `the gpg-agent at ${socket} holds no usable secret key of ${primary} (${skipped.join('; ')})`,
        );
      }
      const { key, info } = found;
      const onCard = info.type === 'T';
      if (!onCard && info.protection === 'P' && options.passphrase === undefined && !info.cached) {
        throw new GpgAgentKeyError(
          `the key ${key.fingerprint} in the gpg-agent is protected by a passphrase: set SIGN_KEY_PASSWORD`,
        );
      }
      // a restricted socket forbids setting the pinentry mode: the agent asks its own pinentry (on the
      // agent's side) or has the passphrase cached; SIGN_KEY_PASSWORD cannot be given through it
      const passphrase = restricted ? undefined : options.passphrase;
      if (restricted) {
        logger.warn(
          "the gpg-agent's socket is a restricted one (its extra socket): where the key lives and a card's PIN counter cannot be read, so the last-PIN-try guard cannot run, and SIGN_KEY_PASSWORD is not used; give serene the agent's main socket for them",
          { socket },
        );
      }
      const signer = createGpgSigner({
        homedir: home,
        key: `${key.fingerprint}!`,
        passphrase,
        gpg,
        // without a password gpg must not wait for a pinentry nobody sees
        args: [
          '--no-autostart',
          ...(passphrase === undefined && !restricted ? ['--pinentry-mode', 'error'] : []),
        ],
      });
      logger.info('signing through the gpg-agent', {
        socket,
        certificate: primary,
        key: key.fingerprint,
        onCard,
        restricted,
        ...(skipped.length > 0 ? { skipped } : {}),
      });
      return { key, info, onCard, restricted, signer };
    };
    let chosen: Chosen | undefined;
    let choosing: Promise<Chosen> | undefined;
    const ensureChosen = (): Promise<Chosen> => {
      if (chosen) return Promise.resolve(chosen);
      choosing ??= choose().then(
        (value) => {
          chosen = value;
          return value;
        },
        (error: unknown) => {
          choosing = undefined;
          throw error;
        },
      );
      return choosing;
    };

    const publicKey = (await runTool(gpg, [...base, '--armor', '--export', primary])).stdout;

    const cardGuard = async ({ key, info }: Chosen) => {
      const status = await runTool(gpg, [...base, '--with-colons', '--card-status']);
      if (status.code !== 0 && saysAgentGone(status.stderr)) {
        throw new GpgAgentUnavailableError(
          `the gpg-agent at ${socket} is not reachable: ${status.stderr.trim()}`,
        );
      }
      const parsed = parseCardStatus(status.stdout);
      if (status.code !== 0 && parsed.pinRetries.length === 0) {
        throw new SmartcardPinError(
          `refusing to sign: cannot read the status of the smartcard holding ${key.fingerprint}: ${status.stderr.trim()}`,
        );
      }
      checkPinRetries({ ...parsed, serial: parsed.serial ?? info.serial });
    };
    const check = async (): Promise<Chosen> => {
      await probeAgentSocket(socket);
      const current = await ensureChosen();
      if (current.onCard) await cardGuard(current);
      return current;
    };

    try {
      const first = await check();
      if (first.onCard) logger.info('the smartcard lets serene sign', { key: first.key.fingerprint });
    } catch (error) {
      if (!(error instanceof GpgAgentUnavailableError || error instanceof SmartcardPinError)) throw error;
      if (options.whenUnavailable === 'fail') throw error;
      // as a server without its agent: it serves, and each signature tries the agent again
      logger.error('cannot sign for now; builds that sign fail until this is fixed', {
        socket,
        error: error.message,
      });
    }

    return {
      name: GPG_AGENT_SIGNER_NAME,
      get signingKeyFingerprint() {
        return chosen?.key.fingerprint;
      },
      get onCard() {
        return chosen?.onCard;
      },
      get restricted() {
        return chosen?.restricted;
      },
      socket,
      async check() {
        await check();
      },
      async sign(data) {
        const current = await check();
        try {
          return await current.signer.sign(data);
        } catch (error) {
          const message = (error as Error).message;
          const gone = await probeAgentSocket(socket).then(
            () => undefined,
            (reason: unknown) => reason,
          );
          if (gone || saysAgentGone(message)) {
            throw new GpgAgentUnavailableError(`cannot sign: the gpg-agent at ${socket} is gone`, {
              cause: gone ?? error,
            });
          }
          if (/Bad passphrase|Bad PIN|Wrong PIN|bad PIN/i.test(message)) {
            throw new GpgAgentKeyError(
              `the gpg-agent refused SIGN_KEY_PASSWORD for ${current.key.fingerprint}`,
              {
                cause: error,
              },
            );
          }
          if (
            options.passphrase === undefined &&
            /pinentry|Operation cancelled|No passphrase given/i.test(message)
          ) {
            throw new GpgAgentKeyError(
              `the gpg-agent needs a passphrase or PIN for ${current.key.fingerprint}: set SIGN_KEY_PASSWORD`,
              { cause: error },
            );
          }
          throw error;
        }
      },
      async publicKey() {
        return publicKey;
      },
      async fingerprint() {
        return primary;
      },
      async dispose() {
        await cleanup();
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
