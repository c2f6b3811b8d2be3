/**
 * `serene server info|webhook|key` (about the server) and `serene host secret` (about this machine),
 * as the original CLI's (docs/compatibility.md#cli).
 */
import type { Command } from 'commander';
import { segment } from './api.js';
import { apiAction, type ClientContext, reportClientError, versionWarning } from './client.js';
import { authorizedSecretsLine, clientPaths, loadSecret, readConfig, secretToken } from './config.js';
import { duration, localTime, type Style, stateWord, styleFor, table } from './format.js';
import { type CliIo, EXIT_ERROR, EXIT_OK } from './io.js';
import { pacmanArchitecture, servedArchitectures, setupSignatures } from './pacman-setup.js';
import { VERSION } from './version.js';
import { type EngineJson, type PackagePeek, PROTOCOL_VERSION, type SereneInfo } from './wire.js';

// --- server ---

/** `serene server info`: what the server is and how its packages are doing. */
export async function serverInfo(context: ClientContext): Promise<number> {
  const { io, api } = context;
  const info = await api.json<SereneInfo>('GET', '/');
  const packages = await api.json<PackagePeek[]>('GET', '/package/list');
  const counts = new Map<string, number>();
  for (const pkg of packages) {
    const word = stateWord(pkg.build?.state);
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  const states = [...counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([word, count]) => `${count} ${word}`)
    .join(', ');
  const started = new Date(info.started);
  const machine = await pacmanArchitecture(io);
  const served = await servedArchitectures(api, info, machine);
  const rows: [string, string][] = [
    ['server', `${info.name} ${info.version || '(untagged)'}`],
    ['location', api.url],
    ['architecture', info.architecture],
    ['started', `${localTime(info.started)} (up ${duration(Date.now() - started.getTime())})`],
    ...(served.length > 1 ? [['architectures', served.join(', ')] as [string, string]] : []),
    ['repository', `[${info.name}] Server = ${api.url}/${served.length > 1 ? '$arch' : info.architecture}`],
    ['reads', info.readable ? 'open to everyone' : 'need a secret'],
    ['signed', info.signed ? 'yes' : 'no'],
    ['packages', packages.length === 0 ? '0' : `${packages.length} (${states})`],
    [
      'this client',
      `serene ${VERSION}, speaks the API of ${PROTOCOL_VERSION} (${versionWarning(info.version) ?? 'fits the server'})`,
    ],
    [
      'this machine',
      served.includes(machine)
        ? `${machine} (can install its packages)`
        : `${machine} (cannot install ${served.join(' or ')} packages)`,
    ],
  ];
  const keyWidth = Math.max(...rows.map(([key]) => key.length)) + 1;
  for (const [key, value] of rows) io.stdout(`${`${key}:`.padEnd(keyWidth)}  ${value}\n`);
  return EXIT_OK;
}

/** An engine's state, coloured. */
function engineState(state: EngineJson['state'], style: Style): string {
  if (state === 'up') return style.green(state);
  if (state === 'down') return style.red(state);
  return style.dim(state);
}

/**
 * `serene server engines`: the engines that build packages, with state, load and what runs on them
 * (`GET /engines`, beyond the original); why each engine that is down is down, after the table.
 */
export async function serverEngines(context: ClientContext): Promise<number> {
  const { io, api } = context;
  const engines = await api.json<EngineJson[]>('GET', '/engines');
  const style = styleFor(io);
  const now = Date.now();
  const rows = engines.map((engine) => [
    engine.name,
    engineState(engine.state, style),
    duration(now - new Date(engine.since).getTime()),
    `${engine.running}/${engine.capacity}`,
    engine.architecture ?? '?',
    engine.labels.length > 0 ? engine.labels.join(',') : '-',
    engine.builds.length > 0 ? engine.builds.join(', ') : '-',
  ]);
  io.stdout(table(['name', 'state', 'for', 'load', 'arch', 'labels', 'building'], rows, style));
  for (const engine of engines) {
    if (engine.state === 'down') io.stdout(`${engine.name} is down: ${engine.reason ?? 'no reason given'}\n`);
  }
  return EXIT_OK;
}

/** `serene server webhook <name>`: the url that builds the package when something POSTs to it. */
export async function serverWebhook(context: ClientContext, name: string, machine: boolean): Promise<number> {
  const { io, api } = context;
  const secret = await api.json<string>('GET', `/webhook/package/${segment(name)}/secret`);
  const url = `${api.url}/webhook/package/${segment(name)}/build?secret=${encodeURIComponent(secret)}`;
  if (machine) {
    io.stdout(`${url}\n`);
    return EXIT_OK;
  }
  io.stdout(`Webhook of ${name} (a POST to it builds the package when its source changed):\n  ${url}\n`);
  io.stdout('It is tied to your secret: removing your line from authorized_secrets disables it.\n');
  return EXIT_OK;
}

/** `serene server key`: the public key the server signs with. */
export async function serverKey(context: ClientContext, machine: boolean): Promise<number> {
  const { io, api } = context;
  const response = await api.request('GET', '/key');
  const key = await response.text();
  if (machine) {
    io.stdout(key);
    return EXIT_OK;
  }
  io.stdout(key.endsWith('\n') ? key : `${key}\n`);
  io.stdout('\nTrust it for pacman with:\n');
  io.stdout('  serene server key -m | sudo pacman-key --add -\n');
  io.stdout('  sudo pacman-key --lsign-key <fingerprint shown by the first command>\n');
  return EXIT_OK;
}

// --- host ---

/** `serene host secret`: this machine's line for the server's `authorized_secrets` (no server needed). */
export async function hostSecret(io: CliIo, machine: boolean): Promise<number> {
  const paths = clientPaths(io.env);
  const secret = (await readConfig(paths.config))?.secret ?? (await loadSecret(paths.secret));
  if (machine) {
    io.stdout(`${secretToken(secret)}\n`);
    return EXIT_OK;
  }
  io.stdout("Add this line to the server's authorized_secrets file to use it from this machine:\n");
  io.stdout(`  ${authorizedSecretsLine(secret)}\n`);
  return EXIT_OK;
}

// --- registration ---

/** Registers `server` and `host` on `program`. */
export function registerServerCommands(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
): void {
  const server = program
    .command('server')
    .description('about the server: info, engines, webhooks, signing key');
  server
    .command('info')
    .description('version, uptime, features and package states of the server')
    .action(apiAction(io, setExitCode, (context) => serverInfo(context)));
  server
    .command('engines')
    .description('the engines that build packages: state, load, architecture, labels, builds')
    .action(apiAction(io, setExitCode, (context) => serverEngines(context)));
  server
    .command('webhook')
    .description('the webhook url that builds a package')
    .argument('<name>', 'package base')
    .option('-m, --machine', 'print the url only')
    .action(
      apiAction(io, setExitCode, (context, name: string, options: { machine?: boolean }) =>
        serverWebhook(context, name, options.machine === true),
      ),
    );
  server
    .command('key')
    .description('the public key the server signs packages with')
    .option('-m, --machine', 'print the key only')
    .action(
      apiAction(io, setExitCode, (context, options: { machine?: boolean }) =>
        serverKey(context, options.machine === true),
      ),
    );

  const host = program.command('host').description('about this machine');
  host
    .command('signatures')
    .description("trust the server's signing key in pacman (import and locally sign it, as root)")
    .addHelpText(
      'after',
      `
On a terminal it asks, then runs <elevator> pacman-key --add - and --lsign-key <fingerprint> (the
elevator of serene.yml: sudo, doas, run0); otherwise it prints those commands.`,
    )
    .action(
      apiAction(io, setExitCode, async (context) =>
        (await setupSignatures(io, context.api, context.elevator)) ? EXIT_OK : EXIT_ERROR,
      ),
    );
  host
    .command('secret')
    .description("this machine's line for the server's authorized_secrets file")
    .option('-m, --machine', 'print the secret hash only')
    .action(async (options: { machine?: boolean }) => {
      try {
        setExitCode(await hostSecret(io, options.machine === true));
      } catch (error) {
        setExitCode(reportClientError(error, io));
      }
    });
}
