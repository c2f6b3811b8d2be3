import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/*
 * Real packages for tests, built by makepkg (Debian's pacman-package-manager ships it; `npm test`
 * installs it). makepkg refuses to run as root, so as root the build runs as the system user
 * `serene-build` through `runuser`; otherwise as the current user.
 *
 * makepkg is slow to start (it forks hundreds of greps and subshells: 15-40 s a build on a small or
 * busy machine), so builds can be cached: the packages of a build are kept in a folder named after
 * a hash of everything that went into them, and copied from there the next time.
 */

/** The system user makepkg runs as when tests run as root. */
export const BUILD_USER = 'serene-build';

/** Package file extensions makepkg knows (`PKGEXT`). */
export type PkgExt =
  | '.pkg.tar.zst'
  | '.pkg.tar.xz'
  | '.pkg.tar.gz'
  | '.pkg.tar.bz2'
  | '.pkg.tar'
  | (string & {});

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  program: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
) {
  return new Promise<Output>((resolve, reject) => {
    execFile(
      program,
      args,
      { ...options, maxBuffer: 64 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') return reject(error);
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

let buildUser: Promise<string> | undefined;

/**
 * The user makepkg runs as: as root, the system user {@link BUILD_USER} (created, with a home, when
 * missing); otherwise the current user.
 */
export function ensureBuildUser(): Promise<string> {
  buildUser ??= (async () => {
    if (!isRoot()) return os.userInfo().username;
    if ((await run('id', ['-u', BUILD_USER])).code === 0) return BUILD_USER;
    const added = await run('useradd', ['--system', '--create-home', '--shell', '/bin/bash', BUILD_USER]);
    // another process may have created it meanwhile (useradd exits 9 then)
    if (added.code !== 0 && (await run('id', ['-u', BUILD_USER])).code !== 0) {
      throw new Error(`cannot create the build user ${BUILD_USER}: ${added.stderr.trim()}`);
    }
    return BUILD_USER;
  })();
  buildUser.catch(() => {
    buildUser = undefined;
  });
  return buildUser;
}

/** What {@link buildPackage} builds. */
export interface BuildPackageOptions {
  /** the PKGBUILD's text */
  pkgbuild: string;
  /** folder the package files are put into (created if missing); default: a new temp folder */
  dir?: string;
  /** files beside the PKGBUILD (install scriptlets, local sources): name -> contents */
  extraFiles?: Record<string, string>;
  /**
   * Environment for makepkg, over the defaults (`PKGEXT`, `PACKAGER`, `SOURCE_DATE_EPOCH=1700000000`,
   * `LANG=C.UTF-8`).
   */
  env?: Record<string, string>;
  /** @default '.pkg.tar.zst' (an `env.PKGEXT` wins) */
  pkgext?: PkgExt;
  /** reuse the packages of an earlier build of the same inputs kept in this folder */
  cacheDir?: string;
  /** @default 900000 (15 min) */
  timeoutMs?: number;
}

/** Options of the makepkg.conf every build uses: no stripping, no debug packages, nothing tidied away. */
const CONF_OVERRIDES = `
[[ -n $CARCH ]] || CARCH=$(uname -m)
[[ -n $CHOST ]] || CHOST="$CARCH-pc-linux-gnu"
BUILDENV=(!distcc !color !ccache !check !sign)
OPTIONS=(!strip docs libtool staticlibs emptydirs !zipman !purge !debug !lto)
INTEGRITY_CHECK=(sha256)
`;

const DEFAULT_ENV: Record<string, string> = {
  PACKAGER: 'Serene Tests <tests@serene.invalid>',
  SOURCE_DATE_EPOCH: '1700000000',
  LANG: 'C.UTF-8',
};

let makepkgIdentity: Promise<string> | undefined;

/** What else decides a build's output: makepkg's version and the system makepkg.conf. */
function identity(): Promise<string> {
  makepkgIdentity ??= (async () => {
    const version = await run('makepkg', ['--version']).catch(() => ({ stdout: 'unknown' }));
    const conf = await fs.readFile('/etc/makepkg.conf', 'utf8').catch(() => '');
    return `${version.stdout.split('\n')[0]}\n${conf}`;
  })();
  return makepkgIdentity;
}

async function chownTree(dir: string, user: string): Promise<void> {
  if (!isRoot() || user === 'root') return;
  const result = await run('chown', ['-R', `${user}:`, dir]);
  if (result.code !== 0) throw new Error(`chown ${dir}: ${result.stderr.trim()}`);
}

/** Runs makepkg in `dir` as `user`; resolves with its output, rejects with its tail on failure. */
function makepkg(dir: string, user: string, env: Record<string, string>, timeoutMs: number): Promise<string> {
  const makepkgArgs = [
    '-f',
    '--nodeps',
    '--noconfirm',
    '--nocolor',
    '--config',
    path.join(dir, 'makepkg.conf'),
  ];
  const envArgs = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  const [program, args] =
    isRoot() && user !== 'root'
      ? ['runuser', ['-u', user, '--', 'env', '-i', ...envArgs, 'makepkg', ...makepkgArgs]]
      : ['env', ['-i', ...envArgs, 'makepkg', ...makepkgArgs]];
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (data: Buffer) => {
      output += data.toString('utf8');
      if (output.length > 1 << 20) output = output.slice(-(1 << 19));
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run makepkg: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(output);
      const tail = output.trim().split('\n').slice(-40).join('\n');
      reject(new Error(`makepkg failed (${signal ?? `exit code ${code}`}) in ${dir}:\n${tail}`));
    });
  });
}

/** Runs the build proper in a fresh folder owned by the build user; returns the package files there. */
async function buildIn(
  options: BuildPackageOptions,
  env: Record<string, string>,
): Promise<{ dir: string; files: string[] }> {
  const user = await ensureBuildUser();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-makepkg-'));
  try {
    await fs.writeFile(path.join(dir, 'PKGBUILD'), options.pkgbuild);
    for (const [name, contents] of Object.entries(options.extraFiles ?? {})) {
      if (name.includes('/') || name === '..' || name === '.') throw new Error(`bad extra file name ${name}`);
      await fs.writeFile(path.join(dir, name), contents);
    }
    const conf = existsSync('/etc/makepkg.conf') ? 'source /etc/makepkg.conf\n' : '';
    await fs.writeFile(path.join(dir, 'makepkg.conf'), conf + CONF_OVERRIDES);
    const out = path.join(dir, 'out');
    await fs.mkdir(out);
    await chownTree(dir, user);
    const buildEnv = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: dir,
      USER: user,
      LOGNAME: user,
      PKGDEST: out,
      SRCDEST: dir,
      SRCPKGDEST: out,
      LOGDEST: dir,
      BUILDDIR: dir,
      ...env,
    };
    await makepkg(dir, user, buildEnv, options.timeoutMs ?? 900_000);
    const pkgext = env.PKGEXT!;
    const files = (await fs.readdir(out))
      .filter((name) => name.endsWith(pkgext))
      .sort()
      .map((name) => path.join(out, name));
    if (files.length === 0) throw new Error(`makepkg built no ${pkgext} file in ${out}`);
    return { dir, files };
  } catch (error) {
    await fs.rm(dir, { recursive: true, force: true });
    throw error;
  }
}

async function copyInto(files: readonly string[], dir: string): Promise<string[]> {
  await fs.mkdir(dir, { recursive: true });
  const copied: string[] = [];
  for (const file of files) {
    const target = path.resolve(dir, path.basename(file));
    await fs.copyFile(file, target);
    copied.push(target);
  }
  return copied;
}

/**
 * Builds once per cache key, across processes (a lock folder marks a build in progress); returns the
 * package files and what to remove once they are copied.
 */
async function cachedBuild(
  options: BuildPackageOptions,
  env: Record<string, string>,
  cacheDir: string,
): Promise<{ files: string[]; scratch?: string }> {
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        v: 1,
        pkgbuild: options.pkgbuild,
        extraFiles: Object.entries(options.extraFiles ?? {}).sort(),
        env: Object.entries(env).sort(),
        conf: CONF_OVERRIDES,
        identity: await identity(),
      }),
    )
    .digest('hex')
    .slice(0, 32);
  const entry = path.join(cacheDir, key);
  const lock = `${entry}.lock`;
  for (;;) {
    const cached = await fs.readdir(entry).catch(() => undefined);
    if (cached !== undefined) return { files: cached.sort().map((name) => path.join(entry, name)) };
    try {
      await fs.mkdir(cacheDir, { recursive: true });
      await fs.mkdir(lock);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        // a cache this user cannot write to (another user's): build without it
        const built = await buildIn(options, env);
        return { files: built.files, scratch: built.dir };
      }
      // someone else builds it: wait, unless their lock is stale (a crashed run)
      const stat = await fs.stat(lock).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > (options.timeoutMs ?? 900_000) + 60_000) {
        await fs.rm(lock, { recursive: true, force: true });
      }
      await sleep(500);
      continue;
    }
    try {
      const built = await buildIn(options, env);
      try {
        const staging = `${entry}.tmp-${process.pid}`;
        await fs.rm(staging, { recursive: true, force: true });
        await copyInto(built.files, staging);
        await fs.rename(staging, entry).catch(async (error: unknown) => {
          await fs.rm(staging, { recursive: true, force: true });
          if (!existsSync(entry)) throw error;
        });
      } finally {
        await fs.rm(built.dir, { recursive: true, force: true });
      }
    } finally {
      await fs.rm(lock, { recursive: true, force: true });
    }
  }
}

