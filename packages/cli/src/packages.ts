/**
 * `serene list`, `serene add`, `serene remove` and `serene build`: the package commands of the
 * original CLI (docs/compatibility.md#cli), against the API.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Command } from 'commander';
import { segment } from './api.js';
import {
  apiAction,
  type BuildMark,
  type ClientContext,
  type ClientTuning,
  checkVersion,
  finishWait,
  serverNow,
  UsageError,
  waitForBuild,
} from './client.js';
import { buildAgo, colourState, stateWord, styleFor, table } from './format.js';
import { type CliIo, EXIT_OK } from './io.js';
import { listRecentBuilds, parseCount } from './queue.js';
import type { PackageAddRequest, PackageBuildRequest, PackageInfo, PackagePeek } from './wire.js';

const WAIT_HELP = `
Exit codes: 0 success, 1 failure (the server refused or could not be reached; with --listen or
--install also when the build did not succeed, or pacman failed), 2 wrong command line.`;

// --- list ---

/** `serene list`: the packages as a table sorted by name; also refreshes the completion cache. */
export async function listPackages(context: ClientContext): Promise<number> {
  const { io, api, paths } = context;
  const warnVersion = checkVersion(context);
  const packages = await api.json<PackagePeek[]>('GET', '/package/list');
  packages.sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
  const style = styleFor(io);
  const now = new Date();
  const rows = packages.map((pkg) => [
    pkg.base,
    pkg.version ?? '-',
    pkg.devel ? 'yes' : 'no',
    pkg.enabled ? 'yes' : 'no',
    colourState(stateWord(pkg.build?.state), style),
    pkg.build ? buildAgo(pkg.build, now) : '-',
  ]);
  if (rows.length === 0) io.stderr('no packages are added yet; add one with `serene add <name>`\n');
  else io.stdout(table(['name', 'version', 'devel', 'enabled', 'build', 'time'], rows, style));
  await warnVersion();
  // shell completions read the names from here; a failure to write it is no failure of the list
  try {
    await fs.mkdir(path.dirname(paths.completions), { recursive: true });
    await fs.writeFile(paths.completions, packages.map((pkg) => pkg.base).join(' '));
  } catch {
    // ignored
  }
  return EXIT_OK;
}

// --- add ---

/** Options of `serene add`. */
export interface AddOptions {
  custom?: boolean;
  pkgbuild?: boolean;
  devel?: boolean;
  replace?: boolean;
  noresolve?: boolean;
  skipbuild?: boolean;
  file?: boolean;
  install?: boolean;
  listen?: boolean;
  quiet?: boolean;
}

/** `serene add <what>`. */
export async function addPackage(
  context: ClientContext,
  what: string,
  options: AddOptions,
  tuning: ClientTuning,
): Promise<number> {
  const { io, api } = context;
  if (options.custom && options.pkgbuild) throw new UsageError('--custom and --pkgbuild exclude each other');
  if (options.devel && !options.custom && !options.pkgbuild) {
    throw new UsageError(
      '--devel applies to --custom and --pkgbuild only (AUR packages ending in -git are devel)',
    );
  }
  const waits = options.install || options.listen;
  if (waits && options.skipbuild)
    throw new UsageError('--install and --listen need a build: drop --skipbuild');
  const value = options.file ? await fs.readFile(path.resolve(io.cwd, what), 'utf8') : what;
  const source: PackageAddRequest['source'] = options.custom
    ? { type: 'git', url: value.trim(), devel: options.devel === true }
    : options.pkgbuild
      ? { type: 'raw', pkgbuild: value, devel: options.devel === true }
      : { type: 'aur', name: value.trim() };
  const request: PackageAddRequest = {
    replace: options.replace === true,
    resolve: !options.noresolve,
    build: !options.skipbuild,
    source,
  };
  let mark: BuildMark | undefined;
  if (waits) {
    // an AUR name is usually its base: a replaced package's last build is then not taken for ours
    const before = source.type === 'aur' && options.replace ? await api.latestBuild(source.name) : undefined;
    mark = { since: await serverNow(api), before: before?.started };
  }
  const added = await api.json<PackageInfo[]>('POST', '/package/add', request);
  const [target, ...dependencies] = added;
  if (!target) throw new UsageError('the server added nothing');
  io.stdout(`added ${target.base} (${target.source})\n`);
  for (const dependency of dependencies) io.stdout(`added ${dependency.base} as a dependency\n`);
  if (!mark) {
    if (request.build) io.stdout(`building now; follow it with: serene info ${target.base} logs -s\n`);
    return EXIT_OK;
  }
  const stream = await api.subscribe(target.base, io.signal);
  const build = await waitForBuild(context, target.base, stream, mark, {
    quiet: options.quiet === true,
    tuning,
  });
  // as the original: --listen wins over --install
  return finishWait(context, target.base, build, options.install === true && !options.listen);
}

// --- remove ---

