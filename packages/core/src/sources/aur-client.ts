/**
 * A client of the AUR RPC v5 (aurweb `/rpc`): `info` for many names in few requests, `search` by
 * provides, with a timeout and retries per request (`AUR_REQUEST_TIMEOUT`, `AUR_REQUEST_RETRIES`).
 *
 * @remarks {@link AurClient.lookup} coalesces the single-name lookups made within a few milliseconds
 * into one batched `info` call: update checks of 1,000 AUR packages that run concurrently cost five
 * requests instead of 1,000.
 */

import { setTimeout as delay } from 'node:timers/promises';
import { createLimiter } from '../concurrency.js';
import type { SourceOperationOptions } from '../contracts/source.js';
import { innermostMessage, SereneError } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';

/** The AUR's own base URL (`AUR_URL`'s default). */
export const DEFAULT_AUR_URL = 'https://aur.archlinux.org';

/** The defaults of the AUR client's request timeout and retries (`AUR_REQUEST_TIMEOUT`, `AUR_REQUEST_RETRIES`). */
export const AUR_REQUEST_DEFAULTS = { timeoutMs: 5000, retries: 1 } as const;

/** One package of an RPC v5 `info` (or `search`) answer, fields named as the AUR names them. */
export interface AurPackage {
  ID?: number;
  Name: string;
  PackageBaseID?: number;
  PackageBase: string;
  /** full version `[epoch:]pkgver-pkgrel` */
  Version: string;
  Description?: string | null;
  URL?: string | null;
  NumVotes?: number;
  Popularity?: number;
  OutOfDate?: number | null;
  Maintainer?: string | null;
  Submitter?: string | null;
  FirstSubmitted?: number;
  LastModified?: number;
  URLPath?: string | null;
  /** the lists are left out by the AUR when empty, and only `info` answers carry them */
  Depends?: string[];
  MakeDepends?: string[];
  CheckDepends?: string[];
  OptDepends?: string[];
  Conflicts?: string[];
  Provides?: string[];
  Replaces?: string[];
  Groups?: string[];
  License?: string[];
  Keywords?: string[];
  CoMaintainers?: string[];
}

/** The RPC answered with an error, an unexpected status or a malformed body, after all attempts. */
export class AurRpcError extends SereneError {
  /** HTTP status of the last attempt, when there was an answer */
  readonly status?: number;

  constructor(message: string, options?: { cause?: unknown; status?: number; code?: string }) {
    super(message, { cause: options?.cause, code: options?.code });
    if (options?.status !== undefined) this.status = options.status;
  }
}

/**
 * The AUR could not be reached: no connection, or no answer within `AUR_REQUEST_TIMEOUT`, after all
 * attempts. The message names the AUR's URL and the cause once (`connect ECONNREFUSED ...`, not
 * `fetch failed`). The HTTP edge answers 502.
 */
export class AurUnreachableError extends AurRpcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_AUR_UNREACHABLE' });
  }
}

/** Options of {@link createAurClient}. */
export interface AurClientOptions {
  /**
   * Base URL of the AUR (`AUR_URL`); RPC, git repositories and package pages hang below it.
   * @default 'https://aur.archlinux.org'
   */
  baseUrl?: string;
  /**
   * Milliseconds one RPC request may take (`AUR_REQUEST_TIMEOUT`).
   * @default 5000
   */
  timeoutMs?: number;
  /**
   * Extra attempts after a failed request (`AUR_REQUEST_RETRIES`): network errors, timeouts, 5xx, 429.
   * @default 1
   */
  retries?: number;
  /**
   * Milliseconds before the first retry, doubled for each further one.
   * @default 250
   */
  retryDelayMs?: number;
  /**
   * Most names in one `info` request; the AUR serves about 200 per request.
   * @default 200
   */
  maxNamesPerRequest?: number;
  /**
   * Longest URL of a GET request; chunks are cut earlier when long names would pass it.
   * @default 8000
   */
  maxUrlLength?: number;
  /**
   * `GET /rpc/?v=5&type=info&arg[]=...` or `POST /rpc/v5/info` with a form body.
   * @default 'GET'
   */
  method?: 'GET' | 'POST';
  /**
   * Requests in flight at once when one call needs several.
   * @default 4
   */
  concurrency?: number;
  /**
   * Milliseconds {@link AurClient.lookup} waits for more names before sending; the wait restarts with
   * every new name but never exceeds `batchMaxWaitMs`.
   * @default 10
   */
  batchWindowMs?: number;
  /**
   * Longest wait of a coalesced lookup.
   * @default 100
   */
  batchMaxWaitMs?: number;
  /**
   * `User-Agent` of the requests.
   * @default 'serene'
   */
  userAgent?: string;
  /**
   * The fetch implementation.
   * @default globalThis.fetch
   */
  fetch?: typeof fetch;
  logger?: Logger;
}