/**
 * Builds a PKGBUILD with the real makepkg (`makepkg -f --nodeps --noconfirm`, as {@link BUILD_USER}
 * when root) and returns the absolute paths of the package files, sorted. Split packages give
 * several files.
 */
export async function buildPackage(options: BuildPackageOptions): Promise<string[]> {
  const env: Record<string, string> = {
    ...DEFAULT_ENV,
    PKGEXT: options.pkgext ?? '.pkg.tar.zst',
    ...options.env,
  };
  const dir = options.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'serene-packages-')));
  const built =
    options.cacheDir !== undefined
      ? await cachedBuild(options, env, options.cacheDir)
      : await buildIn(options, env).then((result) => ({ files: result.files, scratch: result.dir }));
  try {
    return await copyInto(built.files, dir);
  } finally {
    if (built.scratch) await fs.rm(built.scratch, { recursive: true, force: true });
  }
}

/** A ready PKGBUILD and the files it needs beside it. */
export interface PkgbuildFixture {
  pkgbuild: string;
  extraFiles?: Record<string, string>;
  /** the package files it yields, without the extension */
  packages: string[];
}

const SPLIT_INSTALL = `post_install() {
  echo "serene-fixture-core $1 installed"
}

post_upgrade() {
  echo "serene-fixture-core upgraded from $2 to $1"
}

pre_remove() {
  echo "removing serene-fixture-core $1"
}
`;

