/** Resource usage of a build, as the original reports it (null when unknown). */
export interface BuildStats {
  /** peak memory in bytes */
  memoryPeak: number | null;
  /** user CPU time in microseconds */
  cpuUser: number | null;
  /** system CPU time in microseconds */
  cpuSystem: number | null;
  /** total bytes read */
  ioRead: number | null;
  /** total bytes written */
  ioWritten: number | null;
}

/** The inputs and settings of one build. */
export interface RunnerJob {
  /** pkgbase; a runner keeps per-package state (a container, a work folder) under this name */
  base: string;
  /** folder whose contents are the package sources (PKGBUILD and the rest) */
  sourceDir: string;
  /** contents of the generated input files, exactly as the original writes them */
  inputs: {
    /** `custom-repo`: a pacman.conf section for our own repository, or empty */
    customRepo: string;
    /** `serene-prepare.sh`: commands run before the build, or empty */
    prepare: string;
    /** `makepkg-flags`: each flag as `--flag ` */
    makepkgFlags: string;
  };
  /** start from a clean state (new container or work folder) */
  clean: boolean;
  /** folder where the runner puts the built package files */
  outputDir: string;
  /**
   * the build is ended after this many milliseconds (counted from the call to `run`); the result
   * then has `aborted: 'timeout'`
   */
  timeoutMs?: number;
  /**
   * the architecture the build is for, as pacman names it (`x86_64`, `aarch64`); a runner that
   * drives machines of several architectures places the build on one of this architecture
   * @default the runner's own
   */
  arch?: string;
}

/** Callbacks and the cancellation signal of one run. */
export interface RunOptions {
  /** called with every chunk of build output, in order, while the build runs */
  onLog?: (chunk: string) => void;
  /** aborting it stops the build; the result then has `aborted: 'cancelled'` */
  signal?: AbortSignal;
}

/** What one run produced. */
export interface RunResult {
  /** true iff makepkg exited with 0 */
  success: boolean;
  exitCode: number | null;
  /** set when the run ended for a reason other than the build's own exit (timeout, cancel) */
  aborted?: 'timeout' | 'cancelled';
  /**
   * why an aborted run ended, for people (`build timed out after 30 s; its container was killed`)
   * @experimental
   */
  message?: string;
  started: Date;
  ended: Date;
  /** the whole output */
  logs: string;
  /** `.SRCINFO` as reported by the build (`makepkg --printsrcinfo` after the build) */
  srcinfo: string | null;
  /** paths of the built package files, inside `job.outputDir` */
  packages: string[];
  stats: BuildStats | null;
  /**
   * the engine the build ran on, by its name in `engines()` (the last one, when it was moved from an
   * engine that went away); absent from a runner that builds on one machine, and when it ran on none
   * (cancelled or timed out while it waited)
   */
  engine?: string;
}

/** One machine a runner builds on (a Docker Engine), with its state and load now. */
export interface EngineStatus {
  /** unique among the runner's engines; for logs, the API and metrics */
  name: string;
  /** the architecture it builds for, as pacman names it; undefined until it answered once */
  arch: string | undefined;
  /** `unknown` before it was asked */
  state: 'up' | 'down' | 'unknown';
  /** when the state last changed (as far as serene saw) */
  since: Date;
  /** why it is down */
  reason?: string;
  /** builds it runs at once */
  capacity: number;
  /** builds running on it now */
  running: number;
  /** pkgbases of the builds running on it now */
  builds: readonly string[];
  /** labels packages can be pinned to */
  labels: readonly string[];
  /** builds taken from it because it went away, since the start (runners that move such builds) */
  lost?: number;
}

/**
 * A `Runner` runs one build job: sources in, package files, `.SRCINFO`, stats and a live log out.
 */
export interface Runner {
  /** Short name of the implementation, for logs (`docker`, `local`). */
  readonly name: string;
  /**
   * Runs one build. A failing build, a timeout and a cancellation resolve (see `success` and
   * `aborted`); it rejects only when the runner itself fails (engine unreachable, ...), with a
   * message that says so.
   */
  run(job: RunnerJob, options?: RunOptions): Promise<RunResult>;
  /** Prints the `.SRCINFO` of a source folder (`makepkg --printsrcinfo`) in an isolated environment. */
  printSrcinfo(sourceDir: string, options?: { signal?: AbortSignal }): Promise<string>;
  /**
   * Forgets per-package state (removes the package's container or work folder); with `arch`, only
   * the state of its builds for that architecture (a runner of several architectures), else all.
   */
  remove?(base: string, options?: { arch?: string }): Promise<void>;
  /**
   * Prepares the runner when serene starts, before any build: its own chores (the Docker runner
   * pulls its image, removes containers a crash left and starts its image schedule). A rejection
   * stops the start.
   */
  init?(): Promise<void>;
  /** Releases resources and stops the runner's own schedules; called once, when serene stops. */
  dispose?(): Promise<void>;
  /**
   * The machines it builds on, with their state and load, when it drives several (the pool of
   * Docker Engines, docs/engines.md); a runner without it builds on one machine.
   */
  engines?(): EngineStatus[];
  /** Whether the one machine it builds on answers now (the Docker runner pings its engine). Never rejects. */
  ping?(): Promise<boolean>;
}
