/**
 * The HTTP client of the serene API (docs/compatibility.md#routes), over node's `fetch`: the raw secret in
 * `Authorization` on every request, plain-text error bodies, and the live event stream (SSE).
 */
import type { BuildInfo, BuildState, LiveEvent } from './wire.js';

/** The server answered with an error status; `body` is its plain-text message. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    // as the original CLI: the server's message, and the status
    super(`${body.trim() || 'no message'} (${status})`);
  }
}

/** The server could not be reached (refused, DNS, TLS, aborted connection). */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';
}

/** An open live event stream of one package. */
export interface EventStream extends AsyncIterable<LiveEvent> {
  /** ends the stream (the iteration then ends) */
  close(): void;
}

/** One message of an event stream, before its data is interpreted. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/** A client of one serene server. */
export class ApiClient {
  /**
   * @param url - the server, without a trailing slash
   * @param secret - sent as the whole `Authorization` header value
   */
  constructor(
    readonly url: string,
    private readonly secret: string,
  ) {}

  /** Sends a request; resolves with a successful response, rejects with ApiError or ConnectionError. */
  async request(method: string, pathname: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { Authorization: this.secret };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.url}${pathname}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new ConnectionError(`cannot reach the server at ${this.url}: ${describeFetchError(error)}`, {
        cause: error,
      });
    }
    if (!response.ok) throw new ApiError(response.status, await response.text().catch(() => ''));
    return response;
  }

  /** A request whose answer is JSON. */
  async json<T>(method: string, pathname: string, body?: unknown): Promise<T> {
    const response = await this.request(method, pathname, body);
    const text = await response.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ConnectionError(
        `the server at ${this.url} answered ${pathname} with something that is not JSON`,
      );
    }
  }

  /** A request whose answer is empty. */
  async send(method: string, pathname: string, body?: unknown): Promise<void> {
    const response = await this.request(method, pathname, body);
    await response.arrayBuffer();
  }

  /** The newest build of `base`, or undefined when it has none. */
  async latestBuild(base: string): Promise<BuildInfo | undefined> {
    try {
      return await this.json<BuildInfo>('GET', `/package/${segment(base)}/build/latest`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  /**
   * Opens the live event stream of `base`; resolves once the server has accepted it, so that
   * nothing that happens afterwards is missed.
   */
  async subscribe(base: string, signal?: AbortSignal): Promise<EventStream> {
    const controller = new AbortController();
    const abort = () => controller.abort();
    signal?.addEventListener('abort', abort, { once: true });
    let response: Response;
    try {
      response = await this.request(
        'GET',
        `/package/${segment(base)}/build/logs/subscribe`,
        undefined,
        controller.signal,
      );
    } catch (error) {
      signal?.removeEventListener('abort', abort);
      throw error;
    }
    const body = response.body;
    const close = () => {
      signal?.removeEventListener('abort', abort);
      controller.abort();
    };
    return {
      close,
      async *[Symbol.asyncIterator]() {
        if (!body) return;
        const reader = body.getReader();
        const chunks = async function* () {
          try {
            for (;;) {
              const { done, value } = await reader.read();
              if (done) return;
              yield value;
            }
          } catch (error) {
            // our own close (or the caller's signal) ends the stream quietly
            if (controller.signal.aborted) return;
            throw new ConnectionError(`the live stream was interrupted: ${describeFetchError(error)}`, {
              cause: error,
            });
          }
        };
        try {
          for await (const message of parseEventStream(chunks())) {
            const event = toLiveEvent(message);
            if (event) yield event;
          }
        } finally {
          close();
        }
      },
    };
  }
}

/** A path segment (a package name) as it goes into a URL. */
export function segment(name: string): string {
  return encodeURIComponent(name);
}

/**
 * Parses a `text/event-stream` body into messages, as the HTML standard says: lines end in CRLF, LF
 * or CR; `field: value` with one optional space; `data` lines join with newlines; a blank line
 * ends a message; lines starting with a colon are comments.
 */
export async function* parseEventStream(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  const take = function* (text: string, final: boolean): Generator<SseMessage> {
    buffer += text;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(buffer);
      // a lone CR at the end may be the first half of a CRLF: wait for more
      if (!match || (!final && match[0] === '\r' && match.index === buffer.length - 1)) return;
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (data.length > 0) yield { id, event: event || 'message', data: data.join('\n') };
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id') id = value;
    }
  };
  for await (const chunk of chunks) yield* take(decoder.decode(chunk, { stream: true }), false);
  yield* take(decoder.decode(), true);
}

/** A message as a live event; undefined for messages the client does not know (as the original). */
function toLiveEvent(message: SseMessage): LiveEvent | undefined {
  let data: unknown;
  try {
    data = JSON.parse(message.data);
  } catch {
    return undefined;
  }
  if (message.event === 'log' && typeof data === 'string') return { event: 'log', data };
  if (message.event === 'ping') return { event: 'ping', data: null };
  if (
    message.event === 'change' &&
    typeof data === 'object' &&
    data !== null &&
    typeof (data as { state?: unknown }).state === 'string'
  ) {
    return { event: 'change', data: data as BuildState };
  }
  return undefined;
}

/** `fetch failed` says nothing: the cause (ECONNREFUSED, ENOTFOUND, ...) does. */
function describeFetchError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  while (current instanceof Error && parts.length < 4) {
    const code = (current as NodeJS.ErrnoException).code;
    if (current.message !== 'fetch failed') parts.push(current.message || code || current.name);
    current = current.cause;
  }
  if (current !== undefined && !(current instanceof Error)) parts.push(String(current));
  return parts.join(': ') || 'fetch failed';
}
