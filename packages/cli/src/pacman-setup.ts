/**
 * Setting pacman up for a server, as the original CLI's onboarding and `host signatures` do: the
 * repository block appended to pacman.conf and the server's key imported into pacman's keyring, both
 * through the configured elevator (sudo, doas, run0). Unlike the original, the key is also signed
 * locally (`pacman-key --lsign-key`) when the user agrees, so that pacman trusts it right away.
 * Off a terminal nothing is run: the commands are printed instead.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { type ApiClient, ApiError } from './api.js';
import type { CliIo } from './io.js';
import type { SereneInfo } from './wire.js';

/** pacman's configuration: `/etc/pacman.conf`, or `SERENE_PACMAN_CONF` (another root, or a test). */
export function pacmanConfPath(io: CliIo): string {
  return io.env.SERENE_PACMAN_CONF || '/etc/pacman.conf';
}

/** This machine's architecture as pacman names it. */
export function localArchitecture(): string {
  const names: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i686', arm: 'armv7h' };
  return names[os.arch()] ?? os.arch();
}

/**
 * The architecture pacman uses here (its `$arch`): the first of pacman.conf's `Architecture` in
 * `[options]`, else (`auto`, none, no pacman.conf) this machine's processor.
 */
export async function pacmanArchitecture(io: CliIo): Promise<string> {
  const text = await fs.readFile(pacmanConfPath(io), 'utf8').catch(() => '');
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1] ?? '';
    const value = /^Architecture\s*=\s*(\S+)/.exec(line)?.[1];
    if (section === 'options' && value !== undefined && value !== 'auto') return value;
  }
  return localArchitecture();
}

/**
 * The architectures the server serves, its primary first (docs/engines.md#architectures): `GET
 * /server`'s `architectures`; the primary alone from a server without them (the original's). When
 * the server cannot be asked yet (a secret not authorized, reads not open), whether it serves
 * `wanted` is told by its repository: pacman's database of that architecture answers (public).
 */
export async function servedArchitectures(
  api: ApiClient,
  info: SereneInfo,
  wanted: string,
): Promise<string[]> {
  try {
    const server = await api.json<{ architectures?: unknown }>('GET', '/server');
    const listed = Array.isArray(server?.architectures)
      ? server.architectures.filter((arch): arch is string => typeof arch === 'string')
      : [];
    return listed.length > 0 ? listed : [info.architecture];
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // the original has no GET /server: it serves its primary only
    if (error.status !== 401 && error.status !== 403) return [info.architecture];
  }
  if (wanted === info.architecture) return [info.architecture];
  const found = await api
    .request('HEAD', `/${encodeURIComponent(wanted)}/${encodeURIComponent(info.name)}.db`)
    .then(
      () => true,
      (error: unknown) => {
        if (error instanceof ApiError) return false;
        throw error;
      },
    );
  return found ? [info.architecture, wanted] : [info.architecture];
}

/** Whether `io` can ask questions (a terminal on standard input, and a way to ask). */
export function canAsk(io: CliIo): boolean {
  return io.stdinIsTTY === true && io.prompt !== undefined;
}

/** Asks a yes/no question; an empty or other answer takes `fallback`, as the original's prompts. */
export async function confirm(io: CliIo, question: string, fallback: boolean): Promise<boolean> {
  const answer = ((await io.prompt?.(`${question} [${fallback ? 'Y/n' : 'y/N'}] `)) ?? '')
    .trim()
    .toLowerCase();
  if (answer.startsWith('y')) return true;
  if (answer.startsWith('n')) return false;
  return fallback;
}

/** The block appended to pacman.conf: `[name]`, `SigLevel = Never` when unsigned, `Server = ...`. */
export function pacmanBlock(name: string, url: string, architecture: string, signed: boolean): string {
  return `\n[${name}]\n${signed ? '' : 'SigLevel = Never\n'}Server = ${url}/${architecture}\n`;
}

/** Whether pacman.conf already has a section `[name]`; true when it cannot be read (as the original). */
async function hasRepository(file: string, name: string): Promise<boolean> {
  try {
    const text = await fs.readFile(file, 'utf8');
    return text.split('\n').some((line) => line.trim() === `[${name}]`);
  } catch {
    return true;
  }
}

/** The elevator's words: `doas -u root` is `doas` with `-u root`. */
function elevated(elevator: string, args: readonly string[]): [string, string[]] {
  const [command = 'sudo', ...prefix] = elevator.split(/\s+/).filter(Boolean);
  return [command, [...prefix, ...args]];
}

/** Runs `<elevator> args...` (with `input` on its standard input); false after a message when it failed. */
async function runElevated(
  io: CliIo,
  elevator: string,
  args: readonly string[],
  input?: string,
): Promise<boolean> {
  const [command, commandArgs] = elevated(elevator, args);
  const shown = [command, ...commandArgs].join(' ');
  io.stdout(`running ${shown}\n`);
  if (!io.exec) {
    io.stderr('error: this session cannot run programs\n');
    return false;
  }
  try {
    const code = await io.exec(command, commandArgs, input === undefined ? undefined : { input });
    if (code === 0) return true;
    io.stderr(`error: \`${shown}\` failed (exit code ${code})\n`);
  } catch (error) {
    io.stderr(`error: cannot run \`${shown}\`: ${(error as Error).message}\n`);
  }
  return false;
}

