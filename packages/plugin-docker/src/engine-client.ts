/**
 * The Docker runner's connection to its engine: the dockerode client made on first use, a ping
 * before each piece of work, and the engine's failures as named errors (an engine that cannot be
 * reached is a {@link DockerUnreachableError}, any other failed request a `PluginError`).
 */
import { formatErrorChain, InputError, PluginError } from '@serene/core';
import type Dockerode from 'dockerode';
import { dockerodeOptions } from './docker-url.js';
import { DOCKER_RUNNER_NAME, type RunnerSettings } from './runner-options.js';

/** The Docker Engine cannot be reached (not running, wrong `DOCKER_URL`, connection lost). */
export class DockerUnreachableError extends PluginError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(DOCKER_RUNNER_NAME, message, { ...options, code: 'SERENE_ERR_DOCKER_UNREACHABLE' });
  }
}

/** Connection failures: the engine is not there, not ours to fix from here. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EACCES',
  'ECONNABORTED',
]);

/** Codes that also come from the file system; they mean "no engine" only on `connect`. */
const CONNECT_ONLY_CODES = new Set(['ENOENT', 'EACCES']);

function isConnectionError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const record = error as { code?: unknown; statusCode?: unknown; message?: unknown; syscall?: unknown };
  if (typeof record.statusCode === 'number') return false;
  if (typeof record.code === 'string' && CONNECTION_CODES.has(record.code)) {
    return !CONNECT_ONLY_CODES.has(record.code) || record.syscall === 'connect';
  }
  return typeof record.message === 'string' && /socket hang up/i.test(record.message);
}

/** The HTTP status of a failed engine request, if it got that far. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** The runner's engine. */
export interface EngineClient {
  /** The dockerode client, made on first use. @throws PluginError once closed */
  engine(): Promise<Dockerode>;
  /**
   * Pings the engine, then runs `task` with it; connection failures become
   * {@link DockerUnreachableError}, other failures a `PluginError` saying `during` what.
   */
  withEngine<T>(task: (engine: Dockerode) => Promise<T>, during?: string): Promise<T>;
  /** Refuses work from now on. */
  close(): void;
  /** Drops the dockerode client (once the runs in flight ended). */
  release(): void;
}

/** Creates the {@link EngineClient}; no I/O until first use. */
export function createEngineClient(settings: RunnerSettings, lib?: typeof Dockerode): EngineClient {
  const { endpoint, endpointUrl, pingTimeoutMs } = settings;
  let client: Dockerode | undefined;
  let closed = false;

  const engine = async (): Promise<Dockerode> => {
    if (closed) throw new PluginError(DOCKER_RUNNER_NAME, 'the runner was disposed');
    if (!client) {
      const Docker = lib ?? (await import('dockerode')).default;
      client = new Docker(
        dockerodeOptions(endpoint, {
          tls: settings.tls,
          sshPrivateKey: settings.sshPrivateKey,
        }) as Dockerode.DockerOptions,
      );
    }
    return client;
  };

  const unreachable = (error: unknown, during?: string): DockerUnreachableError => {
    const detail = formatErrorChain(error);
    return new DockerUnreachableError(
      during
        ? `lost the connection to the Docker Engine at ${endpointUrl} ${during} (${detail})`
        : `cannot reach the Docker Engine at ${endpointUrl} (${detail}); is it running? Builds work again as soon as it is back`,
      { cause: error },
    );
  };

  const withEngine = async <T>(task: (engine: Dockerode) => Promise<T>, during?: string): Promise<T> => {
    const docker = await engine();
    try {
      await (docker.ping as (opts: { abortSignal: AbortSignal }) => Promise<unknown>)({
        abortSignal: AbortSignal.timeout(pingTimeoutMs),
      });
    } catch (error) {
      if (
        isConnectionError(error) ||
        (error as Error)?.name === 'AbortError' ||
        (error as Error)?.name === 'TimeoutError'
      ) {
        throw unreachable(error);
      }
      throw new PluginError(DOCKER_RUNNER_NAME, `the Docker Engine at ${endpointUrl} did not answer a ping`, {
        cause: error,
      });
    }
    try {
      return await task(docker);
    } catch (error) {
      if (error instanceof PluginError || error instanceof InputError) throw error;
      if (isConnectionError(error)) throw unreachable(error, during);
      const where = during ? ` ${during}` : '';
      throw new PluginError(
        DOCKER_RUNNER_NAME,
        `a Docker Engine request failed${where}: ${formatErrorChain(error)}`,
        {
          cause: error,
        },
      );
    }
  };

  return {
    engine,
    withEngine,
    close() {
      closed = true;
    },
    release() {
      client = undefined;
    },
  };
}
