/**
 * The host's configuration: every environment variable of the original (reference section 3) and
 * ours, read once, validated, with defaults. Nothing else in serene reads the environment.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { InputError, type LogLevel, parseCron } from '@serene/core';

/** The server's version as the original reports it (`GET /`, `{version}` of `RUNNER_IMAGE`). */
export const SERVER_VERSION = 'v0.4.3';

/** The original's runner image, `{version}` replaced by {@link SERVER_VERSION}. */
export const DEFAULT_RUNNER_IMAGE_TEMPLATE = 'ghcr.io/virtcode/serene-aur-runner:edge-{version}';

/** Everything the host needs to start, read from the environment by {@link readConfig}. */
export interface HostConfig {
  // --- where things are --------------------------------------------------------------------------
  /** `DATA_DIR`: the folder the original keeps under `/app` @default './data' */
  dataDir: string;
  /** `DATABASE_URL`: a SQLite file (or `sqlite:` URL) or a `postgres://` URL @default DATA_DIR/serene.db */
  databaseUrl: string;
  /** `AUTHORIZED_SECRETS` @default DATA_DIR/authorized_secrets */
  authorizedSecretsFile: string;
  /** `SIGN_KEY`: its presence turns signing on @default DATA_DIR/sign_key.asc */
  signKeyFile: string;
  /** DATA_DIR/sources */
  sourcesDir: string;
  /** DATA_DIR/repository, served at `/<ARCH>/` */
  repositoryDir: string;
  /** DATA_DIR/logs: the server's own log files are not kept here (stdout); build work folders are */
  logsDir: string;
  /** DATA_DIR/work: outputs of running builds */
  workDir: string;

  // --- HTTP --------------------------------------------------------------------------------------
  /** `PORT` @default 8080 (80 in the container image) */
  port: number;
  /** `HOST`: the address to listen on @default '0.0.0.0' */
  host: string;
  /** `ALLOW_READS` @default false */
  allowReads: boolean;
  /** `WEBHOOK_SECRET` @default unset: webhooks off */
  webhookSecret: string | undefined;
  /** `METRICS`: serve `GET /metrics` @default true */
  metrics: boolean;

  // --- repository --------------------------------------------------------------------------------
  /** `ARCH` @default this machine's (`x86_64`, `aarch64`) */
  arch: string;
  /** `NAME` @default 'serene' */
  name: string;
  /** `SIGN_KEY_PASSWORD` */
  signKeyPassword: string | undefined;
  /** `OWN_REPOSITORY_URL` */
  ownRepositoryUrl: string | undefined;

  // --- sources -----------------------------------------------------------------------------------
  /** `AUR_URL` (ours) @default 'https://aur.archlinux.org' */
  aurUrl: string;
  /** `AUR_GITHUB_MIRROR` @default false */
  aurGithubMirror: boolean;
  /** `AUR_RESOLVE_ADDING` @default true */
  aurResolveAdding: boolean;
  /** `AUR_REQUEST_TIMEOUT` in ms @default 5000 */
  aurRequestTimeoutMs: number;
  /** `AUR_REQUEST_RETRIES` @default 1 */
  aurRequestRetries: number;
  /** `SYNC_MIRROR` @default 'https://mirror.init7.net/archlinux/{repo}/os/{arch}' */
  syncMirror: string;

  // --- builds ------------------------------------------------------------------------------------
  /** `RESOLVE_BUILD_SEQUENCE` @default true */
  resolveBuildSequence: boolean;
  /** `RESOLVE_IGNORE_FAILED` @default false */
  resolveIgnoreFailed: boolean;
  /** `CONCURRENT_BUILDS`: across the whole server (the original: per session) @default 5 */
  concurrentBuilds: number;
  /** `FORCE_CLEAN` @default false */
  forceClean: boolean;
  /** `BUILD_TIMEOUT` (ours) in ms @default 2 hours */
  buildTimeoutMs: number;
  /** `BUILD_CLI`: add and build the `serene-cli` package (this server's own CLI) @default true */
  buildCli: boolean;
  /** `EDGE_CLI` @default false */
  edgeCli: boolean;
  /**
   * `BUILD_RETENTION` (ours) in ms: builds and their logs older than this are removed (each
   * package's newest build is kept) @default undefined: kept forever, as the original
   */
  buildRetentionMs: number | undefined;