/** pacman-key's arguments for a pacman.conf other than the default (its keyring is the one it names). */
function pacmanKeyArgs(io: CliIo, args: readonly string[]): string[] {
  const conf = pacmanConfPath(io);
  return ['pacman-key', ...(conf === '/etc/pacman.conf' ? [] : ['--config', conf]), ...args];
}

/**
 * The fingerprint of an armoured public key, read by gpg (`--show-keys`, in a throw-away home so
 * that the user's keyring is not touched).
 */
export async function keyFingerprint(key: string): Promise<string> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-key-'));
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn('gpg', ['--batch', '--homedir', home, '--with-colons', '--show-keys'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
      });
      child.stderr.on('data', (chunk: Buffer) => {
        err += chunk.toString('utf8');
      });
      child.once('error', (error) => reject(new Error(`cannot run gpg: ${error.message}`)));
      child.once('close', (code) =>
        code === 0 ? resolve(out) : reject(new Error(`gpg cannot read the key: ${err.trim()}`)),
      );
      child.stdin.end(key);
    });
    const fpr = stdout
      .split('\n')
      .find((line) => line.startsWith('fpr:'))
      ?.split(':')[9];
    if (!fpr) throw new Error('the server sent no public key');
    return fpr;
  } finally {
    await fs.rm(home, { recursive: true, force: true });
  }
}

/**
 * `serene host signatures`: downloads the server's key and, on a terminal, imports it into pacman's
 * keyring and signs it locally through the elevator, each after asking; off a terminal, prints the
 * commands. Resolves true when pacman now trusts the key (or the commands were printed).
 */
export async function setupSignatures(
  io: CliIo,
  api: ApiClient,
  elevator: string,
  interactive = canAsk(io),
): Promise<boolean> {
  let key: string;
  try {
    key = await (await api.request('GET', '/key')).text();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      io.stderr('error: the server does not sign its packages (it has no key)\n');
      return false;
    }
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      io.stderr(
        "error: the server shows its key to authorized machines only: add this machine's line (`serene host secret`) to its authorized_secrets, then run `serene host signatures`\n",
      );
      return false;
    }
    throw error;
  }
  const fingerprint = await keyFingerprint(key);
  const [command, addArgs] = elevated(elevator, pacmanKeyArgs(io, ['--add', '-']));
  const [, signArgs] = elevated(elevator, pacmanKeyArgs(io, ['--lsign-key', fingerprint]));
  if (!interactive) {
    io.stdout(`The server signs its packages with the key ${fingerprint}. To have pacman trust it, run:\n`);
    io.stdout(`  serene server key -m | ${[command, ...addArgs].join(' ')}\n`);
    io.stdout(`  ${[command, ...signArgs].join(' ')}\n`);
    return true;
  }
  io.stdout(`The server signs its packages with the key ${fingerprint}.\n`);
  io.stdout("It is imported into pacman's keyring and signed locally, so that pacman trusts it (as root).\n");
  if (!(await confirm(io, 'Import the key with `pacman-key --add` as root?', true))) return false;
  if (!(await runElevated(io, elevator, pacmanKeyArgs(io, ['--add', '-']), key))) return false;
  if (!(await confirm(io, `Sign it locally with \`pacman-key --lsign-key ${fingerprint}\` as root?`, true))) {
    io.stdout(`Without it pacman does not trust the key; later: ${[command, ...signArgs].join(' ')}\n`);
    return false;
  }
  return runElevated(io, elevator, pacmanKeyArgs(io, ['--lsign-key', fingerprint]));
}

/**
 * The pacman part of the onboarding, on a terminal: offers to append the repository to pacman.conf
 * (through `<elevator> tee -a`) and, for a signing server, to trust its key.
 */
export async function setupPacman(
  io: CliIo,
  api: ApiClient,
  info: SereneInfo,
  elevator: string,
): Promise<void> {
  const conf = pacmanConfPath(io);
  const architecture = await pacmanArchitecture(io);
  const served = await servedArchitectures(api, info, architecture);
  if (!served.includes(architecture)) {
    io.stdout(
      `The server builds packages for ${served.join(', ')}, but this machine is ${architecture}: pacman here cannot use them.\n`,
    );
    return;
  }
  io.stdout('To install its packages, pacman needs the repository in its configuration.\n');
  if (!(await confirm(io, 'Do you want to configure pacman now?', true))) return;
  if (!(await fs.stat(conf).catch(() => undefined))) {
    io.stdout(`There is no ${conf}: configure pacman by hand.\n`);
    return;
  }
  if (await hasRepository(conf, info.name)) {
    io.stdout(`${conf} already has a [${info.name}] section: it is left as it is.\n`);
    return;
  }
  let signed = info.signed;
  if (signed)
    signed = await confirm(io, 'The server signs its packages. Check the signatures (recommended)?', true);
  if (!signed && !api.url.startsWith('https://')) {
    io.stderr('warn: without https nor signatures, anyone on the way can change the packages you install\n');
    if (!(await confirm(io, 'Continue anyway?', false))) return;
  }
  // a server of several architectures: pacman's `$arch` picks this machine's repository, as on any other
  const block = pacmanBlock(info.name, api.url, served.length > 1 ? '$arch' : architecture, signed);
  io.stdout(`${block.trim()}\n`);
  if (!(await confirm(io, `Append this to ${conf} as root?`, true))) return;
  if (!(await runElevated(io, elevator, ['tee', '-a', conf], block))) return;
  if (signed) await setupSignatures(io, api, elevator, true);
}