/**
 * A split package covering what a database entry can hold: pkgbase with two members that differ in
 * arch (`x86_64`, `any`), depends, licenses and groups; an epoch; optdepends with descriptions;
 * versioned provides, conflicts and replaces; backup; an install scriptlet; makedepends and
 * checkdepends; a unicode description with whitespace runs (repo-add collapses them); hundreds of
 * files in nested folders, a symlink, a hard link, an empty folder, and names with spaces,
 * backslashes and non-ASCII characters.
 */
const SPLIT_PKGBUILD = String.raw`# Maintainer: Serene Tests <tests@serene.invalid>
pkgbase=serene-fixture
pkgname=('serene-fixture-core' 'serene-fixture-doc')
epoch=1
pkgver=2.3.4
pkgrel=5
pkgdesc='Sérène fixture — ünïcode   test ✓ 日本語'
arch=('x86_64')
url='https://example.invalid/serene'
license=('MIT' 'custom:Serene Test License')
makedepends=('make>=4')
checkdepends=('bats')

package_serene-fixture-core() {
  pkgdesc='Sérène core — ünïcode   test package ✓ 日本語'
  depends=('glibc>=2.30' 'zlib' 'sh')
  optdepends=('python: for the helper scripts' 'perl>=5.30: legacy tools')
  provides=('serene-core-api=2' 'libserene.so=1-64')
  conflicts=('serene-old<1.0' 'serene-core-git')
  replaces=('serene-legacy<=0.9')
  groups=('serene-tests' 'serene-all')
  backup=('etc/serene/core.conf')
  install=serene-fixture-core.install

  install -d "$pkgdir/etc/serene" "$pkgdir/usr/bin" "$pkgdir/var/lib/serene/empty"
  printf 'answer=42\n' > "$pkgdir/etc/serene/core.conf"
  printf '#!/bin/sh\necho serene\n' > "$pkgdir/usr/bin/serene"
  chmod 755 "$pkgdir/usr/bin/serene"
  ln -s serene "$pkgdir/usr/bin/serene-link"
  local data="$pkgdir/usr/share/serene-fixture/data"
  local d f
  for d in $(seq -w 0 11); do
    install -d "$data/group-$d"
    for f in $(seq -w 0 24); do
      printf 'file %s/%s of serene-fixture\n' "$d" "$f" > "$data/group-$d/file-$f.txt"
    done
  done
  ln "$data/group-00/file-00.txt" "$data/hardlink.txt"
  local odd="$pkgdir/usr/share/serene-fixture/names"
  install -d "$odd"
  printf 'x\n' > "$odd/with space.txt"
  printf 'x\n' > "$odd/ünïcödé — 日本.txt"
  printf 'x\n' > "$odd/back\\slash.txt"
  printf 'x\n' > "$odd/.hidden-but-listed"
  printf 'x\n' > "$odd/$(printf 'very-long-name-%.0s' {1..8}).txt"
}

package_serene-fixture-doc() {
  pkgdesc='Documentation for serene-fixture'
  arch=('any')
  license=('CC-BY-4.0')
  depends=("serene-fixture-core=$epoch:$pkgver-$pkgrel")
  groups=('serene-tests')

  install -d "$pkgdir/usr/share/doc/serene-fixture"
  printf 'Serene fixture documentation.\n' > "$pkgdir/usr/share/doc/serene-fixture/README"
  printf '%s\n' 'second page' > "$pkgdir/usr/share/doc/serene-fixture/page-2.txt"
}
`;