/** `serene remove <name>`. */
export async function removePackage(context: ClientContext, name: string): Promise<number> {
  await context.api.send('DELETE', `/package/${segment(name)}`);
  context.io.stdout(`removed ${name}\n`);
  return EXIT_OK;
}

// --- build ---

/** Options of `serene build`. */
export interface BuildOptions {
  clean?: boolean;
  noresolve?: boolean;
  gentle?: boolean;
  all?: boolean;
  force?: boolean;
  install?: boolean;
  listen?: boolean;
  quiet?: boolean;
}

/** `serene build <names...>` and `serene build --all`. */
export async function buildPackages(
  context: ClientContext,
  names: readonly string[],
  options: BuildOptions,
  tuning: ClientTuning,
): Promise<number> {
  const { io, api } = context;
  const waits = options.install || options.listen;
  if (options.all && names.length > 0) throw new UsageError('give package names or --all, not both');
  if (!options.all && names.length === 0) throw new UsageError('give the packages to build, or --all');
  // named builds are forced unless --gentle, --all is gentle unless --force
  if (options.force && options.gentle) throw new UsageError('--force and --gentle exclude each other');
  if (waits && (options.all || names.length !== 1)) {
    throw new UsageError('--install and --listen wait for one package: give exactly one name');
  }
  const request: PackageBuildRequest = {
    packages: options.all ? [] : [...names],
    clean: options.clean === true,
    resolve: !options.noresolve,
    force: options.all ? options.force === true : !options.gentle,
  };
  const base = names[0];
  if (!waits || base === undefined) {
    await api.send('POST', options.all ? '/build/all' : '/build', request);
    io.stdout(options.all ? 'building all enabled packages\n' : `building ${names.join(', ')}\n`);
    return EXIT_OK;
  }
  // subscribed before the build is asked for, so that no event of it is missed
  const before = await api.latestBuild(base);
  const mark: BuildMark = { since: await serverNow(api), before: before?.started };
  const stream = await api.subscribe(base, io.signal);
  try {
    await api.send('POST', '/build', request);
  } catch (error) {
    stream.close();
    throw error;
  }
  const build = await waitForBuild(context, base, stream, mark, { quiet: options.quiet === true, tuning });
  return finishWait(context, base, build, options.install === true && !options.listen);
}

// --- registration ---

/** Registers `list`, `add`, `remove` and `build` on `program`. */
export function registerPackageCommands(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
  tuning: ClientTuning,
): void {
  program
    .command('list')
    .description('list the packages of the server (with -b: the newest builds of every package)')
    .option('-b, --builds', 'list the newest builds of every package, newest first')
    .option('-n, --count <n>', 'with --builds: how many (1 to 1000)', '50')
    .action(
      apiAction(io, setExitCode, (context, options: { builds?: boolean; count: string }) =>
        options.builds ? listRecentBuilds(context, parseCount(options.count)) : listPackages(context),
      ),
    );

  program
    .command('add')
    .description('add a package from the AUR (or a git repository, or a PKGBUILD) and build it')
    .argument('<what>', 'AUR package name, git url (-c), or PKGBUILD (-p)')
    .option('-c, --custom', '<what> is the url of a git repository with a PKGBUILD')
    .option('-p, --pkgbuild', '<what> is a PKGBUILD (use -f to read it from a file)')
    .option('-d, --devel', 'the package is a development (VCS) package (with -c or -p)')
    .option('-r, --replace', 'replace the source of a package with the same base')
    .option('-n, --noresolve', 'do not order the first build by dependencies')
    .option('-s, --skipbuild', 'do not build it now')
    .option('-f, --file', '<what> is a file to read it from')
    .option('-i, --install', 'wait for the build and install it with pacman')
    .option('-l, --listen', 'wait for the build and print its logs, without installing')
    .option('-q, --quiet', 'do not print the build logs while waiting')
    .addHelpText('after', WAIT_HELP)
    .action(
      apiAction(io, setExitCode, (context, what: string, options: AddOptions) =>
        addPackage(context, what, options, tuning),
      ),
    );

  program
    .command('remove')
    .description('remove a package, its builds, logs and repository files')
    .argument('<name>', 'package base')
    .action(apiAction(io, setExitCode, (context, name: string) => removePackage(context, name)));

  program
    .command('build')
    .description('build packages now')
    .argument('[names...]', 'package bases')
    .option('-c, --clean', 'build in a new container')
    .option('-n, --noresolve', 'do not order the builds by dependencies')
    .option('-g, --gentle', 'only build when the source changed')
    .option('-a, --all', 'build every enabled package')
    .option('-f, --force', 'with --all: build even unchanged packages')
    .option('-i, --install', 'wait for the build and install it with pacman')
    .option('-l, --listen', 'wait for the build and print its logs, without installing')
    .option('-q, --quiet', 'do not print the build logs while waiting')
    .addHelpText('after', WAIT_HELP)
    .action(
      apiAction(io, setExitCode, (context, names: string[], options: BuildOptions) =>
        buildPackages(context, names, options, tuning),
      ),
    );
}
