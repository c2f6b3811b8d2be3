/**
 * The host's configuration: every environment variable of the original and ours, declared once in
 * {@link SETTINGS} (its name, how it is parsed, its default, and its line in
 * docs/configuration.md), read once by {@link readConfig}, validated, and frozen. Nothing else in
 * serene reads the environment.
 *
 * To add a setting: add one entry to {@link SETTINGS} (the table in docs/configuration.md follows
 * from it: `config.test.ts` shows the line to paste) and read `config.yourKey` where it is used.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AUR_REQUEST_DEFAULTS,
  BUILD_DEFAULTS,
  DEFAULT_AUR_URL,
  DEFAULT_SCHEDULE,
  DEFAULT_SYNC_MIRROR,
  InputError,
  type LogLevel,
  OPEN_GATE_POLICY,
  parseCoolOff,
  parseCron,
  REVIEW_MODES,
  repositoryNameProblem,
} from '@serene/core';
import { DOCKER_RUNNER_DEFAULTS, ENGINE_POOL_DEFAULTS, parseDockerUrl } from '@serene/plugin-docker';
import { z } from 'zod';

/** The server's version as the original reports it (`GET /`, `{version}` of `RUNNER_IMAGE`). */
export const SERVER_VERSION = 'v0.4.3';

/** The original's runner image, `{version}` replaced by {@link SERVER_VERSION}. */
export const DEFAULT_RUNNER_IMAGE_TEMPLATE = 'ghcr.io/virtcode/serene-aur-runner:edge-{version}';

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

// --- PARSERS: from the text of a variable to its value ------------------------------------------

/**
 * A schema that reads a variable's text with `read`; `undefined` or a throw means invalid, and
 * `expected` (with the thrown message) names the accepted form in the error.
 */
function accepts<T>(expected: string, read: (text: string) => T | undefined): z.ZodType<T, string> {
  return z.string().transform((text, ctx) => {
    let value: T | undefined;
    let detail = '';
    try {
      value = read(text);
    } catch (error) {
      detail = `: ${(error as Error).message}`;
    }
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: `${expected}${detail}` });
      return z.NEVER;
    }
    return value;
  });
}

/**
 * `HEAP_GROWTH`: V8's `--heap-growing-percent` for the server's process. By its own choice V8
 * lets the heap of a busy server grow to three or four times its live objects (a build session of
 * 20,000 packages: 60-75 MB live, 235 MB of heap and 360 MB of RSS); at 100 (a full collection
 * once the heap has doubled since the last) the same session peaked at 155 MB of heap and 277 MB
 * of RSS, with the same answer times (docs/benchmarks.md, issue 16). Not a limit: the heap still
 * grows as far as the live objects need.
 */
export const DEFAULT_HEAP_GROWTH = 100;

const text = () => z.string();

const bool = () =>
  accepts('`true` or `false`', (t) => (t === 'true' ? true : t === 'false' ? false : undefined));

/** A whole number in decimal, with an optional `+` (as the original's parser takes it). */
const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  accepts(`a whole number from ${min} to ${max}`, (t) =>
    /^\+?\d+$/.test(t) && Number(t) >= min && Number(t) <= max ? Number(t) : undefined,
  );

/** The largest value of the original's unsigned 32-bit settings. */
const U32_MAX = 2 ** 32 - 1;

const decimal = (min: number) =>
  accepts(`a number of at least ${min} (fractions allowed)`, (t) =>
    /^\d+(\.\d+)?$/.test(t) && Number(t) >= min ? Number(t) : undefined,
  );

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Seconds, or a number with `ms`, `s`, `m`, `h` or `d`; in milliseconds, from 1 s to `maxMs`. */
const duration = (maxMs = 2 ** 31 - 1) =>
  accepts(
    `seconds, or a number with ms, s, m, h or d (\`7200\`, \`2h\`), from 1s to ${Math.floor(maxMs / 86_400_000)}d`,
    (t) => {
      const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(t.trim());
      const ms = match
        ? Number(match[1]) * DURATION_UNITS[(match[2] ?? 's') as keyof typeof DURATION_UNITS]
        : 0;
      return ms >= 1000 && ms <= maxMs ? Math.round(ms) : undefined;
    },
  );

