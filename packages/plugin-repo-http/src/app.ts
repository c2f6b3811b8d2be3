/**
 * The HTTP face of serene: the pacman repository at `/<arch>/` and the original's REST API
 * (docs/compatibility.md#routes), on Koa and @koa/router.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import Router, { type RouterContext } from '@koa/router';
import {
  createNoopLogger,
  formatErrorChain,
  InputError,
  NotFoundError,
  type Part,
  UnavailableError,
} from '@serene/core';
import Koa, { type Context, type Middleware } from 'koa';
import { type Access, AuthorizedSecrets, authorize, authorizeWebhook, webhookSecret } from './auth.js';
import { DEFAULT_BODY_LIMIT, readBody } from './body.js';
import { errorMiddleware } from './errors.js';
import { LiveEvents } from './live-events.js';
import { heldNotice, LiveLogs } from './live-logs.js';
import { openApiDocument } from './openapi.js';
import type { RepoHttpOptions } from './options.js';
import { PackageList, writeList } from './package-list.js';
import type { HttpPlugin } from './plugin.js';
import { encodeSegment, RepositoryFiles } from './repository-files.js';
import {
  nameProblem,
  PackageAddRequestSchema,
  PackageBuildRequestSchema,
  PackageSettingsRequestSchema,
  quote,
  ReviewDecisionRequestSchema,
  type SereneInfo,
  type ServerDetails,
} from './schemas.js';
import {
  buildInfo,
  engineJson,
  formatTime,
  heldUpdate,
  packageInfo,
  packagePolicy,
  queueEntry,
  recentBuild,
} from './wire.js';

/**
 * What {@link createRepoHttp} returns: the application, and a part of serene's lifecycle that
 * starts and stops its plugins (`createHttpListener` serves it).
 */
export interface RepoHttp extends Part {
  /** the Koa application (not listening): `http.createServer(app.callback())` */
  app: Koa;
  /** the API routes, mounted on `app` */
  router: Router;
  /** Starts the plugins, in order. */
  start(): Promise<void>;
  /**
   * Ends the live log streams, stops watching the secrets file, drops cached files and stops the
   * plugins in reverse order. Idempotent.
   */
  stop(): Promise<void>;
  /** The same as {@link RepoHttp.stop}. */
  close(): Promise<void>;
}

/** What the original answers for `GET /key` on a server that signs nothing. */
export const NO_SIGNING_KEY_MESSAGE = 'the server has no private key to sign packages';

const UINT32_MAX = 0xffffffff;

/** A user-supplied text made safe to echo in a message: controls replaced, cut short. */
function printable(text: string, max = 100): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** The `{name}` of a route, checked to be a possible package name. */
function nameParam(ctx: RouterContext): string {
  const name = ctx.params.name ?? '';
  const problem = nameProblem(name);
  if (problem) throw new InputError(`invalid package name ${quote(name)}: ${problem}`);
  return name;
}

/** A whole-number query parameter from 0 to `max`, or undefined when absent. */
function countParam(ctx: Context, key: string, max: number): number | undefined {
  const raw = ctx.query[key];
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? (raw[0] ?? '') : raw;
  if (!/^\d{1,10}$/.test(text) || Number(text) > max) {
    throw new InputError(
      `Query deserialize error: ${key} must be a whole number from 0 to ${max}, not ${quote(text)}`,
    );
  }
  return Number(text);
}

/** Most builds `GET /builds` answers with at once. */
export const MAX_RECENT_BUILDS = 1000;

/** Answers 200 with an empty body (the original's `empty_response`). */
function emptyOk(ctx: Context): void {
  ctx.body = null;
  ctx.status = 200;
}

/** Answers 200 with a JSON string (logs, PKGBUILD, webhook secret). */
function jsonString(ctx: Context, text: string): void {
  ctx.body = JSON.stringify(text);
  ctx.type = 'application/json';
}

/**
 * Creates the Koa application of serene: repository files, REST API, authentication, live logs and
 * the OpenAPI document. Does not listen.
 *
 * @remarks Order matters as in the original: `/{arch}/package/{name}` before the repository files,
 * `/package/list` before `/package/{name}`.
 */
