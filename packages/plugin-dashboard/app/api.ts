/**
 * The dashboard's client of the serene API: the same requests as the `serene` command, the secret
 * in `Authorization` (kept only in this browser), plain-text errors, and server-sent events read
 * from `fetch` (EventSource cannot send the `Authorization` header).
 */
import type {
  BuildInfo,
  BuildState,
  Engine,
  HeldUpdate,
  HeldUpdateReview,
  PackageInfo,
  PackagePeek,
  QueueEntry,
  RecentBuild,
  SereneInfo,
  ServerDetails,
} from './types';

/** The server answered with an error status; `message` is its plain-text body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message || `the server answered ${status}`);
  }
}

const SECRET_KEY = 'serene.secret';

/** The secret of this browser: the tab's (sessionStorage) first, then a remembered one (localStorage). */
export function storedSecret(): string | null {
  return sessionStorage.getItem(SECRET_KEY) ?? localStorage.getItem(SECRET_KEY);
}

/** Keeps the secret for this tab only, or (`remember`) on this device. */
export function storeSecret(secret: string, remember: boolean): void {
  forgetSecret();
  (remember ? localStorage : sessionStorage).setItem(SECRET_KEY, secret);
}

export function forgetSecret(): void {
  sessionStorage.removeItem(SECRET_KEY);
  localStorage.removeItem(SECRET_KEY);
}

/** The API's root: the page is served at `<root>/dashboard/`. */
export const API_ROOT = new URL('..', location.href).href.replace(/\/$/, '');

/** A path segment (a package name) as it goes into a URL. */
export const seg = (name: string): string => encodeURIComponent(name);

/** A client with a secret (or none). */
export class Api {
  constructor(readonly secret: string | null) {}

  private headers(json: boolean): Record<string, string> {
    const headers: Record<string, string> = {};
    if (this.secret !== null) headers.Authorization = this.secret;
    if (json) headers['Content-Type'] = 'application/json';
    return headers;
  }

  async request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(`${API_ROOT}${path}`, {
        method,
        headers: this.headers(body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: 'no-store',
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new ApiError(0, 'cannot reach the server');
    }
    if (!response.ok) throw new ApiError(response.status, (await response.text().catch(() => '')).trim());
    return response;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.request(method, path, body);
    const text = await response.text();
    return (text === '' ? null : JSON.parse(text)) as T;
  }

  info = () => this.json<SereneInfo>('GET', '/');
  whoami = () => this.json<{ name: string }>('GET', '/whoami');
  packages = () => this.json<PackagePeek[]>('GET', '/package/list');
  package = (base: string) => this.json<PackageInfo>('GET', `/package/${seg(base)}`);
  builds = (base: string, count = 50) =>
    this.json<BuildInfo[]>('GET', `/package/${seg(base)}/build?count=${count}`);
  build = (base: string, time: string) =>
    this.json<BuildInfo>('GET', `/package/${seg(base)}/build/${seg(time)}`);
  logs = (base: string, time: string) =>
    this.json<string>('GET', `/package/${seg(base)}/build/${seg(time)}/logs`);
  pkgbuild = (base: string) => this.json<string>('GET', `/package/${seg(base)}/pkgbuild`);
  queue = () => this.json<QueueEntry[]>('GET', '/queue');
  recent = (count: number, before?: string) =>
    this.json<RecentBuild[]>(
      'GET',
      `/builds?count=${count}${before ? `&before=${encodeURIComponent(before)}` : ''}`,
    );
  /** a package's builds with their architecture and engine (`GET /builds?package=`), newest first */
  history = (base: string, count = 50) =>
    this.json<RecentBuild[]>('GET', `/builds?package=${encodeURIComponent(base)}&count=${count}`);
  server = () => this.json<ServerDetails>('GET', '/server');
  engines = () => this.json<Engine[]>('GET', '/engines');
  startBuild = (packages: string[], clean = false) =>
    this.json<null>('POST', '/build', { packages, clean, resolve: true, force: true });
  buildAll = () =>
    this.json<null>('POST', '/build/all', { packages: [], clean: false, resolve: true, force: false });
  cancel = (base: string) => this.json<QueueEntry>('POST', `/package/${seg(base)}/cancel`);
  set = (base: string, key: string, value: unknown) =>
    this.json<null>('POST', `/package/${seg(base)}/set`, { key, value });
  remove = (base: string) => this.json<null>('DELETE', `/package/${seg(base)}`);
  add = (request: unknown) => this.json<PackageInfo[]>('POST', '/package/add', request);
  // the update gate (issue 17): 404 on servers without it
  reviews = () => this.json<HeldUpdate[]>('GET', '/review');
  review = (base: string) => this.json<HeldUpdateReview>('GET', `/review/${seg(base)}`);
  approve = (base: string, revision: string) =>
    this.json<unknown>('POST', `/review/${seg(base)}/approve`, { revision });
  reject = (base: string, revision: string) =>
    this.json<unknown>('POST', `/review/${seg(base)}/reject`, { revision });
}

/** One server-sent event. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/**
 * Reads a `text/event-stream` response as the HTML standard says (CRLF, LF or CR line ends, `data`
 * lines joined, comments skipped) and calls `onMessage` for each message until the stream ends.
 */
export async function readEventStream(
  response: Response,
  onMessage: (message: SseMessage) => void,
): Promise<void> {
  const reader = response.body?.getReader();
  if (!reader) return;
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
    for (;;) {
      const match = /\r\n|\r|\n/.exec(buffer);
      if (!match || (!done && match[0] === '\r' && match.index === buffer.length - 1)) break;
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (data.length > 0) onMessage({ id, event: event || 'message', data: data.join('\n') });
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let text = colon === -1 ? '' : line.slice(colon + 1);
      if (text.startsWith(' ')) text = text.slice(1);
      if (field === 'data') data.push(text);
      else if (field === 'event') event = text;
      else if (field === 'id') id = text;
    }
    if (done) return;
  }
}

/** Whether a build state is final. */
export function isDone(state: BuildState | undefined): boolean {
  return state !== undefined && state.state !== 'pending' && state.state !== 'running';
}
