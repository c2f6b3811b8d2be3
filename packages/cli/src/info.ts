/**
 * `serene info <name>` and its subcommands `build`, `logs`, `pkgbuild` and `set` (docs/compatibility.md#cli).
 *
 * The package name comes before the subcommand (`serene info foo logs -s`), which commander cannot
 * declare: `info` takes the name and passes the rest to a small program of its own.
 */
import { Command } from 'commander';
import { ApiError, segment } from './api.js';
import { apiAction, type ClientContext, checkVersion, type GlobalOptions, UsageError } from './client.js';
import {
  buildDuration,
  buildId,
  bytes,
  colourState,
  describeState,
  localTime,
  stateWord,
  styleFor,
  table,
} from './format.js';
import { type CliIo, EXIT_OK, EXIT_USAGE } from './io.js';
import { createProgress } from './progress.js';
import {
  type BuildInfo,
  isDone,
  MAKEPKG_FLAGS,
  type PackageInfo,
  type PackageSettingsRequest,
} from './wire.js';

/** What may follow `serene info <name>`, with its options (for the help and the shell completions). */
export const INFO_SUBCOMMANDS: readonly {
  name: string;
  options: readonly { flags: readonly string[]; description: string }[];
}[] = [
  { name: 'build', options: [] },
  {
    name: 'logs',
    options: [
      { flags: ['-s', '--subscribe'], description: 'follow the live logs, build after build' },
      { flags: ['-l', '--linger'], description: 'print the latest log, then follow build after build' },
    ],
  },
  { name: 'pkgbuild', options: [] },
  { name: 'set', options: [] },
];
const SUBCOMMANDS = INFO_SUBCOMMANDS.map((sub) => sub.name);

/** Builds `serene info <name>` shows without `--all`. */
const RECENT_BUILDS = 8;

const INFO_HELP = `
Subcommands (after the name):
  build [id]                 details of a build (default: the latest)
  logs [id]                  logs of a build; without id the latest, following it live while it runs
    -s, --subscribe          follow the live logs, build after build, until interrupted
    -l, --linger             print the latest log first, then follow as -s
  pkgbuild                   the PKGBUILD of the published build
  set <key> <value...>       change a setting:
                               clean|private|enable|dependency|devel|srcinfo-override true|false
                               schedule "<cron with seconds>" ("" for the default)
                               prepare "<shell commands>" ("" for none)
                               flags <makepkg flag...> (e.g. nocheck skippgpcheck; none to clear)
                               cooloff 2d|36h|0|default       update gate: cool-off of updates
                               trust true|false|default       hold updates after maintainer changes
                               review off|diff|all|default    hold updates beyond a version bump

Build ids count from the oldest build (0000); 'latest' is the newest.`;

// --- info ---

/** `serene info <name>`: the package's details and its recent builds. */
export async function showInfo(context: ClientContext, name: string, all: boolean): Promise<number> {
  const { io, api } = context;
  const warnVersion = checkVersion(context);
  const info = await api.json<PackageInfo>('GET', `/package/${segment(name)}`);
  const builds = await api.json<BuildInfo[]>(
    'GET',
    `/package/${segment(name)}/build${all ? '' : `?count=${RECENT_BUILDS}`}`,
  );
  const style = styleFor(io);
  const yes = (value: boolean) => (value ? 'yes' : 'no');
  const rows: [string, string][] = [
    ['base', info.base],
    ['members', info.members.join(' ') || '-'],
    ['description', info.description ?? '-'],
    ['upstream', info.upstream_url ?? '-'],
    ['version', info.version ?? '-'],
    ['source', info.source_url ? `${info.source} (${info.source_url})` : info.source],
    ['added', localTime(info.added)],
    ['enabled', yes(info.enabled)],
    ['schedule', `${info.schedule}${info.schedule_changed ? ' (custom)' : ''}`],
    ['devel', yes(info.devel)],
    ['clean', yes(info.clean)],
    ['private', yes(info.private)],
    ['dependency', yes(info.dependency)],
    ['srcinfo override', yes(info.srcinfo_override)],
    ['makepkg flags', info.makepkg_flags.join(' ') || '-'],
    ['prepare', info.private ? '(private)' : (info.prepare_commands ?? '-')],
  ];
  const keyWidth = Math.max(...rows.map(([key]) => key.length)) + 1;
  for (const [key, value] of rows) io.stdout(`${`${key}:`.padEnd(keyWidth)}  ${value}\n`);
  io.stdout('\n');
  if (builds.length === 0) {
    io.stdout('no builds yet\n');
    await warnVersion();
    return EXIT_OK;
  }
  const now = new Date();
  const total = Math.max(info.builds, builds.length);
  io.stdout(
    builds.length < total ? `builds (newest ${builds.length} of ${total}, --all for all):\n` : 'builds:\n',
  );
  io.stdout(
    table(
      ['id', 'state', 'reason', 'version', 'started', 'took'],
      builds.map((build, index) => [
        buildId(total - 1 - index),
        colourState(stateWord(build.state), style),
        build.reason,
        build.version ?? '-',
        localTime(build.started),
        build.ended ? buildDuration(build, now) : '-',
      ]),
      style,
    ),
  );
  await warnVersion();
  return EXIT_OK;
}