  // --- schedules ---------------------------------------------------------------------------------
  /** `SCHEDULING_DISABLED` @default false */
  schedulingDisabled: boolean;
  /** `SCHEDULING_DEFAULT` @default true */
  schedulingDefault: boolean;
  /** `SCHEDULE` @default '0 0 0 * * *' */
  schedule: string;
  /** `SCHEDULE_DEVEL` @default SCHEDULE */
  scheduleDevel: string;
  /** `SCHEDULE_IMAGE` @default '0 0 0 * * *' */
  scheduleImage: string;

  // --- runner ------------------------------------------------------------------------------------
  /** `DOCKER_URL` @default the engine's unix socket */
  dockerUrl: string | undefined;
  /** `RUNNER_IMAGE`, `{version}` replaced */
  runnerImage: string;
  /** `RUNNER_PREFIX` @default 'serene-aur-runner-' */
  runnerPrefix: string;
  /** `RUNNER_SRCINFO_NAME` @default 'serene-aur-srcinfo-generation' */
  runnerSrcinfoName: string;
  /** `PRUNE_IMAGES` @default true */
  pruneImages: boolean;
  /** `PULL_IMAGE` (ours): pull the runner image at start and on SCHEDULE_IMAGE @default true */
  pullImage: boolean;
  /** `PACKAGER` */
  packager: string | undefined;
  /** `RUNNER_NETWORK` (ours) */
  runnerNetwork: string | undefined;
  /** `RUNNER_MEMORY` (ours) in bytes, 0 for none @default 0 */
  runnerMemoryBytes: number;
  /** `RUNNER_CPUS` (ours), 0 for all @default 0 */
  runnerCpus: number;
  /** `RUNNER_PIDS` (ours) @default 8192 */
  runnerPids: number;

  // --- logging -----------------------------------------------------------------------------------
  /** `LOG_LEVEL` (ours), else the level `RUST_LOG` names for serene @default 'info' */
  logLevel: LogLevel;
  /** `LOG_FORMAT` (ours): `json` lines (pino) or `pretty` one-line text @default 'json' */
  logFormat: 'json' | 'pretty';
}

/** One variable: its name, what it accepts (for the error), its default and meaning (for the docs). */
export interface VariableDoc {
  name: string;
  default: string;
  meaning: string;
  ours?: boolean;
}