/** Counters of a client, for logs and benchmarks. */
export interface AurClientStats {
  /** HTTP requests sent, retries included */
  requests: number;
  /** names asked for by `info` requests */
  names: number;
}

/** The AUR RPC v5 calls serene makes, and the AUR URLs it derives from the base URL. */
export interface AurClient {
  /** the base URL, without a trailing slash */
  readonly baseUrl: string;
  /** `info` for many names: deduplicated, split into requests, one result per found pkgname. */
  info(names: readonly string[], options?: SourceOperationOptions): Promise<AurPackage[]>;
  /** `info` for one pkgname, coalesced with other lookups made at about the same time. */
  lookup(name: string, options?: SourceOperationOptions): Promise<AurPackage | undefined>;
  /** `search` by provides: the packages that provide (or are named) `name`, without dependency lists. */
  searchProviders(name: string, options?: SourceOperationOptions): Promise<AurPackage[]>;
  /** `<base URL>/<pkgbase>.git`, the package's git repository */
  repositoryUrl(base: string): string;
  /** `<base URL>/pkgbase/<pkgbase>`, the package's page */
  listingUrl(base: string): string;
  stats(): AurClientStats;
}

interface PendingLookup {
  name: string;
  resolve(pkg: AurPackage | undefined): void;
  reject(error: unknown): void;
}