// --- build ---

/** `serene info <name> build [id]`: the details of one build. */
export async function showBuild(
  context: ClientContext,
  name: string,
  id: string | undefined,
): Promise<number> {
  const { io, api } = context;
  const build = await api.json<BuildInfo>(
    'GET',
    `/package/${segment(name)}/build/${segment(id ?? 'latest')}`,
  );
  const style = styleFor(io);
  const state = build.state;
  const word = state.state === 'running' ? `running (${state.info})` : state.state;
  const rows: [string, string][] = [
    ['state', colourState(word, style)],
    ['reason', build.reason],
    ['version', build.version ?? '-'],
    ['started', localTime(build.started)],
    ['ended', build.ended ? `${localTime(build.ended)} (took ${buildDuration(build, new Date())})` : '-'],
  ];
  if (state.state === 'cancelled') rows.push(['message', state.info]);
  if (state.state === 'fatal') rows.push(['message', `${state.info[0]} (while ${state.info[1]})`]);
  if (build.mem_peak != null) rows.push(['memory peak', bytes(build.mem_peak)]);
  if (build.cpu_user != null || build.cpu_system != null) {
    const seconds = (micros: number | null | undefined) => `${((micros ?? 0) / 1e6).toFixed(1)}s`;
    rows.push(['cpu', `${seconds(build.cpu_user)} user, ${seconds(build.cpu_system)} system`]);
  }
  if (build.io_tbr != null || build.io_tbw != null) {
    rows.push(['io', `${bytes(build.io_tbr ?? 0)} read, ${bytes(build.io_tbw ?? 0)} written`]);
  }
  const keyWidth = Math.max(...rows.map(([key]) => key.length)) + 1;
  for (const [key, value] of rows) io.stdout(`${`${key}:`.padEnd(keyWidth)}  ${value}\n`);
  return EXIT_OK;
}

// --- logs ---

/** Options of `serene info <name> logs`. */
export interface LogsOptions {
  subscribe?: boolean;
  linger?: boolean;
}

/**
 * `serene info <name> logs [id]`. With an id: that build's log. Without: the latest build's log, or
 * while that build still runs (its log is not stored yet) the live log until it ends. With
 * `--subscribe` the live logs of every build until interrupted (or the server ends the stream);
 * `--linger` prints the latest log first.
 */