/** Every variable the host reads, in the order of the docs. */
export const VARIABLES: readonly VariableDoc[] = [
  {
    name: 'DATA_DIR',
    default: './data (/app in the image)',
    meaning: 'folder of the database, secrets, key, sources, repository',
    ours: true,
  },
  {
    name: 'DATABASE_URL',
    default: 'DATA_DIR/serene.db',
    meaning: 'SQLite file (or sqlite: URL), or a postgres:// URL',
    ours: true,
  },
  {
    name: 'AUTHORIZED_SECRETS',
    default: 'DATA_DIR/authorized_secrets',
    meaning: 'file of accepted API secret hashes',
    ours: true,
  },
  {
    name: 'SIGN_KEY',
    default: 'DATA_DIR/sign_key.asc',
    meaning: 'OpenPGP secret key (or public key, with DATA_DIR/S.gpg-agent); its presence turns signing on',
    ours: true,
  },
  { name: 'PORT', default: '8080 (80 in the image)', meaning: 'HTTP port' },
  { name: 'HOST', default: '0.0.0.0', meaning: 'address the HTTP server listens on', ours: true },
  { name: 'ALLOW_READS', default: 'false', meaning: 'read endpoints need no secret' },
  { name: 'WEBHOOK_SECRET', default: 'unset', meaning: 'enables webhooks' },
  { name: 'METRICS', default: 'true', meaning: 'serve GET /metrics (Prometheus text format)', ours: true },
  {
    name: 'ARCH',
    default: "this machine's (x86_64, aarch64)",
    meaning: 'served path /<ARCH>, package architecture',
  },
  { name: 'NAME', default: 'serene', meaning: 'repository name (NAME.db.tar.gz)' },
  {
    name: 'SIGN_KEY_PASSWORD',
    default: 'unset',
    meaning: "password of an encrypted signing key, or the gpg-agent key's passphrase or PIN",
  },
  { name: 'OWN_REPOSITORY_URL', default: 'unset', meaning: 'URL under which runners reach this repository' },
  {
    name: 'AUR_URL',
    default: 'https://aur.archlinux.org',
    meaning: 'AUR base URL (RPC and git)',
    ours: true,
  },
  { name: 'AUR_GITHUB_MIRROR', default: 'false', meaning: "new AUR sources use GitHub's AUR mirror" },
  {
    name: 'AUR_RESOLVE_ADDING',
    default: 'true',
    meaning: 'resolve pkgbase and AUR dependencies by RPC when adding',
  },
  { name: 'AUR_REQUEST_TIMEOUT', default: '5000', meaning: 'ms an AUR RPC request may take' },
  { name: 'AUR_REQUEST_RETRIES', default: '1', meaning: 'extra attempts of a failed AUR RPC request' },
  {
    name: 'SYNC_MIRROR',
    default: 'https://mirror.init7.net/archlinux/{repo}/os/{arch}',
    meaning: 'mirror of the official databases used to resolve dependencies',
  },
  { name: 'RESOLVE_BUILD_SEQUENCE', default: 'true', meaning: 'build a session in dependency order' },
  { name: 'RESOLVE_IGNORE_FAILED', default: 'false', meaning: 'build dependents of a failed build anyway' },
  { name: 'CONCURRENT_BUILDS', default: '5', meaning: 'builds at once, across the whole server' },
  { name: 'FORCE_CLEAN', default: 'false', meaning: 'every build is clean' },
  {
    name: 'BUILD_TIMEOUT',
    default: '2h',
    meaning: 'longest build; seconds, or a number with s, m, h or d',
    ours: true,
  },
  {
    name: 'BUILD_RETENTION',
    default: 'unset (forever)',
    meaning: 'builds and logs older than this are removed daily (the newest of each package kept); e.g. 90d',
    ours: true,
  },
  { name: 'BUILD_CLI', default: 'true', meaning: "add and build the serene-cli package (this server's CLI)" },
  {
    name: 'EDGE_CLI',
    default: 'false',
    meaning: "no effect (warned about): serene-cli is always this server's own CLI",
  },
  { name: 'SCHEDULING_DISABLED', default: 'false', meaning: 'never build on schedules' },
  { name: 'SCHEDULING_DEFAULT', default: 'true', meaning: '`enabled` of newly added packages' },
  { name: 'SCHEDULE', default: '0 0 0 * * *', meaning: 'default cron (UTC, seconds first) of packages' },
  { name: 'SCHEDULE_DEVEL', default: 'SCHEDULE', meaning: 'default cron of devel packages' },
  { name: 'SCHEDULE_IMAGE', default: '0 0 0 * * *', meaning: 'cron of runner image pulls' },
  {
    name: 'DOCKER_URL',
    default: '/var/run/docker.sock',
    meaning: 'Docker Engine: unix socket path, tcp:// or http(s)://',
  },
  {
    name: 'RUNNER_IMAGE',
    default: DEFAULT_RUNNER_IMAGE_TEMPLATE,
    meaning: 'runner image; {version} is replaced',
  },
  { name: 'RUNNER_PREFIX', default: 'serene-aur-runner-', meaning: 'build container name prefix' },
  {
    name: 'RUNNER_SRCINFO_NAME',
    default: 'serene-aur-srcinfo-generation',
    meaning: 'name of the .SRCINFO container',
  },
  { name: 'PRUNE_IMAGES', default: 'true', meaning: 'prune dangling images after a pull' },
  {
    name: 'PULL_IMAGE',
    default: 'true',
    meaning: 'pull the runner image at start and on SCHEDULE_IMAGE',
    ours: true,
  },
  { name: 'PACKAGER', default: 'unset', meaning: 'PACKAGER of makepkg in runners' },
  {
    name: 'RUNNER_NETWORK',
    default: "the engine's default",
    meaning: 'network of runner containers (host to reach 127.0.0.1)',
    ours: true,
  },
  {
    name: 'RUNNER_MEMORY',
    default: '0 (none)',
    meaning: 'memory limit of a build; bytes, or with k, m, g',
    ours: true,
  },
  { name: 'RUNNER_CPUS', default: '0 (all)', meaning: 'CPUs of a build, fractions allowed', ours: true },
  { name: 'RUNNER_PIDS', default: '8192', meaning: 'processes of a build', ours: true },
  {
    name: 'LOG_LEVEL',
    default: 'info',
    meaning: 'error, warn, info or debug; overrides RUST_LOG',
    ours: true,
  },
  { name: 'RUST_LOG', default: 'unset', meaning: 'honoured for compatibility (serene=info, debug, ...)' },
  { name: 'LOG_FORMAT', default: 'json', meaning: 'json (pino lines) or pretty', ours: true },
];