/** Bytes, or a number with `k`, `m`, `g` (binary units, as docker's `--memory`). */
const bytes = () =>
  accepts('bytes, or a number with k, m or g (`4g`)', (t) => {
    const match = /^(\d+)([kmg])?b?$/i.exec(t.trim());
    if (!match) return undefined;
    const unit = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as const;
    return Number(match[1]) * (match[2] ? unit[match[2].toLowerCase() as keyof typeof unit] : 1);
  });

const cron = () =>
  accepts('a cron expression with seconds first, 6 or 7 fields, in UTC (`0 0 0 * * *`)', (t) => {
    parseCron(t);
    return t;
  });

const url = (protocols: readonly string[]) =>
  accepts(`a URL (${protocols.map((p) => `${p}//`).join(', ')})`, (t) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(t.replace(/\{(repo|arch)\}/g, 'x'));
    } catch {
      return undefined;
    }
    return protocols.includes(parsed.protocol) ? t : undefined;
  });

const oneOf = <T extends string>(accepted: readonly T[]) =>
  accepts(accepted.map((a) => `\`${a}\``).join(', '), (t) => accepted.find((a) => a === t));

/** A comma-separated list; blanks around entries are dropped, as are empty entries. */
const list = () =>
  accepts('a comma-separated list of names, without control characters', (t) =>
    /[\u0000-\u001f\u007f]/.test(t)
      ? undefined
      : t
          .split(',')
          .map((entry) => entry.trim())
          .filter((entry) => entry !== ''),
  );

/** A cool-off: `0` (off), seconds, or a number with ms, s, m, h, d or w. */
const coolOff = () =>
  accepts('`0`, seconds, or a number with s, m, h, d or w (`2d`), at most 366d', (t) => parseCoolOff(t));

const pattern = (re: RegExp, expected: string) => accepts(expected, (t) => (re.test(t) ? t : undefined));

// --- THE SETTINGS --------------------------------------------------------------------------------

/** One environment variable: its name, its parsing and default, and its line in the docs. */
export interface Variable<T> {
  /** the variable's name in the environment */
  readonly name: string;
  /** parses its value; unset (or empty) gives the default */
  readonly schema: z.ZodType<T, string | undefined>;
  /** the default as the docs write it */
  readonly doc: string;
  /** what it does, for the docs */
  readonly meaning: string;
  /** ours (beyond the original) */
  readonly ours: boolean;
}

interface Meta {
  /** the default as the docs write it @default the default value */
  doc?: string;
  meaning: string;
  ours?: boolean;
}

/** A variable with a default (a value, or a function of nothing for one found at run time). */
function setting<T>(
  name: string,
  schema: z.ZodType<T, string>,
  fallback: T | (() => T),
  meta: Meta,
): Variable<T> {
  const value = () => (typeof fallback === 'function' ? (fallback as () => T)() : fallback);
  return {
    name,
    schema: schema.optional().transform((parsed) => (parsed === undefined ? value() : parsed)),
    doc: meta.doc ?? String(fallback),
    meaning: meta.meaning,
    ours: meta.ours ?? false,
  };
}

/** A variable without a default: unset stays `undefined` (or another setting decides). */
function optional<T>(name: string, schema: z.ZodType<T, string>, meta: Meta): Variable<T | undefined> {
  return {
    name,
    schema: schema.optional(),
    doc: meta.doc ?? 'unset',
    meaning: meta.meaning,
    ours: meta.ours ?? false,
  };
}

/** One Docker Engine of `ENGINES`, as written (file paths not read yet). */
export interface EngineSetting {
  name: string;
  url: string;
  arch?: string | undefined;
  capacity: number;
  labels: string[];
  /** PEM files of a `tcp://` engine with TLS */
  tls?: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined } | undefined;
  /** private key file of an `ssh://` engine */
  sshKey?: string | undefined;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const ENGINE_SCHEMA = z
  .object({
    name: z.string().regex(NAME, 'letters, digits and _ . -').optional(),
    url: z.string().min(1),
    arch: z
      .string()
      .regex(/^[A-Za-z0-9_]+$/, 'an architecture name such as `x86_64`')
      .optional(),
    capacity: z.number().int().min(1).max(1000).optional(),
    labels: z.array(z.string().regex(NAME, 'letters, digits and _ . -')).optional(),
    tls: z
      .object({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() })
      .strict()
      .optional(),
    sshKey: z.string().optional(),
  })
  .strict();

