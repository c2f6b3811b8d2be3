import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestGpgHome, type TestGpgHome, verifyWithGpg } from '../testing/gpg.js';
import { hasProgram } from '../testing/pacman.js';
import { testSigner } from '../testing/signer-suite.js';
import {
  checkPinRetries,
  GpgAgentKeyError,
  type GpgAgentSigner,
  GpgAgentUnavailableError,
  loadGpgAgentSigner,
  parseCardStatus,
  parseColonKeys,
  parseKeyInfo,
  SmartcardPinError,
} from './gpg-agent-signer.js';

const exec = promisify(execFile);

// --- the PIN guard, on gpg --card-status output as gpg prints it ------------------------------------
// No smartcard can be reached on this machine: the guard's parsing is tested on the output formats of
// real cards (a YubiKey 4 with GnuPG 2.2 `--with-colons`, a YubiKey 5 and a ZeitControl card as people
// read it), with the counters changed to the cases that matter.

/** `gpg --card-status --with-colons` of a YubiKey 4 (GnuPG 2.2), PIN counters `3 0 3`. */
const COLONS_YUBIKEY4 = `Reader:Yubico Yubikey 4 OTP U2F CCID:AID:D2760001240102010006041775630000:openpgp-card:
version:0201:
vendor:0006:Yubico:
serial:04177563:
name:Meno:Abels:
lang:en:
sex:m:
url::
login:abels:
forcepin:0:::
keyattr:1:1:4096:
keyattr:2:1:4096:
keyattr:3:1:4096:
maxpinlen:127:127:127:
pinretry:3:0:3:
sigcount:16:::
cafpr::::
fpr:F78D5B547A9BB0E8A174C0F5060FF53CB3A32992:B3B94966DF73077EFA734EC83D851A5DF09DEB9C:2D32339F24A537406437181A28E66F405F1BE34D:
fprtime:1465218501:1465218921:1464700773:
`;

/** `gpg --card-status` of a YubiKey 5 (GnuPG 2.2, English labels). */
const HUMAN_YUBIKEY5 = `Reader ...........: Yubico YubiKey OTP FIDO CCID 00 00
Application ID ...: D2760001240103040006169214170000
Application type .: OpenPGP
Version ..........: 3.4
Manufacturer .....: Yubico
Serial number ....: 16921417
Name of cardholder: [not set]
Language prefs ...: [not set]
Salutation .......:
URL of public key : [not set]
Login data .......: [not set]
Signature PIN ....: not forced
Key attributes ...: rsa2048 rsa2048 rsa2048
Max. PIN lengths .: 127 127 127
PIN retry counter : 3 0 3
Signature counter : 0
KDF setting ......: off
Signature key ....: [none]
Encryption key....: [none]
Authentication key: [none]
General key info..: [none]
`;

/** `gpg --card-status` of a ZeitControl OpenPGP card 2.0 (older GnuPG: `Sex`, private DOs). */
const HUMAN_ZEITCONTROL = `Application ID ...: D2760001240101010001000000490000
Version ..........: 2.0
Manufacturer .....: ZeitControl
Serial number ....: 00000101
Name of cardholder: [not set]
Language prefs ...: de
Sex ..............: unspecified
URL of public key : [not set]
Login data .......: [not set]
Private DO 1 .....: [not set]
Private DO 2 .....: [not set]
Signature PIN ....: forced
Max. PIN lengths .: 32 32 32
PIN retry counter : 3 3 3
Signature counter : 0
Signature key ....: [not set]
Encryption key....: [not set]
Authentication key: [not set]
General key info..: [none]
`;

