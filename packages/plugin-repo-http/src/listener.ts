/**
 * The HTTP server of serene as a part of its lifecycle: it listens when started, and when stopped
 * takes no new connections, ends the application (live log streams) and gives the requests still
 * running a moment before their connections are closed.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Part } from '@serene/core';
import type { RepoHttp } from './app.js';

/** Options of {@link createHttpListener}. */
export interface HttpListenerOptions {
  /** the application served */
  http: RepoHttp;
  /** `PORT`; 0 picks a free one */
  port: number;
  /** `HOST`: the address listened on */
  host: string;
  /**
   * time the requests still running get at the stop before their connections are closed
   * @default 5000
   */
  graceMs?: number;
  /** called with every request before the application sees it (tests record the answers) */
  onRequest?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
}

/** The listening server; see {@link createHttpListener}. */
export interface HttpListener extends Part {
  /** the node server (listening once started) */
  readonly server: http.Server;
  /** The port bound (the actual one for `port: 0`); throws before the start. */
  port(): number;
  /** `http://127.0.0.1:PORT`, once started. */
  url(): string;
}

/** Creates the listener; nothing listens until `start`. */
export function createHttpListener(options: HttpListenerOptions): HttpListener {
  const callback = options.http.app.callback();
  const server = http.createServer(
    options.onRequest
      ? (req, res) => {
          options.onRequest!(req, res);
          void callback(req, res);
        }
      : callback,
  );
  server.keepAliveTimeout = 65_000;
  const port = () => {
    const address = server.address() as AddressInfo | null;
    if (!address) throw new Error('the HTTP server does not listen');
    return address.port;
  };
  let listening = false;
  return {
    name: 'http',
    server,
    port,
    url: () => `http://127.0.0.1:${port()}`,
    async start() {
      await options.http.start();
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(options.port, options.host, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        await options.http.stop();
        throw error;
      }
      listening = true;
    },
    async stop() {
      // no new requests or connections; live log streams end
      const stopped = listening ? new Promise<void>((resolve) => server.close(() => resolve())) : undefined;
      server.closeIdleConnections();
      await options.http.stop();
      // requests still running get a moment, then their connections are closed
      if (stopped) {
        const grace = setTimeout(() => server.closeAllConnections(), options.graceMs ?? 5000);
        await stopped;
        clearTimeout(grace);
      }
    },
  };
}