/** Creates an AUR RPC client; nothing is sent until the first call. */
export function createAurClient(options: AurClientOptions = {}): AurClient {
  const baseUrl = (options.baseUrl ?? DEFAULT_AUR_URL).replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? AUR_REQUEST_DEFAULTS.timeoutMs;
  const retries = Math.max(0, options.retries ?? AUR_REQUEST_DEFAULTS.retries);
  const retryDelayMs = options.retryDelayMs ?? 250;
  const maxNames = Math.max(1, options.maxNamesPerRequest ?? 200);
  const maxUrlLength = options.maxUrlLength ?? 8000;
  const method = options.method ?? 'GET';
  const windowMs = options.batchWindowMs ?? 10;
  const maxWaitMs = options.batchMaxWaitMs ?? 100;
  const userAgent = options.userAgent ?? 'serene';
  const logger = options.logger ?? createNoopLogger();
  const limit = createLimiter(options.concurrency ?? 4);
  const stats: AurClientStats = { requests: 0, names: 0 };

  // --- one request, with timeout and retries ---

  async function attempt(
    url: string,
    init: RequestInit,
    signal: AbortSignal | undefined,
  ): Promise<AurPackage[]> {
    const doFetch = options.fetch ?? globalThis.fetch;
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    stats.requests++;
    let response: Response;
    try {
      response = await doFetch(url, { ...init, signal: combined });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted)
        throw new AurUnreachableError(`the AUR at ${baseUrl} did not answer within ${timeoutMs} ms`, {
          cause: error,
        });
      throw new AurUnreachableError(`the AUR at ${baseUrl} cannot be reached: ${innermostMessage(error)}`, {
        cause: error,
      });
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted)
        throw new AurUnreachableError(`the AUR at ${baseUrl} did not answer within ${timeoutMs} ms`, {
          cause: error,
        });
      throw new AurUnreachableError(`the AUR's answer could not be read: ${innermostMessage(error)}`, {
        cause: error,
      });
    }
    if (!response.ok) {
      throw new AurRpcError(`AUR answered ${response.status} ${response.statusText}`.trim(), {
        status: response.status,
      });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new AurRpcError('AUR answered with malformed JSON', { cause: error, status: response.status });
    }
    // an answer, even an error answer, is final: only failures to get one are retried
    return checkBody(body, response.status);
  }

  function retryable(error: unknown): boolean {
    if (!(error instanceof AurRpcError)) return false;
    const status = error.status;
    return status === undefined || status >= 500 || status === 429 || status === 408;
  }

  async function request(
    url: string,
    init: RequestInit,
    signal: AbortSignal | undefined,
  ): Promise<AurPackage[]> {
    for (let tries = 0; ; tries++) {
      try {
        return await attempt(url, init, signal);
      } catch (error) {
        if (tries >= retries || !retryable(error)) throw error;
        logger.debug('AUR request failed, retrying', {
          url,
          error: (error as Error).message,
          attempt: tries + 1,
        });
        await sleep(retryDelayMs * 2 ** tries, signal);
      }
    }
  }

  // --- info ---

  function infoUrl(names: readonly string[]): string {
    return `${baseUrl}/rpc/?v=5&type=info${names.map((name) => `&arg[]=${encodeURIComponent(name)}`).join('')}`;
  }

  /** Splits names into requests of at most `maxNames` names and (GET) `maxUrlLength` characters. */
  function chunk(names: readonly string[]): string[][] {
    const chunks: string[][] = [];
    let current: string[] = [];
    let length = infoUrl([]).length;
    for (const name of names) {
      const added = `&arg[]=${encodeURIComponent(name)}`.length;
      const full = current.length >= maxNames || (method === 'GET' && length + added > maxUrlLength);
      if (full && current.length > 0) {
        chunks.push(current);
        current = [];
        length = infoUrl([]).length;
      }
      current.push(name);
      length += added;
    }
    if (current.length > 0) chunks.push(current);
    return chunks;
  }

  function infoRequest(names: readonly string[], signal: AbortSignal | undefined): Promise<AurPackage[]> {
    const headers = { 'User-Agent': userAgent, Accept: 'application/json' };
    stats.names += names.length;
    if (method === 'POST') {
      const body = new URLSearchParams();
      for (const name of names) body.append('arg[]', name);
      return request(
        `${baseUrl}/rpc/v5/info`,
        {
          method: 'POST',
          headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' },
          body: body.toString(),
        },
        signal,
      );
    }
    return request(infoUrl(names), { method: 'GET', headers }, signal);
  }

  async function info(names: readonly string[], opts: SourceOperationOptions = {}): Promise<AurPackage[]> {
    const unique = [...new Set(names.filter((name) => name !== ''))];
    if (unique.length === 0) return [];
    const parts = await Promise.all(chunk(unique).map((part) => limit(() => infoRequest(part, opts.signal))));
    return parts.flat();
  }

  // --- coalesced lookups ---

  let pending: PendingLookup[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let firstAt = 0;

  function flush(): void {
    timer = undefined;
    const batch = pending;
    pending = [];
    info(batch.map((p) => p.name)).then(
      (packages) => {
        const byName = new Map(packages.map((pkg) => [pkg.Name, pkg]));
        for (const p of batch) p.resolve(byName.get(p.name));
      },
      (error: unknown) => {
        for (const p of batch) p.reject(error);
      },
    );
  }

  function lookup(name: string, opts: SourceOperationOptions = {}): Promise<AurPackage | undefined> {
    opts.signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const signal = opts.signal;
      const onAbort = () => reject(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      pending.push({
        name,
        resolve: (pkg) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(pkg);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      });
      const now = Date.now();
      if (timer === undefined) firstAt = now;
      else clearTimeout(timer);
      const wait = Math.max(0, Math.min(windowMs, firstAt + maxWaitMs - now));
      timer = setTimeout(flush, wait);
    });
  }

  // --- search ---

  async function searchProviders(name: string, opts: SourceOperationOptions = {}): Promise<AurPackage[]> {
    const url = `${baseUrl}/rpc/?v=5&type=search&by=provides&arg=${encodeURIComponent(name)}`;
    const headers = { 'User-Agent': userAgent, Accept: 'application/json' };
    return limit(() => request(url, { method: 'GET', headers }, opts.signal));
  }

  return {
    baseUrl,
    info,
    lookup,
    searchProviders,
    repositoryUrl: (base) => `${baseUrl}/${base}.git`,
    listingUrl: (base) => `${baseUrl}/pkgbase/${base}`,
    stats: () => ({ ...stats }),
  };
}

// --- Internal helpers ---

/** Checks an RPC answer's shape and returns its results; an `error` answer is an {@link AurRpcError}. */
function checkBody(body: unknown, status: number): AurPackage[] {
  if (typeof body !== 'object' || body === null)
    throw new AurRpcError('AUR answer is not a JSON object', { status });
  const record = body as Record<string, unknown>;
  if (record.type === 'error' || typeof record.error === 'string') {
    throw new AurRpcError(`AUR RPC error: ${String(record.error ?? 'unknown error')}`, { status });
  }
  if (!Array.isArray(record.results)) throw new AurRpcError('AUR answer has no results list', { status });
  for (const result of record.results as unknown[]) {
    const pkg = result as Record<string, unknown> | null;
    if (
      typeof pkg !== 'object' ||
      pkg === null ||
      typeof pkg.Name !== 'string' ||
      typeof pkg.PackageBase !== 'string' ||
      typeof pkg.Version !== 'string'
    ) {
      throw new AurRpcError('AUR answer has a result without Name, PackageBase or Version', { status });
    }
  }
  return record.results as AurPackage[];
}

/** Waits `ms`; an abort rejects with the signal's reason, as the request it delays would. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return delay(ms, undefined, { signal }).catch((error: unknown) => {
    throw signal?.aborted ? signal.reason : error;
  });
}