export function createRepoHttp(options: RepoHttpOptions): RepoHttp {
  const logger = options.logger ?? createNoopLogger();
  const { service, arch } = options;
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const secrets = new AuthorizedSecrets({
    file: options.authorizedSecretsFile,
    logger,
    recheckMs: options.secretsRecheckMs,
  });
  const liveLogs = new LiveLogs({ bus: options.bus, logger, ...options.liveLogs });
  const liveEvents = new LiveEvents({
    bus: options.bus,
    logger,
    pingIntervalMs: options.liveLogs?.pingIntervalMs,
    maxBufferedBytes: options.liveLogs?.maxBufferedBytes,
  });
  // the primary architecture's repository, then each other architecture's (docs/engines.md#architectures)
  const repositories = new Map(
    [
      { arch, dir: options.repositoryDir, publisher: options.publisher },
      ...(options.repositories ?? []).filter((repository) => repository.arch !== arch),
    ].map((repository) => [
      repository.arch,
      {
        publisher: repository.publisher,
        files: new RepositoryFiles({
          dir: repository.dir,
          mount: `/${repository.arch}`,
          logger,
          ...options.files,
        }),
      },
    ]),
  );
  let openApi: string | undefined;
  // GET /package/list reads and parses every package: its answer is kept, and a build's state
  // change has only its package read again
  const packageList = new PackageList({
    service,
    maxAgeMs: options.listCacheMs ?? 60_000,
    applyAfterMs: options.listApplyAfterMs ?? 50,
  });
  const stopListening = options.bus.on('state', (event) => packageList.changed(event));

  const auth =
    (access: Access): Middleware =>
    async (ctx, next) => {
      ctx.state.token = await authorize(secrets, ctx.req.headers.authorization, access, options.allowReads);
      await next();
    };
  const read = auth('read');
  const write = auth('write');

  const router = new Router();

  // --- public ---

  router.get('/', (ctx) => {
    const info: SereneInfo = {
      version: options.version,
      started: formatTime(options.started),
      name: options.name,
      architecture: arch,
      readable: options.allowReads,
      signed: options.signer !== undefined,
    };
    ctx.body = info;
  });

  router.get('/health', async (ctx) => {
    try {
      await options.healthCheck?.();
    } catch (error) {
      throw new UnavailableError(`not ready: ${(error as Error).message}`, { cause: error });
    }
    ctx.body = { status: 'ok' };
  });

  router.get('/openapi.json', (ctx) => {
    openApi ??= JSON.stringify(openApiDocument(options.version, arch));
    ctx.body = openApi;
    ctx.type = 'application/json';
  });

  // route 1 of the original: any first segment; a foreign architecture is a 400
  router.get('/:arch/package/:name', async (ctx) => {
    const requested = ctx.params.arch ?? '';
    const repository = repositories.get(requested);
    if (!repository) {
      throw new InputError(`architecture '${printable(requested)}' is not supported by this server`);
    }
    const name = nameParam(ctx);
    const publisher = repository.publisher;
    // the publisher's record of what each base published (bases.json), else its database
    const filename = publisher.fileOf
      ? await publisher.fileOf(name)
      : (await publisher.list()).find((candidate) => candidate.name === name)?.filename;
    if (filename === undefined)
      throw new NotFoundError(`package '${name}' does not exist or is not yet built`);
    ctx.body = null;
    ctx.status = 307;
    ctx.set('Location', `/${encodeSegment(requested)}/${filename.split('/').map(encodeSegment).join('/')}`);
  });

  // --- packages ---

  router.post('/package/add', write, async (ctx) => {
    const request = await readBody(ctx, PackageAddRequestSchema, bodyLimit);
    const added = await service.add(request);
    ctx.body = await Promise.all(
      added.map(async (view) => packageInfo(view, (await service.builds(view.record.base)).length)),
    );
  });

  router.get('/package/list', read, async (ctx) => {
    const body = await packageList.get();
    ctx.type = 'application/json';
    // the kept answer's length is known: sent as Content-Length rather than in chunks
    ctx.length = body.bytes;
    ctx.status = 200;
    // written here, all at once (writeList), not piped by koa
    ctx.respond = false;
    if (ctx.method === 'HEAD') ctx.res.end();
    else writeList(ctx.res, body);
  });

  router.get('/package/:name', read, async (ctx) => {
    const base = nameParam(ctx);
    const view = await service.get(base);
    ctx.body = packageInfo(view, (await service.builds(base)).length);
  });

  router.delete('/package/:name', write, async (ctx) => {
    await service.remove(nameParam(ctx));
    emptyOk(ctx);
  });

  router.post('/package/:name/set', write, async (ctx) => {
    const base = nameParam(ctx);
    const change = await readBody(ctx, PackageSettingsRequestSchema, bodyLimit);
    await service.set(base, change);
    emptyOk(ctx);
  });

  // --- update gate (beyond the original; docs/update-gate.md) ---

  router.get('/package/:name/policy', read, async (ctx) => {
    ctx.body = packagePolicy(await service.gatePolicy(nameParam(ctx)));
  });

  router.get('/review', read, async (ctx) => {
    ctx.body = (await service.heldUpdates()).map(heldUpdate);
  });

  router.get('/review/:name', read, async (ctx) => {
    const review = await service.heldUpdate(nameParam(ctx));
    ctx.body = { ...heldUpdate(review), diff: review.diff };
  });

  router.post('/review/:name/approve', write, async (ctx) => {
    const base = nameParam(ctx);
    const { revision } = await readBody(ctx, ReviewDecisionRequestSchema, bodyLimit);
    ctx.body = { base, revision: await service.approve(base, revision) };
  });

  router.post('/review/:name/reject', write, async (ctx) => {
    const base = nameParam(ctx);
    const { revision } = await readBody(ctx, ReviewDecisionRequestSchema, bodyLimit);
    ctx.body = { base, revision: await service.reject(base, revision) };
  });

  router.get('/package/:name/pkgbuild', read, async (ctx) => {
    jsonString(ctx, await service.pkgbuild(nameParam(ctx)));
  });

  // --- builds ---

  router.post('/build/all', write, async (ctx) => {
    const request = await readBody(ctx, PackageBuildRequestSchema, bodyLimit);
    await service.startBuildAll({ clean: request.clean, resolve: request.resolve, force: request.force });
    emptyOk(ctx);
  });

  router.post('/build', write, async (ctx) => {
    const request = await readBody(ctx, PackageBuildRequestSchema, bodyLimit);
    await service.startBuild(request.packages, {
      clean: request.clean,
      resolve: request.resolve,
      force: request.force,
    });
    emptyOk(ctx);
  });

  router.get('/package/:name/build', read, async (ctx) => {
    const base = nameParam(ctx);
    const raw = ctx.query.count;
    let count: number | undefined;
    if (raw !== undefined) {
      const text = Array.isArray(raw) ? (raw[0] ?? '') : raw;
      if (!/^\d{1,10}$/.test(text) || Number(text) > UINT32_MAX) {
        throw new InputError(
          `Query deserialize error: count must be a whole number from 0 to ${UINT32_MAX}, not ${quote(text)}`,
        );
      }
      count = Number(text);
    }
    const builds = count === 0 ? [] : await service.builds(base, count);
    ctx.body = builds.map(buildInfo);
  });

  router.get('/package/:name/build/logs/subscribe', read, async (ctx) => {
    const base = nameParam(ctx);
    await service.get(base);
    // a held update is told to every new subscriber, as a log line (every client shows those)
    const held = (await service.heldUpdates().catch(() => [])).find((view) => view.base === base);
    ctx.respond = false;
    liveLogs.subscribe(base, ctx.res, held ? heldNotice(held.held) : undefined);
  });

  const timeParam = (ctx: RouterContext): string => {
    const time = ctx.params.time ?? '';
    if (time.length > 64) {
      throw new InputError(`expected valid date, valid index number, or 'latest', not ${quote(time)}`);
    }
    return time;
  };

  router.get('/package/:name/build/:time', read, async (ctx) => {
    const base = nameParam(ctx);
    ctx.body = buildInfo(await service.build(base, timeParam(ctx)));
  });

  router.get('/package/:name/build/:time/logs', read, async (ctx) => {
    const base = nameParam(ctx);
    jsonString(ctx, await service.logs(base, timeParam(ctx)));
  });

  // --- beyond the original: the queue, recent builds, cancelling, the server, the live stream ---

  router.get('/whoami', write, (ctx) => {
    ctx.body = { name: secrets.nameOf(ctx.state.token as string) };
  });

  router.get('/queue', read, (ctx) => {
    ctx.body = service.queue().map(queueEntry);
  });

  router.get('/builds', read, async (ctx) => {
    const count = countParam(ctx, 'count', MAX_RECENT_BUILDS) ?? 50;
    const raw = ctx.query.before;
    const text = Array.isArray(raw) ? raw[0] : raw;
    let before: Date | undefined;
    if (text !== undefined) {
      before = new Date(text);
      if (text.length > 64 || Number.isNaN(before.getTime())) {
        throw new InputError(`before must be an RFC 3339 time, not ${quote(text)}`);
      }
    }
    // `package`: one package's builds, with what the original's `GET /package/{name}/build` lacks
    const rawBase = ctx.query.package;
    const base = Array.isArray(rawBase) ? rawBase[0] : rawBase;
    if (base !== undefined) {
      const problem = nameProblem(base);
      if (problem) throw new InputError(`invalid package name ${quote(base)}: ${problem}`);
    }
    ctx.body = (await service.recentBuilds(count, before, base)).map((build) => recentBuild(build, arch));
  });

  router.post('/package/:name/cancel', write, async (ctx) => {
    const base = nameParam(ctx);
    const by = secrets.nameOf(ctx.state.token as string);
    ctx.body = queueEntry(await service.cancel(base, by));
  });

  router.get('/server', read, async (ctx) => {
    const queue = service.queue();
    const details: ServerDetails = {
      version: options.version,
      started: formatTime(options.started),
      name: options.name,
      architecture: arch,
      readable: options.allowReads,
      signed: options.signer !== undefined,
      fingerprint: options.signer ? await options.signer.fingerprint() : null,
      engines: (await service.engines()).map(engineJson),
      architectures: [...repositories.keys()],
      packages: await service.count(),
      queue: {
        running: queue.filter((build) => build.phase === 'running').length,
        queued: queue.filter((build) => build.phase !== 'running').length,
      },
    };
    ctx.body = details;
  });

  router.get('/engines', read, async (ctx) => {
    ctx.body = (await service.engines()).map(engineJson);
  });

  router.get('/events', read, (ctx) => {
    ctx.respond = false;
    liveEvents.subscribe(ctx.res, JSON.stringify(service.queue().map(queueEntry)));
  });

  // --- webhooks ---

  router.get('/webhook/package/:name/secret', write, async (ctx) => {
    const base = nameParam(ctx);
    await service.get(base);
    if (options.webhookSecret === undefined)
      throw new UnavailableError("webhooks aren't enabled on this server");
    jsonString(ctx, webhookSecret(ctx.state.token as string, base, options.webhookSecret));
  });

  router.post('/webhook/package/:name/build', async (ctx) => {
    const raw = ctx.query.secret;
    const given = Array.isArray(raw) ? raw[0] : raw;
    const name = ctx.params.name ?? '';
    await authorizeWebhook(secrets, given, name, options.webhookSecret);
    await service.startWebhookBuild(nameParam(ctx));
    emptyOk(ctx);
  });

  // --- key ---

  router.get('/key', read, async (ctx) => {
    if (!options.signer) throw new NotFoundError(NO_SIGNING_KEY_MESSAGE);
    ctx.body = Buffer.from(await options.signer.publicKey());
    ctx.type = 'application/octet-stream';
  });

  // --- the application ---

  const plugins = options.plugins ?? [];
  const app = new Koa();
  // client aborts and stream errors reach here; they are not the server's failures
  app.on('error', (error: Error) => logger.debug('connection error', { error: error.message }));
  for (const plugin of plugins) if (plugin.outer) app.use(plugin.outer);
  app.use(errorMiddleware(logger));
  for (const plugin of plugins) if (plugin.routes) app.use(plugin.routes);
  app.use(async (ctx, next) => {
    const pathname = ctx.path;
    const files = repositories.get(firstSegment(pathname))?.files;
    if (!files?.covers(pathname) || isPackageRoute(pathname)) return next();
    await files.handle(ctx.req as IncomingMessage, ctx.res as ServerResponse, pathname);
    ctx.respond = false;
  });
  // every request that may change something makes the kept package list stale, failed ones too
  // (an add that saved packages but could not start their build answers 500)
  app.use(async (ctx, next) => {
    if (ctx.method === 'GET' || ctx.method === 'HEAD') return next();
    try {
      await next();
    } finally {
      packageList.invalidate();
    }
  });
  app.use(router.routes());
  app.use(router.allowedMethods());

  const started: HttpPlugin[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      stopListening();
      packageList.close();
      liveLogs.close();
      liveEvents.close();
      secrets.close();
      for (const repository of repositories.values()) repository.files.close();
      for (const plugin of started.splice(0).reverse()) {
        await Promise.resolve(plugin.stop?.()).catch((error) =>
          logger.error('an HTTP plugin failed to stop', {
            plugin: plugin.name,
            error: formatErrorChain(error),
          }),
        );
      }
    })();
    return stopping;
  };
  return {
    name: 'repo-http',
    app,
    router,
    async start() {
      for (const plugin of plugins) {
        if (started.includes(plugin)) continue;
        await plugin.start?.();
        started.push(plugin);
      }
    },
    stop,
    close: stop,
  };
}

/** The first segment of a request path, as it is (`/x86_64/serene.db` → `x86_64`). */
function firstSegment(pathname: string): string {
  const end = pathname.indexOf('/', 1);
  return pathname.slice(1, end === -1 ? undefined : end);
}

/** `/{arch}/package/{name}`: exactly three segments, the second `package`. */
function isPackageRoute(pathname: string): boolean {
  return /^\/[^/]+\/package\/[^/]+\/?$/.test(pathname);
}
