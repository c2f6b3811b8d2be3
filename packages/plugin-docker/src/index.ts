/**
 * @serene/plugin-docker: a `Runner` that builds packages in containers on a Docker Engine
 * (dockerode), speaking the original serene-aur's runner protocol. The runner image is in `runner/`.
 */
export {
  createDockerRunner,
  DEFAULT_RUNNER_IMAGE,
  DOCKER_RUNNER_DEFAULTS,
  DOCKER_RUNNER_NAME,
  type DockerRunner,
  type DockerRunnerOptions,
  type DockerRunnerResources,
  DockerUnreachableError,
} from './docker-runner.js';
export {
  DEFAULT_DOCKER_SOCKET,
  type DockerEndpoint,
  formatDockerEndpoint,
  parseDockerUrl,
} from './docker-url.js';