/** The machine's architecture as pacman names it. */
export function machineArch(): string {
  switch (os.arch()) {
    case 'x64':
      return 'x86_64';
    case 'arm64':
      return 'aarch64';
    case 'arm':
      return 'armv7h';
    case 'ia32':
      return 'i686';
    case 'riscv64':
      return 'riscv64';
    default:
      return os.arch();
  }
}

/** Collects the problems of an environment, so that one start reports all of them. */
class Reader {
  readonly problems: string[] = [];

  constructor(private readonly env: Readonly<Record<string, string | undefined>>) {}

  /** The raw value; unset and empty are the same (as a compose file's `VAR=` usually means unset). */
  raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value === '' ? undefined : value;
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  optional(name: string): string | undefined {
    return this.raw(name);
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (value === 'true') return true;
    if (value === 'false') return false;
    return this.fail(name, value, '`true` or `false`', fallback);
  }

  integer(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      return this.fail(name, value, `a whole number from ${min} to ${max}`, fallback);
    }
    return Number(value);
  }

  number(name: string, fallback: number, min: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!/^\d+(\.\d+)?$/.test(value) || Number(value) < min) {
      return this.fail(name, value, `a number of at least ${min} (fractions allowed)`, fallback);
    }
    return Number(value);
  }

  /** Seconds, or a number with `ms`, `s`, `m`, `h` or `d`; in milliseconds. */
  duration(name: string, fallbackMs: number, maxMs = 2 ** 31 - 1): number {
    const value = this.raw(name);
    if (value === undefined) return fallbackMs;
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
    const ms = match ? Number(match[1]) * unit[(match[2] ?? 's') as keyof typeof unit] : Number.NaN;
    if (!(ms >= 1000) || ms > maxMs) {
      const most = `${Math.floor(maxMs / 86_400_000)}d`;
      return this.fail(
        name,
        value,
        `seconds, or a number with ms, s, m, h or d (\`7200\`, \`2h\`), from 1s to ${most}`,
        fallbackMs,
      );
    }
    return Math.round(ms);
  }

  /** Bytes, or a number with `k`, `m`, `g` (binary units, as docker's `--memory`). */
  bytes(name: string, fallback: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    const match = /^(\d+)([kmg])?b?$/i.exec(value.trim());
    const unit = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as const;
    if (!match) return this.fail(name, value, 'bytes, or a number with k, m or g (`4g`)', fallback);
    const factor = match[2] ? unit[match[2].toLowerCase() as keyof typeof unit] : 1;
    return Number(match[1]) * factor;
  }

  cron(name: string, fallback: string): string {
    const value = this.raw(name) ?? fallback;
    try {
      parseCron(value);
    } catch (error) {
      return this.fail(
        name,
        value,
        `a cron expression with seconds first, 6 or 7 fields, in UTC (\`0 0 0 * * *\`): ${(error as Error).message}`,
        fallback,
      );
    }
    return value;
  }

  url(name: string, fallback: string | undefined, protocols: readonly string[]): string | undefined {
    const value = this.raw(name) ?? fallback;
    if (value === undefined) return undefined;
    let parsed: URL | undefined;
    try {
      parsed = new URL(value.replace(/\{(repo|arch)\}/g, 'x'));
    } catch {
      parsed = undefined;
    }
    if (!parsed || !protocols.includes(parsed.protocol)) {
      return this.fail(name, value, `a URL (${protocols.map((p) => `${p}//`).join(', ')})`, fallback);
    }
    return value;
  }

  oneOf<T extends string>(name: string, fallback: T, accepted: readonly T[]): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!(accepted as readonly string[]).includes(value)) {
      return this.fail(name, value, accepted.map((a) => `\`${a}\``).join(', '), fallback);
    }
    return value as T;
  }

  fail<T>(name: string, value: string, accepted: string, fallback: T): T {
    this.problems.push(`${name}=${JSON.stringify(value)} is not valid: expected ${accepted}`);
    return fallback;
  }
}