/** Reads `ENGINES`: a JSON array of engines; throws naming the first problem. */
export function parseEngines(text: string): EngineSetting[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(json) || json.length === 0) throw new Error('not a non-empty array');
  const names = new Set<string>();
  return json.map((entry, index) => {
    const result = ENGINE_SCHEMA.safeParse(entry);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      const where = issue.path.length > 0 ? `.${issue.path.join('.')}` : '';
      throw new Error(`engine ${index + 1}${where}: ${issue.message}`);
    }
    const engine = result.data;
    try {
      const endpoint = parseDockerUrl(engine.url);
      if (engine.tls && endpoint.kind !== 'http') throw new Error('tls is for tcp:// and https:// engines');
      if (engine.sshKey !== undefined && endpoint.kind !== 'ssh')
        throw new Error('sshKey is for ssh:// engines');
    } catch (error) {
      throw new Error(`engine ${index + 1}.url: ${(error as Error).message}`);
    }
    const name = engine.name ?? `engine-${index + 1}`;
    if (names.has(name)) throw new Error(`engine ${index + 1}: the name '${name}' is used twice`);
    names.add(name);
    return {
      name,
      url: engine.url,
      arch: engine.arch,
      capacity: engine.capacity ?? ENGINE_POOL_DEFAULTS.capacity,
      labels: engine.labels ?? [],
      tls: engine.tls,
      sshKey: engine.sshKey,
    };
  });
}

/** Reads `ENGINE_PINS`: `pkgbase=label` pairs separated by commas. */
function parsePins(text: string): Record<string, string> {
  const pins: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const match = /^\s*([^\s=]+)\s*=\s*([A-Za-z0-9][A-Za-z0-9_.-]*)\s*$/.exec(pair);
    if (!match) throw new Error(`'${pair.trim()}' is not pkgbase=label`);
    pins[match[1]!] = match[2]!;
  }
  return pins;
}

const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const CONTAINER_NAME_EXPECTED = 'a container name: letters, digits and _ . - (not starting with one of them)';
const LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

/**
 * Every variable the host reads, keyed by its field in {@link HostConfig}, in the order of the docs.
 * Defaults that belong to a plugin are the plugin's exported constants, not repeated here.
 */
