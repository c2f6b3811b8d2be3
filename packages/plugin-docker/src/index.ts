/**
 * @serene/plugin-docker: a `Runner` that builds packages in containers on a Docker Engine
 * (dockerode), speaking the original serene-aur's runner protocol. The runner image is in `runner/`.
 */
export {
  createDockerRunner,
  DEFAULT_RUNNER_IMAGE,
  DOCKER_RUNNER_DEFAULTS,
  DOCKER_RUNNER_NAME,
  type DockerEngineInfo,
  type DockerRunner,
  type DockerRunnerOptions,
  type DockerRunnerResources,
  DockerUnreachableError,
  pacmanArch,
} from './docker-runner.js';
export {
  DEFAULT_DOCKER_SOCKET,
  type DockerEndpoint,
  type DockerTls,
  formatDockerEndpoint,
  parseDockerUrl,
} from './docker-url.js';
export {
  createDockerEnginePool,
  type DockerEnginePool,
  type DockerEnginePoolOptions,
  type DockerEngineSpec,
  type DockerEngineStatus,
  ENGINE_POOL_DEFAULTS,
} from './engine-pool.js';
