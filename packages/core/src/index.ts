/**
 * @serene/core: the domain, the contracts, the composition and the native pacman repository engine of
 * serene. This is the curated public surface: the contracts, errors and logger whole, and of the
 * rest what the other packages use. `@serene/core/contracts` is the light entry for contract
 * authors (types and errors, nothing native), `@serene/core/pacman` the repository engine alone and
 * `@serene/core/testing` the conformance suites.
 */

// --- the composition: createSerene and its lifecycle ---
export * from './composition/index.js';
// --- limits on how many async tasks run at once ---
export {
  createKeyedLock,
  createLimiter,
  createPause,
  type KeyedLock,
  type Limiter,
  mapLimit,
  type Pause,
  Semaphore,
} from './concurrency.js';
// --- the contracts (one per capability), named errors, logging: public in whole ---
export * from './contracts/gate.js';
export * from './contracts/publisher.js';
export * from './contracts/runner.js';
export * from './contracts/signer.js';
export * from './contracts/source.js';
export * from './contracts/store.js';
// --- durable file writes ---
export {
  asDiskFull,
  removeFile,
} from './durable.js';
export * from './errors.js';
export * from './gate/index.js';
export * from './logger.js';
// --- orchestration: build sessions, their events and limits ---
export {
  type BuildEvents,
  EventBus,
  type EventHandler,
} from './orchestration/events.js';
export {
  BUILD_OUTPUT_LIMITS,
  type BuildOutputLimits,
  formatBytes,
} from './orchestration/limits.js';
export {
  BUILD_DEFAULTS,
  type BuildInFlight,
  BuildOrchestrator,
  type OrchestratorOptions,
  RESTART_MESSAGE,
  type RunSettings,
  SHUTDOWN_MESSAGE,
} from './orchestration/orchestrator.js';
export {
  createSyncDatabases,
  DEFAULT_SYNC_MIRROR,
  SYNC_REPOSITORIES,
  type SyncDatabases,
  type SyncDatabasesOptions,
} from './orchestration/sync-databases.js';
// --- the package operations behind the API ---
export {
  type AddRequest,
  DependencyError,
  type PackageScheduling,
  PackageService,
  type PackageServiceOptions,
  type PackageSummary,
  type PackageView,
  type QueuedBuild,
  type SettingChange,
} from './packages/service.js';

// --- the pacman repository (the whole engine: @serene/core/pacman) ---
export {
  type AddResult,
  RepoDatabase,
} from './pacman/database.js';
export type { Provider } from './pacman/depend.js';
export {
  createFilesystemRepository,
  FILESYSTEM_PUBLISHER_NAME,
  type FilesystemRepository,
  type FilesystemRepositoryOptions,
} from './pacman/filesystem-repository.js';
export {
  MAX_NAME_LENGTH,
  packageNameProblem,
  repositoryNameProblem,
} from './pacman/names.js';
export type { Srcinfo } from './pacman/srcinfo.js';
// --- schedules ---
export {
  type CronSchedule,
  parseCron,
} from './schedule/cron.js';
export {
  type CronJob,
  type CronJobOptions,
  createCronJob,
  createPackageScheduler,
  DEFAULT_SCHEDULE,
  type PackageScheduler,
  type PackageSchedulerOptions,
  type PackageScheduleSettings,
  type ScheduledPackage,
  scheduledPackageOf,
} from './schedule/scheduler.js';
export {
  GPG_AGENT_SIGNER_NAME,
  GpgAgentKeyError,
  type GpgAgentSigner,
  type GpgAgentSignerOptions,
  GpgAgentUnavailableError,
  loadGpgAgentSigner,
  SmartcardPinError,
} from './signing/gpg-agent-signer.js';
// --- signing with gpg ---
export {
  createGpgSigner,
  GPG_SIGNER_NAME,
  type GpgSignerOptions,
} from './signing/gpg-signer.js';

// --- package sources ---
export {
  AUR_REQUEST_DEFAULTS,
  type AurClientOptions,
  DEFAULT_AUR_URL,
} from './sources/aur-client.js';
export {
  RawSource,
  rawSourceState,
} from './sources/raw-source.js';
export {
  createSourceFactory,
  type SereneSourceFactory,
  type SourceFactoryOptions,
} from './sources/source-factory.js';

// --- the knex store (knex, sqlite3 and pg load when a store opens) ---
export {
  createKnexStore,
  type KnexFactory,
  type KnexStoreOptions,
  POSTGRES_STORE_NAME,
  SQLITE_STORE_NAME,
} from './store/knex-store.js';
