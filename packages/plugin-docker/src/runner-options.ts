/**
 * The Docker runner's options, their defaults, and the settings resolved from them once
 * ({@link resolveSettings}): a new option is declared in {@link DockerRunnerOptions}, resolved in
 * {@link resolveSettings}, and read from {@link RunnerSettings} where the containers are made
 * (containers.ts) or the engine is spoken to (engine-client.ts).
 */
import type { Logger } from '@serene/core';
import type Dockerode from 'dockerode';
import { type DockerEndpoint, type DockerTls, formatDockerEndpoint, parseDockerUrl } from './docker-url.js';

/** Name of this runner, for logs and errors. */
export const DOCKER_RUNNER_NAME = 'docker';

/** The runner image used when none is configured: the original's, whose protocol we speak. */
export const DEFAULT_RUNNER_IMAGE = 'ghcr.io/virtcode/serene-aur-runner:main';

/** The defaults of {@link DockerRunnerOptions}, the original's; the host's settings take them from here. */
export const DOCKER_RUNNER_DEFAULTS = {
  prefix: 'serene-aur-runner-',
  srcinfoName: 'serene-aur-srcinfo-generation',
  pruneImages: true,
  pullImage: true,
  imageSchedule: '0 0 0 * * *',
  pids: 8192,
} as const;

/** Resource limits applied to every build container. 0 means no limit. */
export interface DockerRunnerResources {
  /**
   * memory limit in bytes (the engine kills the build when it needs more)
   * @default 0 (no limit: package builds range from megabytes to tens of gigabytes)
   */
  memoryBytes?: number;
  /**
   * CPUs a build may use, fractions allowed (`1.5`)
   * @default 0 (all of the engine's CPUs)
   */
  cpus?: number;
  /**
   * processes and threads a build may run at once (a fork bomb in a PKGBUILD stays contained)
   * @default 8192
   */
  pids?: number;
}

/** Options of `createDockerRunner` (docker-runner.ts); the host maps the original's environment variables to them. */
export interface DockerRunnerOptions {
  /**
   * where the engine listens (`DOCKER_URL`): a unix socket path with or without `unix://`, or
   * `tcp://host:port` / `http://host:port` / `https://host:port`
   * @default '/var/run/docker.sock'
   */
  url?: string;
  /**
   * TLS material (PEM contents) of a `tcp://` or `https://` engine; given, a `tcp://` engine is
   * spoken to over HTTPS with the engine's certificate checked against `ca` (`docker --tlsverify`)
   * @default undefined
   */
  tls?: DockerTls;
  /**
   * private key (PEM contents) for an `ssh://` engine
   * @default undefined (the SSH client's defaults)
   */
  sshPrivateKey?: string | Buffer;
  /**
   * the runner image (`RUNNER_IMAGE`); `serene-runner:local` is what `npm run runner-image` builds
   * @default DEFAULT_RUNNER_IMAGE
   */
  image?: string;
  /**
   * build containers are named prefix + pkgbase (`RUNNER_PREFIX`)
   * @default 'serene-aur-runner-'
   */
  prefix?: string;
  /**
   * name of the `.SRCINFO` generation container (`RUNNER_SRCINFO_NAME`)
   * @default 'serene-aur-srcinfo-generation'
   */
  srcinfoName?: string;
  /**
   * `PACKAGER` set in build containers (`PACKAGER`); unset leaves makepkg's default
   * @default undefined
   */
  packager?: string;
  /**
   * prune dangling images after each successful pull (`PRUNE_IMAGES`)
   * @default true
   */
  pruneImages?: boolean;
  /**
   * the network runner containers join (`RUNNER_NETWORK`), e.g. `host` so that they reach
   * 127.0.0.1; unset means the engine's default (the `bridge` network)
   * @default undefined
   */
  network?: string;
  /** resource limits of each build container */
  resources?: DockerRunnerResources;
  /**
   * pull the image in the runner's `init` and then on `imageSchedule` (`PULL_IMAGE`); off, the
   * engine must have it
   * @default true
   */
  pullImage?: boolean;
  /**
   * when the image is pulled again, a cron expression with seconds first, UTC (`SCHEDULE_IMAGE`)
   * @default '0 0 0 * * *'
   */
  imageSchedule?: string;
  /**
   * how long a `.SRCINFO` generation may take
   * @default 60_000
   */
  srcinfoTimeoutMs?: number;
  /**
   * how long the engine may take to answer a ping before it counts as unreachable
   * @default 10_000
   */
  pingTimeoutMs?: number;
  /** @default a logger that drops everything */
  logger?: Logger;
  /**
   * the dockerode constructor, for fakes in tests
   * @default (await import('dockerode')).default
   */
  lib?: typeof Dockerode;
}

/** What the runner works with, resolved from {@link DockerRunnerOptions} with the defaults. */
export interface RunnerSettings {
  /** where the engine listens (TLS material given, a tcp:// engine is spoken to over HTTPS) */
  endpoint: DockerEndpoint;
  /** {@link endpoint} as a URL, for messages */
  endpointUrl: string;
  tls: DockerTls | undefined;
  sshPrivateKey: string | Buffer | undefined;
  image: string;
  prefix: string;
  srcinfoName: string;
  packager: string | undefined;
  pruneImages: boolean;
  pullImage: boolean;
  imageSchedule: string;
  network: string | undefined;
  resources: Required<DockerRunnerResources>;
  srcinfoTimeoutMs: number;
  pingTimeoutMs: number;
  /** what a build container is made with beyond its image and entrypoint; a change re-creates it */
  settingsKey: string;
}

/** Resolves the options with their defaults. @throws InputError for a malformed `url` */
export function resolveSettings(options: DockerRunnerOptions): RunnerSettings {
  const parsedEndpoint: DockerEndpoint = parseDockerUrl(options.url);
  // TLS material given: a tcp:// engine is spoken to over HTTPS, as `docker --tlsverify -H tcp://`
  const endpoint: DockerEndpoint =
    options.tls && parsedEndpoint.kind === 'http' ? { ...parsedEndpoint, protocol: 'https' } : parsedEndpoint;
  const network = options.network;
  const packager = options.packager;
  const resources = {
    memoryBytes: options.resources?.memoryBytes ?? 0,
    cpus: options.resources?.cpus ?? 0,
    pids: options.resources?.pids ?? DOCKER_RUNNER_DEFAULTS.pids,
  };
  return {
    endpoint,
    endpointUrl: formatDockerEndpoint(endpoint),
    tls: options.tls,
    sshPrivateKey: options.sshPrivateKey,
    image: options.image ?? DEFAULT_RUNNER_IMAGE,
    prefix: options.prefix ?? DOCKER_RUNNER_DEFAULTS.prefix,
    srcinfoName: options.srcinfoName ?? DOCKER_RUNNER_DEFAULTS.srcinfoName,
    packager,
    pruneImages: options.pruneImages ?? DOCKER_RUNNER_DEFAULTS.pruneImages,
    pullImage: options.pullImage ?? DOCKER_RUNNER_DEFAULTS.pullImage,
    imageSchedule: options.imageSchedule ?? DOCKER_RUNNER_DEFAULTS.imageSchedule,
    network,
    resources,
    srcinfoTimeoutMs: options.srcinfoTimeoutMs ?? 60_000,
    pingTimeoutMs: options.pingTimeoutMs ?? 10_000,
    settingsKey: JSON.stringify({ network: network ?? null, resources, packager: packager ?? null }),
  };
}
