/**
 * `BUILD_CLI` (reference 4.5): the server keeps the `serene` command line in its own repository as
 * the package `serene-cli`. Ours is the `@serene/cli` npm package, so the package is a raw PKGBUILD
 * that installs it with npm (Arch's Node.js packaging guideline): the tagged version, or the latest
 * one with `EDGE_CLI` (then a devel package).
 */
import { createRequire } from 'node:module';
import {
  type BuildOrchestrator,
  formatErrorChain,
  type Logger,
  type PackageService,
  type Part,
  type Serene,
  type Store,
} from '@serene/core';

/** The package base of the command line. */
export const CLI_BASE = 'serene-cli';

/** The version of `@serene/cli` that belongs to this server. */
export function cliVersion(): string {
  return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
}

/** The PKGBUILD of `serene-cli` for `version`, or for the latest release with `edge`. */
export function cliPkgbuild(version: string, edge: boolean): string {
  const spec = edge ? '@serene/cli@latest' : `@serene/cli@${version}`;
  return `# serene-cli: the serene command line, added by the server (BUILD_CLI)
pkgname=${CLI_BASE}
pkgver=${version.replace(/-/g, '_')}
pkgrel=1
pkgdesc='Command line of the serene build server${edge ? ' (latest release)' : ''}'
arch=('any')
url='https://www.npmjs.com/package/@serene/cli'
license=('MIT')
depends=('nodejs')
makedepends=('npm')
options=('!strip')
${
  edge
    ? `
pkgver() {
  npm view '${spec}' version | tr '-' '_'
}
`
    : ''
}
package() {
  npm install --global --no-audit --no-fund --cache "$srcdir/npm-cache" --prefix "$pkgdir/usr" '${spec}'
  find "$pkgdir/usr" -type d -exec chmod 755 {} +
  chown -R root:root "$pkgdir" 2>/dev/null || true
}
`;
}

/** Options of {@link ensureCliPackage}. */
export interface CliPackageOptions {
  service: PackageService;
  store: Store;
  orchestrator: BuildOrchestrator;
  edge: boolean;
  logger: Logger;
}

/**
 * As the original at start-up: when `serene-cli` exists, it is kept a non-devel package (unless
 * edge) and a normal session runs for it (reason `schedule`); otherwise it is added, made clean,
 * and built (reason `initial`).
 */
export async function ensureCliPackage(options: CliPackageOptions): Promise<void> {
  const { service, store, orchestrator, edge, logger } = options;
  const existing = await store.getPackage(CLI_BASE);
  if (existing) {
    if (!edge && existing.source.devel === true) await service.set(CLI_BASE, { key: 'devel', value: false });
    await orchestrator.start([CLI_BASE], { reason: 'schedule', resolve: true, clean: false, force: false });
    return;
  }
  logger.info('adding serene-cli (BUILD_CLI)', { edge });
  await service.add({
    source: { type: 'raw', pkgbuild: cliPkgbuild(cliVersion(), edge), devel: edge },
    replace: false,
    build: false,
  });
  await service.set(CLI_BASE, { key: 'clean', value: true });
  await orchestrator.start([CLI_BASE], { reason: 'initial', resolve: true, clean: false, force: false });
}

/** Options of {@link cliPackagePart}. */
export interface CliPackagePartOptions {
  serene: Pick<Serene, 'service' | 'store' | 'orchestrator' | 'logger'>;
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
      await ensureCliPackage({ ...serene, edge }).catch((error) =>
        serene.logger.error('could not add or update serene-cli', { error: formatErrorChain(error) }),
      );
    },
  };
}