describe('the last-PIN-try guard', () => {
  it('reads the counters and the serial from --with-colons and from the readable output', () => {
    expect(parseCardStatus(COLONS_YUBIKEY4)).toEqual({ serial: '04177563', pinRetries: [3, 0, 3] });
    expect(parseCardStatus(HUMAN_YUBIKEY5)).toEqual({ serial: '16921417', pinRetries: [3, 0, 3] });
    expect(parseCardStatus(HUMAN_ZEITCONTROL)).toEqual({ serial: '00000101', pinRetries: [3, 3, 3] });
    // without the trailing colon, and with CRLF line ends
    expect(parseCardStatus('serial:0F123456\r\npinretry:2:0:3\r\n')).toEqual({
      serial: '0F123456',
      pinRetries: [2, 0, 3],
    });
    // no card: gpg prints an empty AID line and nothing else
    expect(parseCardStatus('AID:::\n')).toEqual({ serial: undefined, pinRetries: [] });
  });

  it('lets signing go on with two or more tries and refuses one try, a locked card and no counter', () => {
    const counters = (text: string, user: number) => text.replace('pinretry:3:0:3:', `pinretry:${user}:0:3:`);
    expect(() => checkPinRetries(parseCardStatus(COLONS_YUBIKEY4))).not.toThrow();
    expect(() => checkPinRetries(parseCardStatus(counters(COLONS_YUBIKEY4, 2)))).not.toThrow();
    expect(() => checkPinRetries(parseCardStatus(counters(COLONS_YUBIKEY4, 1)))).toThrow(SmartcardPinError);
    expect(() => checkPinRetries(parseCardStatus(counters(COLONS_YUBIKEY4, 1)))).toThrow(
      /smartcard \(serial 04177563\) has one retry left/,
    );
    expect(() => checkPinRetries(parseCardStatus(counters(COLONS_YUBIKEY4, 0)))).toThrow(/is locked/);
    // the reset code's and the admin PIN's counters do not count: signing uses the user PIN
    expect(() =>
      checkPinRetries(
        parseCardStatus(HUMAN_YUBIKEY5.replace('PIN retry counter : 3 0 3', 'PIN retry counter : 3 0 1')),
      ),
    ).not.toThrow();
    expect(() =>
      checkPinRetries(
        parseCardStatus(HUMAN_YUBIKEY5.replace('PIN retry counter : 3 0 3', 'PIN retry counter : 1 0 3')),
      ),
    ).toThrow(/one retry left/);
    expect(() => checkPinRetries(parseCardStatus('AID:::\n'))).toThrow(/could not be read/);
  });
});

describe('agent answers', () => {
  it('reads KEYINFO lines of keys on disk and on a card, with their flags', () => {
    const text = [
      'S KEYINFO 66418ECB128DBDB2101B3D7FE4F7F52EA9F58F3D D - - - C - - -',
      'S KEYINFO 1A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D T D2760001240102010006041775630000 OPENPGP.1 - - - - -',
      'S KEYINFO AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA D - - 1 P - - Dc',
      'OK',
    ].join('\n');
    expect(parseKeyInfo(text)).toEqual([
      {
        keygrip: '66418ECB128DBDB2101B3D7FE4F7F52EA9F58F3D',
        type: 'D',
        serial: undefined,
        cached: false,
        protection: 'C',
        disabled: false,
        confirm: false,
      },
      {
        keygrip: '1A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D',
        type: 'T',
        serial: 'D2760001240102010006041775630000',
        cached: false,
        protection: '-',
        disabled: false,
        confirm: false,
      },
      {
        keygrip: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        type: 'D',
        serial: undefined,
        cached: true,
        protection: 'P',
        disabled: true,
        confirm: true,
      },
    ]);
    expect(parseKeyInfo('ERR 67108881 No secret key <GPG Agent>\n')).toEqual([]);
  });

  it('reads the keys of a certificate in listed order, with capabilities and keygrips', () => {
    const text = [
      'tru::1:1796200955:0:3:1:5',
      'pub:-:255:22:39DED092F39FEF19:1796200955:::-:::cSC::::::23::0:',
      'fpr:::::::::5212ADDF78A2F273B0C3CBA239DED092F39FEF19:',
      'grp:::::::::66418ECB128DBDB2101B3D7FE4F7F52EA9F58F3D:',
      'uid:-::::1796200955::FB1FEAD8276302B1205A22E000CC2E1D15B122A1::x <x@x>::::::::::0:',
      'sub:r:255:22:1111111111111111:1796200955::::::s::::::23:',
      'fpr:::::::::AAAAAAAAAAAAAAAAAAAAAAAA1111111111111111:',
      'grp:::::::::BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB:',
      'sub:-:255:22:2222222222222222:1796200955::::::s::::::23:',
      'fpr:::::::::cccccccccccccccccccccccc2222222222222222:',
      'grp:::::::::DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD:',
    ].join('\n');
    const { primary, keys } = parseColonKeys(text);
    expect(primary).toBe('5212ADDF78A2F273B0C3CBA239DED092F39FEF19');
    expect(
      keys.map((key) => [key.fingerprint.slice(-4), key.validity, key.capabilities, key.primary]),
    ).toEqual([
      ['EF19', '-', 'c', true],
      ['1111', 'r', 's', false],
      ['2222', '-', 's', false],
    ]);
  });
});

