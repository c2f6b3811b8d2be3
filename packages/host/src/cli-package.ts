/**
 * `BUILD_CLI` (docs/compatibility.md#serene-cli-package): the server keeps its own command line in its repository as the package
 * `serene-cli`, so that `curl -L <server>/<arch>/package/serene-cli` gets users started.
 *
 * The package is made from this server's own CLI (`packages/cli`), with no registry at build time:
 * the CLI bundled into one JavaScript file (esbuild; the image carries the bundle made when it was
 * built), written with a `package.json` and a PKGBUILD into the package's source folder by the
 * `CliSource` kind (the original's source type for this package). The package depends on `nodejs`
 * and installs `/usr/bin/serene`. Its state is the hash of what it is made of, so a server of another
 * version (or other CLI code) rebuilds it at start.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type BuildOrchestrator,
  formatErrorChain,
  type InnerSource,
  InputError,
  type Logger,
  type PackageRecord,
  type PackageScheduler,
  type Part,
  type Serene,
  SereneError,
  type SourceFactory,
  type SourceJson,
  type Store,
  scheduledPackageOf,
} from '@serene/core';

/** The package base of the command line. */
export const CLI_BASE = 'serene-cli';

/** JSON tag of the CLI's source kind (the original's). */
export const CLI_SOURCE_TYPE = 'CliSource';

/** Where the image keeps the bundle made at its build (next to this module in `dist/`). */
export const PREBUILT_CLI_DIR = fileURLToPath(new URL('./serene-cli/', import.meta.url));

/** Drivers knex loads only when asked for a client of theirs: never in the CLI. */
const UNUSED_DRIVERS = [
  'better-sqlite3',
  'tedious',
  'mysql',
  'mariadb',
  'mysql2',
  'oracledb',
  'pg',
  'pg-query-stream',
  'sqlite3',
];

/** The version of this server (`@serene/host`). */
export function serverVersion(): string {
  return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
}

/** The CLI made into files to install: `dist/main.js` (the bundle) and its `package.json`. */
export interface CliBundle {
  /** the CLI's version (what `serene --version` prints) */
  version: string;
  /** `main.js`, one ES module with everything the CLI needs but Node.js itself */
  main: Uint8Array;
  /** `package.json`: the version the CLI reads, and `"type": "module"` */
  packageJson: string;
}

/** The `package.json` installed beside the bundle. */
function bundlePackageJson(version: string): string {
  return `${JSON.stringify({ name: '@serene/cli', version, private: true, type: 'module' }, null, 2)}\n`;
}

/**
 * Bundles `packages/cli` from its TypeScript sources with esbuild (a development dependency: present
 * in a checkout and in the image's build stage, not in the image).
 */