export const SETTINGS = {
  // --- where things are ---
  dataDir: setting('DATA_DIR', text(), './data', {
    doc: './data (/app in the image)',
    meaning: 'folder of the database, secrets, key, sources, repository',
    ours: true,
  }),
  databaseUrl: optional(
    'DATABASE_URL',
    accepts('a SQLite file path, a sqlite: URL or a postgres:// URL', (t) =>
      /^[a-z][a-z0-9+.-]*:\/\//i.test(t) && !/^(postgres(ql)?|sqlite):\/\//i.test(t) ? undefined : t,
    ),
    { doc: 'DATA_DIR/serene.db', meaning: 'SQLite file (or sqlite: URL), or a postgres:// URL', ours: true },
  ),
  authorizedSecretsFile: optional('AUTHORIZED_SECRETS', text(), {
    doc: 'DATA_DIR/authorized_secrets',
    meaning: 'file of accepted API secret hashes',
    ours: true,
  }),
  signKeyFile: optional('SIGN_KEY', text(), {
    doc: 'DATA_DIR/sign_key.asc',
    meaning: 'OpenPGP secret key (or public key, with DATA_DIR/S.gpg-agent); its presence turns signing on',
    ours: true,
  }),

  heapGrowthPercent: setting('HEAP_GROWTH', integer(0, 1000), DEFAULT_HEAP_GROWTH, {
    meaning:
      "how far V8 lets the server's heap grow past its live objects before a full collection, in percent (0: V8's own choice, which lets a busy server grow to several times them); not a limit",
    ours: true,
  }),

  // --- HTTP ---
  port: setting('PORT', integer(0, 65535), 8080, { doc: '8080 (80 in the image)', meaning: 'HTTP port' }),
  host: setting('HOST', text(), '0.0.0.0', { meaning: 'address the HTTP server listens on', ours: true }),
  allowReads: setting('ALLOW_READS', bool(), false, { meaning: 'read endpoints need no secret' }),
  webhookSecret: optional('WEBHOOK_SECRET', text(), { meaning: 'enables webhooks' }),
  metrics: setting('METRICS', bool(), true, {
    meaning: 'serve GET /metrics (Prometheus text format)',
    ours: true,
  }),
  dashboard: setting('DASHBOARD', bool(), true, {
    meaning: 'serve the web dashboard at /dashboard/ (docs/dashboard.md)',
    ours: true,
  }),

  // --- repository ---
  arch: setting(
    'ARCH',
    pattern(/^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$/, 'an architecture name such as `x86_64` (no / or spaces)'),
    machineArch,
    { doc: "this machine's (x86_64, aarch64)", meaning: 'served path /<ARCH>, package architecture' },
  ),
  name: setting(
    'NAME',
    accepts('letters, digits and @ . _ + - (not starting with a dot)', (t) =>
      repositoryNameProblem(t) === undefined ? t : undefined,
    ),
    'serene',
    { meaning: 'repository name (NAME.db.tar.gz)' },
  ),
  signKeyPassword: optional('SIGN_KEY_PASSWORD', text(), {
    meaning: "password of an encrypted signing key, or the gpg-agent key's passphrase or PIN",
  }),
  ownRepositoryUrl: optional('OWN_REPOSITORY_URL', url(['http:', 'https:', 'ftp:', 'file:']), {
    meaning: 'URL under which runners reach this repository',
  }),

  // --- sources ---
  aurUrl: setting('AUR_URL', url(['http:', 'https:']), DEFAULT_AUR_URL, {
    meaning: 'AUR base URL (RPC and git)',
    ours: true,
  }),
  aurGithubMirror: setting('AUR_GITHUB_MIRROR', bool(), false, {
    meaning: "new AUR sources use GitHub's AUR mirror",
  }),
  aurResolveAdding: setting('AUR_RESOLVE_ADDING', bool(), true, {
    meaning: 'resolve pkgbase and AUR dependencies by RPC when adding',
  }),
  aurRequestTimeoutMs: setting('AUR_REQUEST_TIMEOUT', integer(0), AUR_REQUEST_DEFAULTS.timeoutMs, {
    meaning: 'ms an AUR RPC request may take',
  }),
  aurRequestRetries: setting('AUR_REQUEST_RETRIES', integer(0, U32_MAX), AUR_REQUEST_DEFAULTS.retries, {
    meaning: 'extra attempts of a failed AUR RPC request',
  }),
  syncMirror: setting('SYNC_MIRROR', url(['http:', 'https:', 'file:']), DEFAULT_SYNC_MIRROR, {
    meaning: 'mirror of the official databases used to resolve dependencies',
  }),

  // --- builds ---
  resolveBuildSequence: setting('RESOLVE_BUILD_SEQUENCE', bool(), BUILD_DEFAULTS.resolveBuildSequence, {
    meaning: 'build a session in dependency order',
  }),
  resolveIgnoreFailed: setting('RESOLVE_IGNORE_FAILED', bool(), BUILD_DEFAULTS.resolveIgnoreFailed, {
    meaning: 'build dependents of a failed build anyway',
  }),
  // the original takes 0 too (and then builds nothing): here it counts as 1
  concurrentBuilds: optional(
    'CONCURRENT_BUILDS',
    integer(0).transform((value) => Math.max(1, value)),
    {
      doc: `${BUILD_DEFAULTS.concurrentBuilds}, with ENGINES the sum of their capacities`,
      meaning: 'builds at once, across the whole server (0 counts as 1)',
    },
  ),
  forceClean: setting('FORCE_CLEAN', bool(), BUILD_DEFAULTS.forceClean, { meaning: 'every build is clean' }),
  buildTimeoutMs: optional('BUILD_TIMEOUT', duration(), {
    doc: 'unset (none, as the original)',
    meaning: 'longest build; seconds, or a number with s, m, h or d',
    ours: true,
  }),
  skipFailedOnSchedule: setting('SCHEDULE_SKIP_FAILED', bool(), BUILD_DEFAULTS.skipFailedOnSchedule, {
    meaning: 'scheduled runs skip a package whose last build failed until its source changes',
    ours: true,
  }),
  buildRetentionMs: optional('BUILD_RETENTION', duration(3_650 * 86_400_000), {
    doc: 'unset (forever)',
    meaning: 'builds and logs older than this are removed daily (the newest of each package kept); e.g. 90d',
    ours: true,
  }),
  buildCli: setting('BUILD_CLI', bool(), true, {
    meaning: "add and build the serene-cli package (this server's CLI)",
  }),
  edgeCli: setting('EDGE_CLI', bool(), false, {
    meaning: "no effect (warned about): serene-cli is always this server's own CLI",
  }),

  // --- update gate (docs/update-gate.md) ---
  gateCoolOffMs: setting('GATE_COOL_OFF', coolOff(), OPEN_GATE_POLICY.coolOffMs, {
    doc: '0 (off)',
    meaning: 'an update is built only once the package was unchanged upstream this long (e.g. 2d)',
    ours: true,
  }),
  gateTrust: setting('GATE_TRUST', bool(), OPEN_GATE_POLICY.trust, {
    meaning: 'a new maintainer, co-maintainer or packager holds an update for review',
    ours: true,
  }),
  gateReview: setting('GATE_REVIEW', oneOf(REVIEW_MODES), OPEN_GATE_POLICY.review, {
    meaning: '`diff`: anything beyond a pkgver/pkgrel/checksum bump is held; `all`: every update',
    ours: true,
  }),
  gateBlockedAccounts: setting('GATE_BLOCKED_ACCOUNTS', list(), [] as string[], {
    doc: 'none',
    meaning: 'comma-separated AUR accounts and packagers (name or email) whose updates are held',
    ours: true,
  }),
  gateBlockedPackages: setting('GATE_BLOCKED_PACKAGES', list(), [] as string[], {
    doc: 'none',
    meaning: 'comma-separated packages that cannot be added and whose updates are held',
    ours: true,
  }),

  // --- schedules ---
  schedulingDisabled: setting('SCHEDULING_DISABLED', bool(), false, { meaning: 'never build on schedules' }),
  schedulingDefault: setting('SCHEDULING_DEFAULT', bool(), true, {
    meaning: '`enabled` of newly added packages',
  }),
  schedule: setting('SCHEDULE', cron(), DEFAULT_SCHEDULE, {
    meaning: 'default cron (UTC, seconds first) of packages',
  }),
  scheduleDevel: optional('SCHEDULE_DEVEL', cron(), {
    doc: 'SCHEDULE',
    meaning: 'default cron of devel packages',
  }),
  scheduleImage: setting('SCHEDULE_IMAGE', cron(), DOCKER_RUNNER_DEFAULTS.imageSchedule, {
    meaning: 'cron of runner image pulls',
  }),

  // --- runner ---
  dockerUrl: optional('DOCKER_URL', text(), {
    doc: '/var/run/docker.sock',
    meaning: 'Docker Engine: unix socket path, tcp:// or http(s)://',
  }),
  engines: optional(
    'ENGINES',
    accepts(
      'a JSON array of engines, each {url, name?, arch?, capacity?, labels?, tls?, sshKey?}',
      parseEngines,
    ),
    {
      doc: 'unset (one engine: DOCKER_URL)',
      meaning: 'several Docker Engines, replacing DOCKER_URL (docs/engines.md)',
      ours: true,
    },
  ),
  enginePins: optional('ENGINE_PINS', accepts('pkgbase=label pairs separated by commas', parsePins), {
    doc: 'unset',
    meaning: 'packages built only on engines with that label: `chromium=big,firefox=big`',
    ours: true,
  }),
  runnerImage: setting('RUNNER_IMAGE', text(), DEFAULT_RUNNER_IMAGE_TEMPLATE, {
    meaning: 'runner image; {version} is replaced',
  }),
  runnerPrefix: setting(
    'RUNNER_PREFIX',
    pattern(CONTAINER_NAME, CONTAINER_NAME_EXPECTED),
    DOCKER_RUNNER_DEFAULTS.prefix,
    { meaning: 'build container name prefix' },
  ),
  runnerSrcinfoName: setting(
    'RUNNER_SRCINFO_NAME',
    pattern(CONTAINER_NAME, CONTAINER_NAME_EXPECTED),
    DOCKER_RUNNER_DEFAULTS.srcinfoName,
    { meaning: 'name of the .SRCINFO container' },
  ),
  pruneImages: setting('PRUNE_IMAGES', bool(), DOCKER_RUNNER_DEFAULTS.pruneImages, {
    meaning: 'prune dangling images after a pull',
  }),
  pullImage: setting('PULL_IMAGE', bool(), DOCKER_RUNNER_DEFAULTS.pullImage, {
    meaning: 'pull the runner image at start and on SCHEDULE_IMAGE',
    ours: true,
  }),
  packager: optional('PACKAGER', text(), { meaning: 'PACKAGER of makepkg in runners' }),
  runnerNetwork: optional('RUNNER_NETWORK', text(), {
    doc: "the engine's default",
    meaning: 'network of runner containers (host to reach 127.0.0.1)',
    ours: true,
  }),
  runnerMemoryBytes: setting('RUNNER_MEMORY', bytes(), 0, {
    doc: '0 (none)',
    meaning: 'memory limit of a build; bytes, or with k, m, g',
    ours: true,
  }),
  runnerCpus: setting('RUNNER_CPUS', decimal(0), 0, {
    doc: '0 (all)',
    meaning: 'CPUs of a build, fractions allowed',
    ours: true,
  }),
  runnerPids: setting('RUNNER_PIDS', integer(0), DOCKER_RUNNER_DEFAULTS.pids, {
    meaning: 'processes of a build',
    ours: true,
  }),

  // --- logging ---
  logLevel: optional('LOG_LEVEL', oneOf(LEVELS), {
    doc: 'info',
    meaning: 'error, warn, info or debug; overrides RUST_LOG',
    ours: true,
  }),
  rustLog: optional('RUST_LOG', text(), { meaning: 'honoured for compatibility (serene=info, debug, ...)' }),
  logFormat: setting('LOG_FORMAT', oneOf(['json', 'pretty'] as const), 'json', {
    meaning: 'json (pino lines) or pretty',
    ours: true,
  }),
} as const;

