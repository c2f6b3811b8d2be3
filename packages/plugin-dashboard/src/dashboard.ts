/**
 * Serves the bundled dashboard (dist/public: index.html, app.js, app.css, icon.svg) under a base
 * path, from memory: the files are read once, compressed once, and answered with an ETag, so a
 * reload costs a 304. See docs/adr/0010-dashboard.md for why it is served this way.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Middleware } from 'koa';

/** Where `npm run build` puts the bundled app: dist/public of this package. */
export const DEFAULT_ASSETS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'dist',
  'public',
);

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /**
   * The path the dashboard is served at (no trailing slash).
   * @default '/dashboard'
   */
  basePath?: string;
  /**
   * The folder of the bundled app.
   * @default {@link DEFAULT_ASSETS_DIR}
   */
  assetsDir?: string;
}

/**
 * What {@link createDashboard} returns: an HTTP plugin of `@serene/plugin-repo-http`
 * (`RepoHttpOptions.plugins`), started and stopped with the server.
 */
export interface Dashboard {
  readonly name: 'dashboard';
  /** the path it is served at */
  readonly basePath: string;
  /** a Koa middleware: answers the dashboard's paths, passes every other request on */
  readonly routes: Middleware;
  /** Reads the bundled app into memory (a missing bundle is no failure: the page answers 503). */
  start(): Promise<void>;
  /** Drops the files. */
  stop(): void;
  /** the names of the files it serves (empty before the start, or when the app was not built) */
  readonly files: readonly string[];
}

interface Asset {
  body: Buffer;
  gzip: Buffer | undefined;
  type: string;
  etag: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The page may load and connect to its own origin only: no CDN, no inline script, no framing.
 * Inline `style` attributes are allowed (the chart and the virtual list set sizes).
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};

/** Message of a dashboard whose app was not bundled. */
export const NOT_BUILT_MESSAGE =
  'the dashboard is not built: run `npm run build` (it bundles packages/plugin-dashboard/app)';

async function loadAssets(dir: string): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return assets;
    throw error;
  }
  for (const name of names) {
    const type = TYPES[path.extname(name)];
    if (!type) continue;
    const body = await fs.readFile(path.join(dir, name));
    const gzip = body.length > 1024 ? gzipSync(body, { level: 9 }) : undefined;
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    assets.set(name, { body, gzip, type, etag });
  }
  return assets;
}

/**
 * Creates the dashboard; its start reads the bundled app into memory. Serves `<basePath>/`
 * (index.html), `<basePath>/<file>`, and redirects `<basePath>` to `<basePath>/`. Without a bundle
 * it answers 503 with {@link NOT_BUILT_MESSAGE} (the rest of the server works as before).
 */
export function createDashboard(options: DashboardOptions = {}): Dashboard {
  const basePath = (options.basePath ?? '/dashboard').replace(/\/+$/, '');
  if (!/^\/[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*$/.test(basePath)) {
    throw new TypeError(`dashboard base path must be like /dashboard, not '${options.basePath}'`);
  }
  let assets = new Map<string, Asset>();
  const prefix = `${basePath}/`;

  const middleware: Middleware = async (ctx, next) => {
    const pathname = ctx.path;
    if (pathname !== basePath && !pathname.startsWith(prefix)) return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD');
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = 'method not allowed';
      return;
    }
    if (pathname === basePath) {
      ctx.status = 301;
      ctx.redirect(prefix);
      return;
    }
    if (assets.size === 0) {
      ctx.status = 503;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = NOT_BUILT_MESSAGE;
      return;
    }
    const name = pathname === prefix ? 'index.html' : pathname.slice(prefix.length);
    const asset = assets.get(name);
    if (!asset) {
      ctx.status = 404;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = `no such file in the dashboard: ${name.slice(0, 100)}`;
      return;
    }
    ctx.set(SECURITY_HEADERS);
    ctx.set('ETag', asset.etag);
    // revalidated on every load (a 304 when unchanged), so an upgraded server serves its new app
    ctx.set('Cache-Control', 'no-cache');
    ctx.set('Vary', 'Accept-Encoding');
    ctx.type = asset.type;
    const match = ctx.get('If-None-Match');
    if (match?.split(',').some((tag) => tag.trim() === asset.etag)) {
      ctx.status = 304;
      return;
    }
    ctx.status = 200;
    if (asset.gzip && ctx.acceptsEncodings('gzip', 'identity') === 'gzip') {
      ctx.set('Content-Encoding', 'gzip');
      ctx.body = asset.gzip;
    } else {
      ctx.body = asset.body;
    }
  };

  return {
    name: 'dashboard',
    basePath,
    routes: middleware,
    async start() {
      assets = await loadAssets(options.assetsDir ?? DEFAULT_ASSETS_DIR);
    },
    stop() {
      assets = new Map();
    },
    get files() {
      return [...assets.keys()].sort();
    },
  };
}