const NAME_PATTERN = /^[A-Za-z0-9@_+-][A-Za-z0-9@._+-]*$/;
const LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

/**
 * The level `RUST_LOG` gives serene (env_logger syntax: `info`, `serene=debug`, `warn,serene=info`,
 * `serene::web=trace`), mapped onto ours (`trace` is `debug`, `off` is `error`). Undefined when it
 * does not name one.
 */
export function levelFromRustLog(value: string | undefined): LogLevel | undefined {
  if (!value) return undefined;
  let general: string | undefined;
  let ours: string | undefined;
  for (const directive of value.split(',')) {
    const [target, level] = directive.includes('=') ? directive.split('=', 2) : [undefined, directive];
    const name = (level ?? '').trim().toLowerCase();
    if (target === undefined) general = name;
    else if (target.trim() === 'serene' || target.trim().startsWith('serene::')) ours ??= name;
  }
  const chosen = ours ?? general;
  if (chosen === 'trace') return 'debug';
  if (chosen === 'off') return 'error';
  return LEVELS.find((level) => level === chosen);
}

/**
 * Reads and validates the configuration from `env`. Paths are resolved against `cwd`.
 *
 * @throws InputError naming every invalid variable with the form it accepts; the server does not
 *   start on a configuration it would have to guess at.
 */