export async function buildCliBundle(
  cliDir = fileURLToPath(new URL('../../cli/', import.meta.url)),
): Promise<CliBundle> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (error) {
    throw new SereneError(
      `cannot make the serene-cli package: there is no bundled CLI in ${PREBUILT_CLI_DIR} and esbuild is not installed to make one`,
      { cause: error },
    );
  }
  let version: string;
  try {
    version = (
      JSON.parse(await fs.readFile(path.join(cliDir, 'package.json'), 'utf8')) as { version: string }
    ).version;
  } catch (error) {
    throw new SereneError(`cannot make the serene-cli package: the CLI's sources are not in ${cliDir}`, {
      cause: error,
    });
  }
  const result = await esbuild.build({
    entryPoints: [path.join(cliDir, 'src', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // the workspaces' TypeScript sources, as the tests run them (no compiled dist/ needed)
    conditions: ['@serene/source'],
    minify: true,
    legalComments: 'none',
    write: false,
    logLevel: 'silent',
    external: UNUSED_DRIVERS,
    // CommonJS dependencies call require(); an ES module has none of its own
    banner: {
      js: "import{createRequire as __sereneCreateRequire}from'node:module';const require=__sereneCreateRequire(import.meta.url);",
    },
  });
  const main = result.outputFiles[0]?.contents;
  if (!main) throw new SereneError('cannot make the serene-cli package: esbuild wrote nothing');
  return { version, main, packageJson: bundlePackageJson(version) };
}

/** Writes a bundle where {@link loadCliBundle} finds it (the image's build does this). */
export async function writeCliBundle(dir = PREBUILT_CLI_DIR, bundle?: CliBundle): Promise<void> {
  const made = bundle ?? (await buildCliBundle());
  await fs.mkdir(path.join(dir, 'dist'), { recursive: true });
  await fs.writeFile(path.join(dir, 'dist', 'main.js'), made.main);
  await fs.writeFile(path.join(dir, 'package.json'), made.packageJson);
}

/** The bundle the image carries (`dir`), or one made now from the CLI's sources. */
export async function loadCliBundle(dir = PREBUILT_CLI_DIR): Promise<CliBundle> {
  try {
    const main = await fs.readFile(path.join(dir, 'dist', 'main.js'));
    const packageJson = await fs.readFile(path.join(dir, 'package.json'), 'utf8');
    const { version } = JSON.parse(packageJson) as { version: string };
    return { version, main, packageJson };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return buildCliBundle();
  }
}

/** The files of the package's source folder. */
export interface CliPackageFiles {
  PKGBUILD: string;
  '.SRCINFO': string;
  'serene.js': Uint8Array;
  'package.json': string;
}

/** The PKGBUILD and `.SRCINFO` (as `makepkg --printsrcinfo` writes it) for `bundle`. */
export function cliPackageFiles(bundle: CliBundle, server = serverVersion()): CliPackageFiles {
  const pkgver = bundle.version.replace(/-/g, '_');
  const sha = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');
  const mainSum = sha(bundle.main);
  const jsonSum = sha(bundle.packageJson);
  const pkgdesc = `Command line of the serene build server (from server ${server})`;
  const pkgbuild = `# serene-cli: the serene command line, added by the server (BUILD_CLI) from its own CLI
# (server ${server}): one JavaScript file for Node.js, next to this PKGBUILD.
pkgname=${CLI_BASE}
pkgver=${pkgver}
pkgrel=1
pkgdesc='${pkgdesc}'
arch=('any')
license=('MIT')
depends=('nodejs')
options=('!strip')
source=('serene.js' 'package.json')
sha256sums=('${mainSum}'
            '${jsonSum}')

package() {
  install -Dm755 "$srcdir/serene.js" "$pkgdir/usr/lib/serene-cli/dist/main.js"
  install -Dm644 "$srcdir/package.json" "$pkgdir/usr/lib/serene-cli/package.json"
  install -d "$pkgdir/usr/bin"
  ln -s ../lib/serene-cli/dist/main.js "$pkgdir/usr/bin/serene"
}
`;
  const srcinfo = `pkgbase = ${CLI_BASE}
\tpkgdesc = ${pkgdesc}
\tpkgver = ${pkgver}
\tpkgrel = 1
\tarch = any
\tlicense = MIT
\tdepends = nodejs
\toptions = !strip
\tsource = serene.js
\tsource = package.json
\tsha256sums = ${mainSum}
\tsha256sums = ${jsonSum}

pkgname = ${CLI_BASE}
`;
  return {
    PKGBUILD: pkgbuild,
    '.SRCINFO': srcinfo,
    'serene.js': bundle.main,
    'package.json': bundle.packageJson,
  };
}

/** The state of the CLI's source: the CLI's version and a hash of every file of the package. */
export function cliState(files: CliPackageFiles, version: string): string {
  const hash = createHash('sha256');
  for (const name of ['PKGBUILD', 'serene.js', 'package.json'] as const)
    hash.update(name).update('\0').update(files[name]);
  return `${version}+${hash.digest('hex').slice(0, 16)}`;
}

/**
 * The `CliSource` kind: writes the package's files into its folder on `initialize` and `update`; its
 * state follows what it wrote (so a changed CLI is a changed source, built again).
 */
export class CliSource implements InnerSource {
  readonly type = CLI_SOURCE_TYPE;
  private current: string;

  constructor(
    state: string,
    private readonly bundle: () => Promise<CliBundle>,
    private readonly server = serverVersion(),
  ) {
    this.current = state;
  }

  describe(): { label: string; url: string | null } {
    return { label: 'serene cli', url: null };
  }

  async initialize(dir: string): Promise<void> {
    await this.write(dir);
  }

  async update(dir: string): Promise<void> {
    await this.write(dir);
  }

  state(): string {
    return this.current;
  }

  async pkgbuild(dir: string): Promise<string> {
    return fs.readFile(path.join(dir, 'PKGBUILD'), 'utf8');
  }

  async srcinfo(dir: string): Promise<string | null> {
    return fs.readFile(path.join(dir, '.SRCINFO'), 'utf8').catch(() => null);
  }

  toJSON(): { type: string; state: string } {
    return { type: CLI_SOURCE_TYPE, state: this.current };
  }

  private async write(dir: string): Promise<void> {
    const bundle = await this.bundle();
    const files = cliPackageFiles(bundle, this.server);
    await fs.mkdir(dir, { recursive: true });
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(dir, name);
      await fs.writeFile(`${file}.tmp`, content);
      await fs.rename(`${file}.tmp`, file);
      // readable by the unprivileged user a runner builds as, whatever the umask
      await fs.chmod(file, 0o644);
    }
    this.current = cliState(files, bundle.version);
  }
}

/**
 * The reader of the `CliSource` kind for `createSourceFactory({ innerKinds })`; the bundle is made
 * (or read) once, when a CLI source is first written.
 */
