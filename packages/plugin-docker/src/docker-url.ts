import { InputError } from '@serene/core';

/** The Docker Engine socket used when no URL is given. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** Where a Docker Engine listens, as parsed from a `DOCKER_URL`. */
export type DockerEndpoint =
  | { kind: 'unix'; socketPath: string }
  | { kind: 'http'; protocol: 'http' | 'https'; host: string; port: number }
  | { kind: 'ssh'; host: string; port: number; username: string | undefined };

/** TLS material of a `tcp://`/`https://` engine (PEM contents), as `docker --tlsverify` uses it. */
export interface DockerTls {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

/**
 * Parses a `DOCKER_URL` in the original's forms: `tcp://host:port` and `http://host:port` speak HTTP,
 * `https://host:port` HTTPS, `ssh://user@host[:port]` the engine of a machine reached over SSH (as
 * `docker -H ssh://...`), and anything else is a unix socket path, with or without `unix://`.
 * Unset or empty means the default socket.
 */
export function parseDockerUrl(url: string | undefined): DockerEndpoint {
  const value = url?.trim() ?? '';
  if (value === '') return { kind: 'unix', socketPath: DEFAULT_DOCKER_SOCKET };
  const scheme = value.match(/^([a-z][a-z0-9+.-]*):\/\//i)?.[1]?.toLowerCase();
  if (scheme === 'tcp' || scheme === 'http' || scheme === 'https') {
    let parsed: URL;
    try {
      parsed = new URL(`${scheme === 'https' ? 'https' : 'http'}${value.slice(scheme.length)}`);
    } catch (cause) {
      throw new InputError(`'${value}' is not a valid Docker URL`, { cause });
    }
    if (parsed.hostname === '') throw new InputError(`'${value}' is not a valid Docker URL: no host`);
    const protocol = scheme === 'https' ? 'https' : 'http';
    const port = parsed.port === '' ? (protocol === 'https' ? 2376 : 2375) : Number(parsed.port);
    // URL keeps IPv6 hosts in brackets; the http module wants them bare
    return { kind: 'http', protocol, host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port };
  }
  if (scheme === 'ssh') {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch (cause) {
      throw new InputError(`'${value}' is not a valid Docker URL`, { cause });
    }
    if (parsed.hostname === '') throw new InputError(`'${value}' is not a valid Docker URL: no host`);
    return {
      kind: 'ssh',
      host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: parsed.port === '' ? 22 : Number(parsed.port),
      username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
    };
  }
  if (scheme === 'unix') {
    const socketPath = value.slice('unix://'.length);
    return { kind: 'unix', socketPath: socketPath === '' ? DEFAULT_DOCKER_SOCKET : socketPath };
  }
  if (scheme !== undefined)
    throw new InputError(`'${value}' is not a supported Docker URL (unix, tcp, http, https, ssh)`);
  return { kind: 'unix', socketPath: value };
}

/** The endpoint written as a URL, for messages. */
export function formatDockerEndpoint(endpoint: DockerEndpoint): string {
  if (endpoint.kind === 'unix') return `unix://${endpoint.socketPath}`;
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  if (endpoint.kind === 'ssh') {
    const user = endpoint.username === undefined ? '' : `${encodeURIComponent(endpoint.username)}@`;
    return `ssh://${user}${host}:${endpoint.port}`;
  }
  return `${endpoint.protocol}://${host}:${endpoint.port}`;
}

/**
 * dockerode constructor options for an endpoint. Every connection field is set, even to `undefined`:
 * docker-modem otherwise merges in `DOCKER_HOST`, `DOCKER_CERT_PATH` and friends from the
 * environment, and plugins read no environment.
 */
export function dockerodeOptions(
  endpoint: DockerEndpoint,
  extra: { tls?: DockerTls | undefined; sshPrivateKey?: string | Buffer | undefined } = {},
): Record<string, unknown> {
  const common = {
    timeout: undefined,
    ca: undefined,
    cert: undefined,
    key: undefined,
    username: undefined,
    sshOptions: undefined,
  };
  if (endpoint.kind === 'unix') {
    return { ...common, socketPath: endpoint.socketPath, host: undefined, port: undefined, protocol: 'http' };
  }
  if (endpoint.kind === 'ssh') {
    // docker-modem runs `docker system dial-stdio` on the far side, as the docker CLI does
    return {
      ...common,
      socketPath: undefined,
      host: endpoint.host,
      port: endpoint.port,
      username: endpoint.username,
      protocol: 'ssh',
      sshOptions: extra.sshPrivateKey === undefined ? {} : { privateKey: extra.sshPrivateKey },
    };
  }
  return {
    ...common,
    ...(endpoint.protocol === 'https'
      ? { ca: extra.tls?.ca, cert: extra.tls?.cert, key: extra.tls?.key }
      : {}),
    socketPath: undefined,
    host: endpoint.host,
    port: endpoint.port,
    protocol: endpoint.protocol,
    pathPrefix: '/',
  };
}