export function readConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
  cwd: string = process.cwd(),
): HostConfig {
  const r = new Reader(env);
  const dataDir = path.resolve(cwd, r.string('DATA_DIR', './data'));
  const inData = (file: string) => path.join(dataDir, file);
  const file = (name: string, fallback: string) => path.resolve(cwd, r.string(name, fallback));

  const name = r.string('NAME', 'serene');
  if (!NAME_PATTERN.test(name)) {
    r.fail('NAME', name, 'letters, digits and @ . _ + - (not starting with a dot)', 'serene');
  }
  const arch = r.string('ARCH', machineArch());
  if (!/^[A-Za-z0-9_]+$/.test(arch)) r.fail('ARCH', arch, 'an architecture name such as `x86_64`', 'x86_64');

  const schedule = r.cron('SCHEDULE', '0 0 0 * * *');
  const explicitLevel = r.raw('LOG_LEVEL');
  const logLevel =
    explicitLevel !== undefined
      ? r.oneOf<LogLevel>('LOG_LEVEL', 'info', LEVELS)
      : (levelFromRustLog(r.raw('RUST_LOG')) ?? 'info');

  const databaseUrl = r.raw('DATABASE_URL') ?? inData('serene.db');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(databaseUrl) && !/^(postgres(ql)?|sqlite):\/\//i.test(databaseUrl)) {
    r.fail('DATABASE_URL', databaseUrl, 'a SQLite file path, a sqlite: URL or a postgres:// URL', '');
  }

  const config: HostConfig = {
    dataDir,
    databaseUrl,
    authorizedSecretsFile: file('AUTHORIZED_SECRETS', inData('authorized_secrets')),
    signKeyFile: file('SIGN_KEY', inData('sign_key.asc')),
    sourcesDir: inData('sources'),
    repositoryDir: inData('repository'),
    logsDir: inData('logs'),
    workDir: inData('work'),

    port: r.integer('PORT', 8080, 0, 65535),
    host: r.string('HOST', '0.0.0.0'),
    allowReads: r.bool('ALLOW_READS', false),
    webhookSecret: r.optional('WEBHOOK_SECRET'),
    metrics: r.bool('METRICS', true),

    arch,
    name,
    signKeyPassword: r.optional('SIGN_KEY_PASSWORD'),
    ownRepositoryUrl: r.url('OWN_REPOSITORY_URL', undefined, ['http:', 'https:', 'file:']),

    aurUrl: r.url('AUR_URL', 'https://aur.archlinux.org', ['http:', 'https:'])!,
    aurGithubMirror: r.bool('AUR_GITHUB_MIRROR', false),
    aurResolveAdding: r.bool('AUR_RESOLVE_ADDING', true),
    aurRequestTimeoutMs: r.integer('AUR_REQUEST_TIMEOUT', 5000, 1),
    aurRequestRetries: r.integer('AUR_REQUEST_RETRIES', 1, 0, 100),
    syncMirror: r.url('SYNC_MIRROR', 'https://mirror.init7.net/archlinux/{repo}/os/{arch}', [
      'http:',
      'https:',
      'file:',
    ])!,

    resolveBuildSequence: r.bool('RESOLVE_BUILD_SEQUENCE', true),
    resolveIgnoreFailed: r.bool('RESOLVE_IGNORE_FAILED', false),
    concurrentBuilds: r.integer('CONCURRENT_BUILDS', 5, 1, 1000),
    forceClean: r.bool('FORCE_CLEAN', false),
    buildTimeoutMs: r.duration('BUILD_TIMEOUT', 2 * 3_600_000),
    buildCli: r.bool('BUILD_CLI', true),
    edgeCli: r.bool('EDGE_CLI', false),
    buildRetentionMs:
      r.raw('BUILD_RETENTION') === undefined
        ? undefined
        : r.duration('BUILD_RETENTION', 0, 3_650 * 86_400_000),

    schedulingDisabled: r.bool('SCHEDULING_DISABLED', false),
    schedulingDefault: r.bool('SCHEDULING_DEFAULT', true),
    schedule,
    scheduleDevel: r.cron('SCHEDULE_DEVEL', schedule),
    scheduleImage: r.cron('SCHEDULE_IMAGE', '0 0 0 * * *'),

    dockerUrl: r.optional('DOCKER_URL'),
    runnerImage: r
      .string('RUNNER_IMAGE', DEFAULT_RUNNER_IMAGE_TEMPLATE)
      .replaceAll('{version}', SERVER_VERSION),
    runnerPrefix: r.string('RUNNER_PREFIX', 'serene-aur-runner-'),
    runnerSrcinfoName: r.string('RUNNER_SRCINFO_NAME', 'serene-aur-srcinfo-generation'),
    pruneImages: r.bool('PRUNE_IMAGES', true),
    pullImage: r.bool('PULL_IMAGE', true),
    packager: r.optional('PACKAGER'),
    runnerNetwork: r.optional('RUNNER_NETWORK'),
    runnerMemoryBytes: r.bytes('RUNNER_MEMORY', 0),
    runnerCpus: r.number('RUNNER_CPUS', 0, 0),
    runnerPids: r.integer('RUNNER_PIDS', 8192, 0),

    logLevel,
    logFormat: r.oneOf('LOG_FORMAT', 'json', ['json', 'pretty'] as const),
  };
  for (const prefixed of ['RUNNER_PREFIX', 'RUNNER_SRCINFO_NAME'] as const) {
    const value = r.raw(prefixed);
    if (value !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(value)) {
      r.fail(
        prefixed,
        value,
        'a container name: letters, digits and _ . - (not starting with one of them)',
        '',
      );
    }
  }
  if (r.problems.length > 0) {
    throw new InputError(`invalid configuration:\n${r.problems.map((problem) => `  ${problem}`).join('\n')}`);
  }
  return config;
}