type Parsed = { -readonly [K in keyof typeof SETTINGS]: z.output<(typeof SETTINGS)[K]['schema']> };

/**
 * Everything the host needs to start, read from the environment by {@link readConfig} and frozen.
 * Each field is a variable of {@link SETTINGS} (see its entry for the name, default and meaning),
 * some completed from others (the folders under `DATA_DIR`, `SCHEDULE_DEVEL` from `SCHEDULE`, the
 * log level from `RUST_LOG`).
 */
export type HostConfig = Readonly<
  Omit<
    Parsed,
    | 'rustLog'
    | 'databaseUrl'
    | 'authorizedSecretsFile'
    | 'signKeyFile'
    | 'scheduleDevel'
    | 'logLevel'
    | 'concurrentBuilds'
  > & {
    /** CONCURRENT_BUILDS, or the sum of the engines' capacities with ENGINES, or 5 */
    concurrentBuilds: number;
    databaseUrl: string;
    authorizedSecretsFile: string;
    signKeyFile: string;
    scheduleDevel: string;
    logLevel: LogLevel;
    /** DATA_DIR/sources */
    sourcesDir: string;
    /** DATA_DIR/repository, served at `/<ARCH>/` */
    repositoryDir: string;
    /**
     * the architectures served: `ARCH` first, then each other one an engine of `ENGINES` declares
     * (`arch`), in the order listed (docs/engines.md#architectures)
     */
    arches: readonly string[];
    /** the repository folder of each served architecture: `repositoryDir` for `ARCH`, else DATA_DIR/repository-<arch> */
    repositoryDirs: Readonly<Record<string, string>>;
    /** DATA_DIR/logs: the build log files */
    logsDir: string;
    /** DATA_DIR/work: outputs of running builds */
    workDir: string;
  }