export async function showLogs(
  context: ClientContext,
  name: string,
  id: string | undefined,
  options: LogsOptions,
): Promise<number> {
  const { io, api } = context;
  const logsOf = (which: string) =>
    api.json<string>('GET', `/package/${segment(name)}/build/${segment(which)}/logs`);
  if (id !== undefined) {
    if (options.subscribe || options.linger)
      throw new UsageError('--subscribe and --linger follow the live log: drop the id');
    io.stdout(ensureNewline(await logsOf(id)));
    return EXIT_OK;
  }
  let running: BuildInfo | undefined;
  if (!options.subscribe) {
    try {
      io.stdout(ensureNewline(await logsOf('latest')));
      if (!options.linger) return EXIT_OK;
    } catch (error) {
      // no stored log: the latest build is still running (follow it), or there is no build at all
      if (!(error instanceof ApiError && error.status === 404)) throw error;
      const latest = await api.latestBuild(name);
      if (!latest) await api.json<PackageInfo>('GET', `/package/${segment(name)}`);
      if (latest && isDone(latest.state) && !options.linger) {
        io.stderr(`the latest build of ${name} has no log (${describeState(latest.state)})\n`);
        return EXIT_OK;
      }
      if (latest && !isDone(latest.state)) running = latest;
    }
  }
  const stream = await api.subscribe(name, io.signal);
  if (running && !options.linger) {
    // the build may have ended before the stream opened: then its log is stored by now
    const now = await api.latestBuild(name);
    if (now?.started === running.started && isDone(now.state)) {
      stream.close();
      io.stdout(ensureNewline(await logsOf('latest').catch(() => '')));
      io.stderr(`build of ${name} ended: ${describeState(now.state)}\n`);
      return EXIT_OK;
    }
  }
  const progress = createProgress(io);
  progress.update(`waiting for a build of ${name}`);
  // -s and -l follow build after build until interrupted, as the original's; without them the
  // running build is followed to its end
  const follows = options.subscribe === true || options.linger === true;
  let sawActivity = false;
  try {
    for await (const event of stream) {
      if (event.event === 'log') {
        progress.log(event.data);
        sawActivity = true;
      } else if (event.event === 'change') {
        // as the original: with -s or -l, a line in the log at each change of state
        if (follows) progress.log(`### package build is ${describeState(event.data)}\n`);
        progress.update(`${name}: ${describeState(event.data)}`);
        if (!isDone(event.data)) {
          sawActivity = true;
          continue;
        }
        progress.stop();
        io.stderr(`build of ${name} ended: ${describeState(event.data)}\n`);
        if (!follows && sawActivity) return EXIT_OK;
        progress.update(`waiting for the next build of ${name}`);
      }
    }
    // the server ended the stream, or the user interrupted it
    return EXIT_OK;
  } finally {
    progress.stop();
    stream.close();
  }
}

function ensureNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

// --- pkgbuild ---

/** `serene info <name> pkgbuild`. */
export async function showPkgbuild(context: ClientContext, name: string): Promise<number> {
  const text = await context.api.json<string>('GET', `/package/${segment(name)}/pkgbuild`);
  context.io.stdout(ensureNewline(text));
  return EXIT_OK;
}

// --- set ---

const BOOLEAN_KEYS: Record<
  string,
  'clean' | 'private' | 'enabled' | 'dependency' | 'devel' | 'srcinfooverride'
> = {
  clean: 'clean',
  private: 'private',
  enable: 'enabled',
  enabled: 'enabled',
  dependency: 'dependency',
  devel: 'devel',
  'srcinfo-override': 'srcinfooverride',
};

/** The keys of `set`, as the user types them. */
export const SETTING_KEYS: readonly string[] = [
  'clean',
  'private',
  'enable',
  'dependency',
  'devel',
  'srcinfo-override',
  'schedule',
  'prepare',
  'flags',
  'cooloff',
  'trust',
  'review',
];

/** The settings request of `set <key> <values...>`; a wrong key or value is a usage error. */
export function settingsRequest(key: string, values: readonly string[]): PackageSettingsRequest {
  const boolean = BOOLEAN_KEYS[key];
  if (boolean) {
    const [value, ...rest] = values;
    if (rest.length > 0 || (value !== 'true' && value !== 'false')) {
      throw new UsageError(`${key} takes true or false`);
    }
    return { key: boolean, value: value === 'true' };
  }
  if (key === 'schedule' || key === 'prepare') {
    const text = values.join(' ');
    return { key, value: text.trim() === '' ? null : text };
  }
  if (key === 'cooloff' || key === 'cool-off' || key === 'trust' || key === 'review') {
    const [value, ...rest] = values;
    if (value === undefined || rest.length > 0) throw new UsageError(`${key} takes one value (or default)`);
    if (value === 'default') return { key: key === 'cool-off' ? 'cooloff' : key, value: null };
    if (key === 'trust') {
      if (value !== 'true' && value !== 'false') throw new UsageError('trust takes true, false or default');
      return { key, value: value === 'true' };
    }
    if (key === 'review') {
      if (value !== 'off' && value !== 'diff' && value !== 'all') {
        throw new UsageError('review takes off, diff, all or default');
      }
      return { key, value };
    }
    return { key: 'cooloff', value };
  }
  if (key === 'flags') {
    const flags = values.map((flag) => flag.replace(/^-+/, ''));
    const unknown = flags.filter((flag) => !(MAKEPKG_FLAGS as readonly string[]).includes(flag));
    if (unknown.length > 0) {
      throw new UsageError(
        `unknown makepkg flag ${unknown.join(', ')}; known are ${MAKEPKG_FLAGS.join(', ')}`,
      );
    }
    return { key, value: flags };
  }
  throw new UsageError(
    `unknown setting '${key}'; known are ${[...Object.keys(BOOLEAN_KEYS).filter((k) => k !== 'enabled'), 'schedule', 'prepare', 'flags', 'cooloff', 'trust', 'review'].join(', ')}`,
  );
}