const MINIMAL_PKGBUILD = `pkgname=serene-fixture-minimal
pkgver=0.1
pkgrel=1
pkgdesc='  a   minimal   package  '
arch=('any')
license=('GPL-3.0-or-later')

package() {
  install -d "$pkgdir/usr/share/serene-fixture-minimal"
  printf 'minimal\\n' > "$pkgdir/usr/share/serene-fixture-minimal/README"
}
`;

/** The fixtures of {@link buildFixtureSet}. */
export const FIXTURES = {
  split: {
    pkgbuild: SPLIT_PKGBUILD,
    extraFiles: { 'serene-fixture-core.install': SPLIT_INSTALL },
    packages: ['serene-fixture-core-1:2.3.4-5-x86_64', 'serene-fixture-doc-1:2.3.4-5-any'],
  },
  minimal: {
    pkgbuild: MINIMAL_PKGBUILD,
    packages: ['serene-fixture-minimal-0.1-1-any'],
  },
} as const satisfies Record<string, PkgbuildFixture>;

/** The PKGBUILD texts of {@link FIXTURES}. */
export const pkgbuilds: { readonly [K in keyof typeof FIXTURES]: string } = {
  split: SPLIT_PKGBUILD,
  minimal: MINIMAL_PKGBUILD,
};

/**
 * Where fixture builds are cached: `$SERENE_MAKEPKG_CACHE`, or a folder in the temp folder;
 * `undefined` (no cache) when that variable is `0` or `off`.
 */
export function defaultCacheDir(): string | undefined {
  const configured = process.env.SERENE_MAKEPKG_CACHE;
  if (configured === '0' || configured === 'off') return undefined;
  return configured || path.join(os.tmpdir(), 'serene-makepkg-cache');
}

/** Builds one of {@link FIXTURES} (cached in {@link defaultCacheDir} unless told otherwise). */
export function buildFixture(
  name: keyof typeof FIXTURES,
  options: Omit<BuildPackageOptions, 'pkgbuild' | 'extraFiles'> = {},
): Promise<string[]> {
  const fixture: PkgbuildFixture = FIXTURES[name];
  return buildPackage({
    cacheDir: defaultCacheDir(),
    ...options,
    pkgbuild: fixture.pkgbuild,
    extraFiles: fixture.extraFiles,
  });
}

/**
 * Builds every fixture (three packages: a split pair and a minimal one) into `dir` and returns their
 * paths, sorted. Built once per machine and inputs (see {@link defaultCacheDir}); the files in `dir`
 * are fresh copies.
 */
export async function buildFixtureSet(
  dir: string,
  options: { pkgext?: PkgExt; cacheDir?: string } = {},
): Promise<string[]> {
  const names = Object.keys(FIXTURES) as (keyof typeof FIXTURES)[];
  const built = await Promise.all(
    names.map((name) =>
      buildFixture(name, { dir, pkgext: options.pkgext, cacheDir: options.cacheDir ?? defaultCacheDir() }),
    ),
  );
  return built.flat().sort();
}