>;

/** One variable as the docs list it. */
export interface VariableDoc {
  name: string;
  default: string;
  meaning: string;
  ours?: boolean;
}

/** Every variable the host reads, in the order of the docs. */
export const VARIABLES: readonly VariableDoc[] = Object.values(SETTINGS).map((variable) => ({
  name: variable.name,
  default: variable.doc,
  meaning: variable.meaning,
  ours: variable.ours,
}));

/** The table of docs/configuration.md, made from {@link SETTINGS}. */
export function configurationTable(): string {
  const cell = (value: string) => value.replace(/\|/g, '\\|');
  return [
    '| variable | from | default | meaning |',
    '| --- | --- | --- | --- |',
    ...VARIABLES.map(
      (v) =>
        `| \`${v.name}\` | ${v.ours ? 'serene' : 'original'} | \`${cell(v.default)}\` | ${cell(v.meaning)} |`,
    ),
  ].join('\n');
}

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
 * Reads and validates the configuration from `env`. Paths are resolved against `cwd`. An empty
 * value counts as unset (a compose file's `VAR=`).
 *
 * @throws InputError naming every invalid variable with the form it accepts; the server does not
 *   start on a configuration it would have to guess at.
 */
export function readConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
  cwd: string = process.cwd(),
): HostConfig {
  const entries = Object.entries(SETTINGS) as [keyof typeof SETTINGS, Variable<unknown>][];
  const input: Record<string, string | undefined> = {};
  for (const [key, variable] of entries) {
    const value = env[variable.name];
    input[key] = value === '' ? undefined : value;
  }
  const result = z.object(Object.fromEntries(entries.map(([key, v]) => [key, v.schema]))).safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const variable = SETTINGS[issue.path[0] as keyof typeof SETTINGS];
      const value = input[issue.path[0] as string] ?? '';
      return `  ${variable.name}=${JSON.stringify(value)} is not valid: expected ${issue.message}`;
    });
    throw new InputError(`invalid configuration:\n${problems.join('\n')}`);
  }
  const parsed = result.data as Parsed;
  if (parsed.engines && parsed.dockerUrl !== undefined) {
    throw new InputError(
      'invalid configuration:\n  DOCKER_URL and ENGINES are both set: ENGINES replaces DOCKER_URL (list that engine in ENGINES)',
    );
  }
  const { rustLog, ...rest } = parsed;
  const dataDir = path.resolve(cwd, parsed.dataDir);
  const inData = (file: string) => path.join(dataDir, file);
  const arches = [
    ...new Set([
      parsed.arch,
      ...(parsed.engines ?? []).flatMap((engine) => (engine.arch === undefined ? [] : [engine.arch])),
    ]),
  ];
  return Object.freeze({
    ...rest,
    dataDir,
    databaseUrl: parsed.databaseUrl ?? inData('serene.db'),
    authorizedSecretsFile: path.resolve(cwd, parsed.authorizedSecretsFile ?? inData('authorized_secrets')),
    signKeyFile: path.resolve(cwd, parsed.signKeyFile ?? inData('sign_key.asc')),
    sourcesDir: inData('sources'),
    repositoryDir: inData('repository'),
    arches,
    repositoryDirs: Object.fromEntries(
      arches.map((arch) => [arch, inData(arch === parsed.arch ? 'repository' : `repository-${arch}`)]),
    ),
    logsDir: inData('logs'),
    workDir: inData('work'),
    // SCHEDULE_DEVEL follows SCHEDULE when unset, as the original
    scheduleDevel: parsed.scheduleDevel ?? parsed.schedule,
    runnerImage: parsed.runnerImage.replaceAll('{version}', SERVER_VERSION),
    logLevel: parsed.logLevel ?? levelFromRustLog(rustLog) ?? 'info',
    concurrentBuilds:
      parsed.concurrentBuilds ??
      (parsed.engines
        ? parsed.engines.reduce((sum, engine) => sum + engine.capacity, 0)
        : BUILD_DEFAULTS.concurrentBuilds),
  });
}