// --- a real gpg-agent -------------------------------------------------------------------------------
// The key lives in the agent's own GNUPGHOME (made by gpg on the spot); the signer gets only the
// public certificate and a link to the agent's socket, as the server's data folder holds them.

const tools = ['gpg', 'gpg-agent', 'gpg-connect-agent', 'gpgconf'];
const missingTools = tools.filter((tool) => !hasProgram(tool));

/** A data folder with `sign_key.asc` (public only) and `S.gpg-agent` linked to `home`'s agent. */
async function agentLayout(
  home: TestGpgHome,
  which: 'agent-socket' | 'agent-extra-socket' = 'agent-socket',
): Promise<{ dir: string; socket: string; keyFile: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-agent-data-'));
  const { stdout } = await exec('gpgconf', ['--homedir', home.homedir, '--list-dirs', which]);
  await exec('gpgconf', ['--homedir', home.homedir, '--launch', 'gpg-agent']);
  const socket = path.join(dir, 'S.gpg-agent');
  await fs.symlink(stdout.trim(), socket);
  const keyFile = path.join(dir, 'sign_key.asc');
  const { stdout: armored } = await exec('gpg', [
    '--homedir',
    home.homedir,
    '--armor',
    '--export',
    home.fingerprint,
  ]);
  await fs.writeFile(keyFile, armored);
  return { dir, socket, keyFile };
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function agentSigner(
  homeOptions: { passphrase?: string; rsaBits?: number },
  passphrase?: string,
): Promise<{ home: TestGpgHome; signer: GpgAgentSigner; layout: Awaited<ReturnType<typeof agentLayout>> }> {
  const home = await createTestGpgHome(homeOptions);
  cleanups.push(() => home.cleanup());
  const layout = await agentLayout(home);
  cleanups.push(() => fs.rm(layout.dir, { recursive: true, force: true }));
  const signer = await loadGpgAgentSigner({
    socket: layout.socket,
    publicKeyFile: layout.keyFile,
    passphrase,
  });
  cleanups.push(() => signer.dispose());
  return { home, signer, layout };
}

testSigner(
  `gpg-agent (unprotected key${missingTools.length ? `; missing ${missingTools.join(', ')}` : ''})`,
  {
    async create() {
      return (await agentSigner({})).signer;
    },
  },
);

testSigner('gpg-agent (passphrase through loopback pinentry)', {
  largeBytes: 32 * 1024 * 1024,
  async create() {
    return (await agentSigner({ passphrase: 'agent horse' }, 'agent horse')).signer;
  },
});

describe.skipIf(missingTools.length > 0)(
  `the gpg-agent signer with a real agent (missing: ${missingTools.join(', ') || 'none'})`,
  () => {
    it('chooses the signing subkey of a certificate whose primary key only certifies', async () => {
      const home = await createTestGpgHome();
      cleanups.push(() => home.cleanup());
      // a second key, certify-only, with a signing subkey
      const uid = 'serene subkey test <subkey@serene.invalid>';
      const gpgArgs = [
        '--batch',
        '--homedir',
        home.homedir,
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        '',
      ];
      await exec('gpg', [...gpgArgs, '--quick-gen-key', uid, 'ed25519', 'cert', 'never']);
      const { stdout } = await exec('gpg', [
        '--homedir',
        home.homedir,
        '--with-colons',
        '--fingerprint',
        uid,
      ]);
      const primary = stdout
        .split('\n')
        .find((line) => line.startsWith('fpr:'))!
        .split(':')[9]!;
      await exec('gpg', [...gpgArgs, '--quick-add-key', primary, 'ed25519', 'sign', 'never']);
      const layout = await agentLayout(home);
      cleanups.push(() => fs.rm(layout.dir, { recursive: true, force: true }));
      const { stdout: armored } = await exec('gpg', [
        '--homedir',
        home.homedir,
        '--armor',
        '--export',
        primary,
      ]);
      await fs.writeFile(layout.keyFile, armored);
      const signer = await loadGpgAgentSigner({ socket: layout.socket, publicKeyFile: layout.keyFile });
      cleanups.push(() => signer.dispose());
      expect(await signer.fingerprint()).toBe(primary);
      expect(signer.signingKeyFingerprint).not.toBe(primary);
      expect(signer.onCard).toBe(false);
      const file = path.join(layout.dir, 'data.bin');
      await fs.writeFile(file, 'signed by a subkey\n');
      await fs.writeFile(
        `${file}.sig`,
        await signer.sign(
          (async function* () {
            yield Buffer.from('signed by a subkey\n');
          })(),
        ),
      );
      expect(await verifyWithGpg(await signer.publicKey(), file, `${file}.sig`)).toBe(true);
      const { stdout: packets } = await exec('gpg', ['--list-packets', `${file}.sig`]);
      expect(packets).toContain(`keyid ${signer.signingKeyFingerprint.slice(-16)}`);
    });

    it("signs through the agent's restricted extra socket (made for forwarding)", async () => {
      // the extra socket forbids loopback pinentry: a key behind it is unlocked on the agent's side
      const home = await createTestGpgHome();
      cleanups.push(() => home.cleanup());
      const layout = await agentLayout(home, 'agent-extra-socket');
      cleanups.push(() => fs.rm(layout.dir, { recursive: true, force: true }));
      const signer = await loadGpgAgentSigner({
        socket: layout.socket,
        publicKeyFile: layout.keyFile,
      });
      cleanups.push(() => signer.dispose());
      expect(signer.restricted).toBe(true);
      expect(signer.onCard).toBe(false);
      const file = path.join(layout.dir, 'data.bin');
      await fs.writeFile(file, 'through the extra socket\n');
      const signature = await signer.sign(
        (async function* () {
          yield Buffer.from('through the extra socket\n');
        })(),
      );
      await fs.writeFile(`${file}.sig`, signature);
      expect(await home.verify(file, `${file}.sig`)).toBe(true);
      // the main socket is not restricted
      const main = await agentSigner({});
      expect(main.signer.restricted).toBe(false);
    });

    it('fails with GpgAgentUnavailableError while the agent is gone, and signs again once it is back', async () => {
      const { home, signer } = await agentSigner({});
      const data = () =>
        (async function* () {
          yield Buffer.from('x');
        })();
      expect((await signer.sign(data())).length).toBeGreaterThan(0);
      await exec('gpgconf', ['--homedir', home.homedir, '--kill', 'gpg-agent']);
      const failure = await signer.sign(data()).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(GpgAgentUnavailableError);
      expect((failure as Error).message).toMatch(/gpg-agent at .*S\.gpg-agent is not reachable/);
      expect((failure as GpgAgentUnavailableError).code).toBe('SERENE_ERR_GPG_AGENT_UNAVAILABLE');
      // the public key needs no agent
      expect(await signer.publicKey()).toMatch(/BEGIN PGP PUBLIC KEY BLOCK/);
      await exec('gpgconf', ['--homedir', home.homedir, '--launch', 'gpg-agent']);
      expect((await signer.sign(data())).length).toBeGreaterThan(0);
    });

    it('loads without an agent and signs once it answers; refuses a certificate the agent holds no key of', async () => {
      const home = await createTestGpgHome();
      cleanups.push(() => home.cleanup());
      const layout = await agentLayout(home);
      cleanups.push(() => fs.rm(layout.dir, { recursive: true, force: true }));
      await exec('gpgconf', ['--homedir', home.homedir, '--kill', 'gpg-agent']);
      await expect(
        loadGpgAgentSigner({ socket: layout.socket, publicKeyFile: layout.keyFile, whenUnavailable: 'fail' }),
      ).rejects.toThrow(GpgAgentUnavailableError);
      // the default waits for the agent: the public key is there, signatures fail with the reason
      const waiting = await loadGpgAgentSigner({ socket: layout.socket, publicKeyFile: layout.keyFile });
      cleanups.push(() => waiting.dispose());
      expect(await waiting.fingerprint()).toBe(home.fingerprint);
      expect(await waiting.publicKey()).toMatch(/BEGIN PGP PUBLIC KEY BLOCK/);
      expect(waiting.signingKeyFingerprint).toBeUndefined();
      const data = () =>
        (async function* () {
          yield Buffer.from('x');
        })();
      await expect(waiting.sign(data())).rejects.toThrow(/is not reachable: its socket is gone/);
      await exec('gpgconf', ['--homedir', home.homedir, '--launch', 'gpg-agent']);
      expect((await waiting.sign(data())).length).toBeGreaterThan(0);
      expect(waiting.signingKeyFingerprint).toBe(home.fingerprint);
      // another home's certificate: this agent does not hold its secret
      const stranger = await createTestGpgHome();
      cleanups.push(() => stranger.cleanup());
      const { stdout } = await exec('gpg', [
        '--homedir',
        stranger.homedir,
        '--armor',
        '--export',
        stranger.fingerprint,
      ]);
      await fs.writeFile(layout.keyFile, stdout);
      const refused = await loadGpgAgentSigner({
        socket: layout.socket,
        publicKeyFile: layout.keyFile,
      }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(GpgAgentKeyError);
      expect((refused as Error).message).toMatch(
        new RegExp(
          `holds no usable secret key of ${stranger.fingerprint} \\(${stranger.fingerprint}: not in the agent\\)`,
        ),
      );
    });

    it('asks for SIGN_KEY_PASSWORD for a protected key, and names a wrong one', async () => {
      const home = await createTestGpgHome({ passphrase: 'right' });
      cleanups.push(() => home.cleanup());
      const layout = await agentLayout(home);
      cleanups.push(() => fs.rm(layout.dir, { recursive: true, force: true }));
      await expect(
        loadGpgAgentSigner({ socket: layout.socket, publicKeyFile: layout.keyFile }),
      ).rejects.toThrow(/is protected by a passphrase: set SIGN_KEY_PASSWORD/);
      const wrong = await loadGpgAgentSigner({
        socket: layout.socket,
        publicKeyFile: layout.keyFile,
        passphrase: 'wrong',
      });
      cleanups.push(() => wrong.dispose());
      const failure = await wrong
        .sign(
          (async function* () {
            yield Buffer.from('x');
          })(),
        )
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(GpgAgentKeyError);
      expect((failure as Error).message).toMatch(/refused SIGN_KEY_PASSWORD/);
    });
  },
);
