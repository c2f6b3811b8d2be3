import type { BuildEvents, EventBus, Logger, PackageService, Publisher, Signer } from '@serene/core';
import type { HttpPlugin } from './plugin.js';

/**
 * Options of {@link createRepoHttp}. The host reads the environment once and passes the values here;
 * this package reads no environment variables.
 */
export interface RepoHttpOptions {
  /** the package operations behind the API */
  service: PackageService;
  /** the orchestrator's event bus (`BuildOrchestrator.bus`): state changes and log chunks for SSE */
  bus: EventBus<BuildEvents>;
  /** the repository's publisher: its entries answer `/{arch}/package/{name}` */
  publisher: Publisher;
  /** the repository folder, served at `/<arch>/` */
  repositoryDir: string;
  /** `ARCH`: the served architecture (`x86_64`); with `repositories`, the primary one */
  arch: string;
  /**
   * the repository of each other architecture, served at `/<arch>/` as the primary's is
   * (docs/engines.md#architectures)
   */
  repositories?: readonly { arch: string; dir: string; publisher: Publisher }[] | undefined;
  /** `NAME`: the repository name, shown in `GET /` */
  name: string;
  /** the server's version (`v0.4.3`), shown in `GET /` and compared by the CLI */
  version: string;
  /** when the server started, shown in `GET /` */
  started: Date;
  /** `ALLOW_READS`: read endpoints need no secret */
  allowReads: boolean;
  /** the `authorized_secrets` file (`/app/authorized_secrets`); missing means nobody is authorized */
  authorizedSecretsFile: string;
  /** `WEBHOOK_SECRET`: enables webhooks when set */
  webhookSecret?: string | undefined;
  /** the signer, when packages are signed: `GET /key` and `SereneInfo.signed` */
  signer?: Signer | undefined;
  /** @default a logger that drops everything */
  logger?: Logger | undefined;
  /**
   * Largest JSON request body, in bytes.
   * @default 2 MiB (actix-web's)
   */
  bodyLimit?: number | undefined;
  /**
   * Readiness check of `GET /health` (a store ping, say); a rejection answers 503 with its message.
   * @default none: the endpoint answers 200 while the process serves
   */
  healthCheck?: (() => Promise<void> | void) | undefined;
  /**
   * Plugins of the application (metrics, a dashboard), in order: their middleware is mounted where
   * {@link HttpPlugin} says, and they start and stop with the application.
   * @default none
   */
  plugins?: readonly HttpPlugin[] | undefined;
  /** Tuning of the live log streams. */
  liveLogs?: {
    /** @default 10000 */
    pingIntervalMs?: number;
    /** unsent bytes after which a subscriber is dropped @default 1 MiB */
    maxBufferedBytes?: number;
    /** log kept per running build for late subscribers @default 8 MiB */
    replayLimitBytes?: number;
  };
  /** Tuning of the repository files. */
  files?: {
    /** files up to this size are served from memory @default 4 MiB */
    cacheFileBytes?: number;
    /** memory for such files @default 64 MiB */
    cacheBytes?: number;
    /** size of the two buffers a file is streamed through @default 256 KiB */
    chunkBytes?: number;
    /** a resolved path is checked again after this long even without a change event @default 1000 */
    revalidateMs?: number;
  };
  /**
   * The answer of `GET /package/list` is kept: a build's state change updates its package's entry,
   * a request that changes something has the whole list read again, and so does this much time (ms),
   * in the background, in case the store is changed by another process.
   * @default 60000
   */
  listCacheMs?: number | undefined;
  /**
   * The kept list applies build state changes in the background this long (ms) after the first of
   * them, rather than only when a request comes (`PackageList`'s `applyAfterMs`).
   * @default 50
   */
  listApplyAfterMs?: number | undefined;
  /**
   * Longest time between two checks of the `authorized_secrets` file even without a change event
   * from its folder.
   * @default 2000
   */
  secretsRecheckMs?: number;
}