/** `serene info <name> set <key> <values...>`. */
export async function setSetting(
  context: ClientContext,
  name: string,
  key: string,
  values: readonly string[],
): Promise<number> {
  const request = settingsRequest(key, values);
  await context.api.send('POST', `/package/${segment(name)}/set`, request);
  const shown = Array.isArray(request.value)
    ? request.value.join(' ') || '(none)'
    : String(request.value ?? '(default)');
  context.io.stdout(`set ${key} of ${name} to ${shown}\n`);
  return EXIT_OK;
}

// --- registration ---

/** Registers `info` on `program`. */
export function registerInfoCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program
    .command('info')
    .description('show a package, its builds, logs and PKGBUILD; change its settings')
    .argument('<name>', 'package base')
    .argument('[subcommand...]', 'build [id], logs [id], pkgbuild, set <key> <value...>')
    .option('-a, --all', 'list all builds, not only the newest 8')
    .passThroughOptions()
    .addHelpText('after', INFO_HELP)
    .action(async (name: string, rest: string[], options: { all?: boolean }, command: Command) => {
      const [first] = rest;
      if (first !== undefined && !first.startsWith('-') && !SUBCOMMANDS.includes(first)) {
        io.stderr(`error: unknown subcommand '${first}' of info; known are ${SUBCOMMANDS.join(', ')}\n`);
        setExitCode(EXIT_USAGE);
        return;
      }
      const globals = () => command.optsWithGlobals() as GlobalOptions;
      const sub = createInfoProgram(name, options.all === true, io, setExitCode, globals, command);
      await sub.parseAsync(rest, { from: 'user' });
    });
}

/** The program that parses what follows `serene info <name>`. */
function createInfoProgram(
  name: string,
  all: boolean,
  io: CliIo,
  setExitCode: (code: number) => void,
  globals: () => GlobalOptions,
  parent: Command,
): Command {
  const program = new Command(`${parent.parent?.name() ?? 'serene'} info ${name}`)
    .option('-a, --all', 'list all builds, not only the newest 8')
    .helpOption('-h, --help', 'print this help')
    .helpCommand(false)
    .showHelpAfterError()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .action(
      apiAction(
        io,
        setExitCode,
        (context, options: { all?: boolean }) => showInfo(context, name, all || options.all === true),
        globals,
      ),
    );
  program
    .command('build')
    .description('details of a build')
    .argument('[id]', "build id (0000 is the oldest), start time, or 'latest'")
    .action(
      apiAction(io, setExitCode, (context, id: string | undefined) => showBuild(context, name, id), globals),
    );
  program
    .command('logs')
    .description('logs of a build')
    .argument('[id]', "build id (0000 is the oldest), start time, or 'latest'")
    .option('-s, --subscribe', 'follow the live logs, build after build, until interrupted')
    .option('-l, --linger', 'print the latest log first, then follow as -s')
    .action(
      apiAction(
        io,
        setExitCode,
        (context, id: string | undefined, options: LogsOptions) => showLogs(context, name, id, options),
        globals,
      ),
    );
  program
    .command('pkgbuild')
    .description('the PKGBUILD of the published build')
    .action(apiAction(io, setExitCode, (context) => showPkgbuild(context, name), globals));
  program
    .command('set')
    .description('change a setting')
    .argument(
      '<key>',
      'clean, private, enable, dependency, devel, srcinfo-override, schedule, prepare, flags, cooloff, trust, review',
    )
    .argument('[value...]', 'the new value')
    .allowUnknownOption()
    .action(
      apiAction(
        io,
        setExitCode,
        (context, key: string, values: string[]) => setSetting(context, name, key, values),
        globals,
      ),
    );
  return program;
}
