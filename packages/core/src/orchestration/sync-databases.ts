import * as zlib from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { extract } from 'tar-stream';
import { innermostMessage } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';
import type { Provider } from '../pacman/depend.js';
import { parseDesc } from '../pacman/desc.js';

/** The official repositories the original resolves against. */
export const SYNC_REPOSITORIES = ['core', 'extra', 'multilib'] as const;

/** The mirror the sync databases come from when none is configured (`SYNC_MIRROR`), the original's. */
export const DEFAULT_SYNC_MIRROR = 'https://mirror.init7.net/archlinux/{repo}/os/{arch}';

/** Options of {@link createSyncDatabases}. */
export interface SyncDatabasesOptions {
  /**
   * `SYNC_MIRROR`: a URL with `{repo}` and `{arch}` placeholders; `{repo}.db` is fetched below it.
   * @default 'https://mirror.init7.net/archlinux/{repo}/os/{arch}'
   */
  mirror?: string;
  /** @default ['core', 'extra', 'multilib'] */
  repositories?: readonly string[];
  arch: string;
  /** @default 60000 */
  timeoutMs?: number;
  logger?: Logger;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** The packages of the configured sync databases, refreshed on demand. */
export interface SyncDatabases {
  /** Fetches every database again (conditionally), keeping the last good copy of one that fails. */
  refresh(): Promise<void>;
  /** The providers of every database as last fetched. */
  providers(): Provider[];
}

/** Reads the entries of a pacman sync database (gzip, zstd or plain tar) as providers. */
export async function parseSyncDatabase(data: Uint8Array): Promise<Provider[]> {
  let tar: Uint8Array = data;
  if (data[0] === 0x1f && data[1] === 0x8b) tar = zlib.gunzipSync(data);
  else if (data[0] === 0x28 && data[1] === 0xb5 && data[2] === 0x2f && data[3] === 0xfd)
    tar = zstdDecompress(data);
  const providers: Provider[] = [];
  const parser = extract();
  const done = new Promise<void>((resolve, reject) => {
    parser.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: unknown) => {
        chunks.push(chunk as Buffer);
      });
      stream.on('end', () => {
        if (header.type === 'file' && header.name.endsWith('/desc')) {
          const fields = parseDesc(Buffer.concat(chunks).toString('utf8'));
          const name = fields.get('NAME')?.[0];
          const version = fields.get('VERSION')?.[0];
          if (name && version) providers.push({ name, version, provides: fields.get('PROVIDES') ?? [] });
        }
        next();
      });
      stream.resume();
    });
    parser.on('finish', resolve);
    parser.on('error', reject);
  });
  parser.end(tar);
  await done;
  return providers;
}

/**
 * The sync databases dependency resolution checks against (the original syncs core, extra and
 * multilib from `SYNC_MIRROR`). A database that cannot be fetched is logged and its last good copy
 * kept; resolution never fails because a mirror is down.
 */
export function createSyncDatabases(options: SyncDatabasesOptions): SyncDatabases {
  const mirror = options.mirror ?? DEFAULT_SYNC_MIRROR;
  const repositories = options.repositories ?? SYNC_REPOSITORIES;
  const logger = options.logger ?? createNoopLogger();
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const cache = new Map<string, { modified: string | null; providers: Provider[]; fetched: Date }>();

  const url = (repo: string) =>
    `${mirror.replaceAll('{repo}', repo).replaceAll('{arch}', options.arch).replace(/\/+$/, '')}/${repo}.db`;

  const sync: SyncDatabases = {
    async refresh() {
      await Promise.all(
        repositories.map(async (repo) => {
          const known = cache.get(repo);
          try {
            const response = await fetchImpl(url(repo), {
              headers: known?.modified ? { 'if-modified-since': known.modified } : {},
              signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
            });
            if (response.status === 304 && known) return;
            if (!response.ok) throw new Error(`HTTP ${response.status}`);
            const providers = await parseSyncDatabase(new Uint8Array(await response.arrayBuffer()));
            cache.set(repo, {
              modified: response.headers.get('last-modified'),
              providers,
              fetched: new Date(),
            });
          } catch (error) {
            // the cause once (`getaddrinfo ENOTFOUND ...`, not `fetch failed`), and what it means now
            const meta = { repo, url: url(repo), error: innermostMessage(error) };
            if (known) {
              logger.warn('could not sync database, keeping the last copy', {
                ...meta,
                copyFrom: known.fetched.toISOString(),
              });
            } else {
              logger.warn('could not sync database: dependencies are resolved without its packages', meta);
            }
          }
        }),
      );
    },
    providers() {
      return repositories.flatMap((repo) => cache.get(repo)?.providers ?? []);
    },
  };
  return sync;
}

/**
 * The providers for dependency resolution (the orchestrator's and the package service's
 * `syncProviders`): starts a refresh of `sync` in the background when the last one began more than
 * `refreshMs` ago, and waits only for the first one while nothing has been fetched. A mirror that
 * cannot be reached thus costs at most that one wait, never one per add or build.
 */
export function syncProvidersOf(
  sync: SyncDatabases,
  options: { refreshMs: number; logger?: Logger },
): () => Promise<Provider[]> {
  const logger = options.logger ?? createNoopLogger();
  let startedAt = Number.NEGATIVE_INFINITY;
  let first: Promise<void> | undefined;
  return async () => {
    if (Date.now() - startedAt > options.refreshMs) {
      startedAt = Date.now();
      const refresh = sync
        .refresh()
        .catch((error) =>
          logger.warn('could not refresh the sync databases', { error: innermostMessage(error) }),
        );
      first ??= refresh;
    }
    if (sync.providers().length === 0) await first;
    return sync.providers();
  };
}