export function cliSourceKind(
  options: {
    /** @default {@link loadCliBundle} */
    load?: () => Promise<CliBundle>;
    /** the server version the package names @default {@link serverVersion} */
    server?: string;
  } = {},
) {
  const load = options.load ?? (() => loadCliBundle());
  let bundle: Promise<CliBundle> | undefined;
  const once = () => {
    bundle ??= load().catch((error: unknown) => {
      bundle = undefined;
      throw error;
    });
    return bundle;
  };
  return (json: Record<string, unknown>): InnerSource => {
    if (typeof json.state !== 'string') throw new InputError('CliSource needs a string field state');
    return new CliSource(json.state, once, options.server);
  };
}

/** Options of {@link ensureCliPackage}. */
export interface CliPackageOptions {
  store: Store;
  /** a factory that reads the `CliSource` kind (see {@link cliSourceKind}) */
  sources: SourceFactory;
  orchestrator: BuildOrchestrator;
  /** the package scheduler, which a new serene-cli joins */
  scheduler?: Pick<PackageScheduler, 'reschedule'>;
  /** `sources/` of the data folder */
  sourcesDir: string;
  /** `SCHEDULING_DEFAULT`: whether a new serene-cli is scheduled */
  schedulingDefault: boolean;
  /** `EDGE_CLI`: ours has no upstream to follow (the package is always this server's CLI) */
  edge: boolean;
  logger: Logger;
}

/**
 * As the original at start-up: when `serene-cli` exists, it is kept a non-devel package and a normal
 * session runs for it (reason `schedule`: rebuilt when its files changed, i.e. another server
 * version); otherwise it is added, clean, and built (reason `initial`). No Docker is needed to add it
 * (its `.SRCINFO` is written, not generated): without one its build fails, saying so, as any build.
 */
export async function ensureCliPackage(options: CliPackageOptions): Promise<void> {
  const { store, sources, orchestrator, logger } = options;
  if (options.edge) {
    logger.warn("EDGE_CLI has no effect: serene-cli is always made from this server's own CLI");
  }
  const dir = path.join(options.sourcesDir, CLI_BASE);
  const existing = await store.getPackage(CLI_BASE);
  if (existing) {
    const inner = (existing.source as Partial<SourceJson>).inner;
    if (inner?.type !== CLI_SOURCE_TYPE || existing.source.devel === true) {
      // a serene-cli of an earlier version of ours (a raw PKGBUILD that installed from npm), or made devel
      const source = sources.restore(emptyCliSourceJson());
      await source.initialize(dir);
      await store.updatePackage(CLI_BASE, { source: source.toJSON() as Record<string, unknown> });
      logger.info("serene-cli is made from this server's CLI from now on", { state: source.state() });
    }
    await orchestrator.start([CLI_BASE], { reason: 'schedule', resolve: true, clean: false, force: false });
    return;
  }
  const source = sources.restore(emptyCliSourceJson());
  await source.initialize(dir);
  logger.info('adding serene-cli (BUILD_CLI)', { state: source.state() });
  const record: PackageRecord = {
    base: CLI_BASE,
    added: new Date(),
    source: source.toJSON() as Record<string, unknown>,
    srcinfo: null,
    pkgbuild: null,
    enabled: options.schedulingDefault,
    clean: true,
    private: false,
    dependency: false,
    schedule: null,
    prepare: null,
    flags: [],
    builtState: 'init',
    failedState: null,
  };
  await store.putPackage(record);
  options.scheduler?.reschedule(CLI_BASE, scheduledPackageOf(record));
  await orchestrator.start([CLI_BASE], { reason: 'initial', resolve: true, clean: false, force: false });
}

function emptyCliSourceJson(): SourceJson {
  return {
    devel: false,
    srcinfo_override: false,
    srcinfo: null,
    devel_revisions: {},
    inner: { type: CLI_SOURCE_TYPE, state: '' },
  };
}

/** Options of {@link cliPackagePart}. */
export interface CliPackagePartOptions {
  serene: Pick<Serene, 'store' | 'sources' | 'orchestrator' | 'scheduler' | 'logger' | 'settings'>;
  /** `EDGE_CLI` */
  edge: boolean;
}

/**
 * `BUILD_CLI` as a part of serene's lifecycle: {@link ensureCliPackage} at start, after the
 * schedules. A failure is logged; the server serves anyway.
 */
export function cliPackagePart(options: CliPackagePartOptions): Part {
  const { serene, edge } = options;
  return {
    name: 'serene-cli',
    async start() {
      await ensureCliPackage({
        store: serene.store,
        sources: serene.sources,
        orchestrator: serene.orchestrator,
        scheduler: serene.scheduler,
        sourcesDir: serene.settings.sourcesDir,
        schedulingDefault: serene.settings.schedulingDefault ?? true,
        edge,
        logger: serene.logger,
      }).catch((error: unknown) =>
        serene.logger.error('could not add or update serene-cli', { error: formatErrorChain(error) }),
      );
    },
  };
}
