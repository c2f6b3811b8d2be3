/**
 * A real serene HTTP server for the tests of this package: knex SQLite store, instant runner (with
 * gates to hold builds), filesystem repository and source factory against the AUR emulator,
 * composed by `createSerene` (orchestrator, package service, scheduler: the production
 * composition) and served by `createRepoHttp` and `createHttpListener` on 127.0.0.1.
 *
 * Not part of the build (see tsconfig.json); imported by the tests only.
 */
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type BuildOrchestrator,
  type BuildStats,
  createFilesystemRepository,
  createKnexStore,
  createMemoryLogger,
  createSerene,
  createSourceFactory,
  type EngineStatus,
  type FilesystemRepository,
  type LogRecord,
  type PackageService,
  type ReviewMode,
  type Runner,
  type Signer,
  type Store,
  type UpdateGate,
} from '@serene/core';
import { createInstantRunner, type InstantBehaviour } from '@serene/core/testing';
import {
  type AurEmulator,
  type AurTestPackage,
  startAurEmulator,
} from '../../../../test/fixtures/aur/index.js';
import { createRepoHttp, type RepoHttp } from '../app.js';
import { secretToken } from '../auth.js';
import { createHttpListener } from '../listener.js';
import type { RepoHttpOptions } from '../options.js';

/** The secret the harness authorizes. */
export const SECRET = 'correct horse battery staple';
/** The webhook secret of the server. */
export const WEBHOOK_SECRET = 'server-webhook-secret';

/** A response as the tests look at it. */
export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** the body parsed as JSON (undefined when it is not JSON) */
  json: unknown;
}

/** Options of one request. */
export interface Ask {
  method?: string;
  /** sent as JSON with `Content-Type: application/json` unless `raw` */
  body?: unknown;
  /** sent as is */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  /** the `Authorization` header; `SECRET` by default, null for none */
  secret?: string | null;
  /** send the body with chunked transfer encoding (no Content-Length), in pieces */
  chunked?: boolean;
}

/** A running server with its parts. */
export interface Harness {
  root: string;
  url: string;
  port: number;
  aur: AurEmulator;
  store: Store;
  publisher: FilesystemRepository;
  orchestrator: BuildOrchestrator;
  service: PackageService;
  gate: UpdateGate;
  http: RepoHttp;
  server: http.Server;
  logs: LogRecord[];
  /** every request the server answered, in order of their ends */
  requests: { method: string; url: string; status: number; headers: http.IncomingHttpHeaders }[];
  secretsFile: string;
  repositoryDir: string;
  /** bases whose builds wait until {@link Harness.release} */
  hold(base: string): void;
  /** lets held builds of `base` go on */
  release(base: string): void;
  /** writes a log chunk into the running build of `base` (as the runner would) */
  log(base: string, chunk: string): void;
  ask(pathname: string, options?: Ask): Promise<Reply>;
  close(): Promise<void>;
}

/** Options of {@link startHarness}. */
export interface HarnessOptions {
  packages?: AurTestPackage[];
  behaviour?: (base: string) => InstantBehaviour;
  http?: Partial<RepoHttpOptions>;
  /** the update gate's server-wide settings @default nothing held */
  gate?: {
    coolOffMs?: number;
    trust?: boolean;
    review?: ReviewMode;
    blockedAccounts?: string[];
    blockedPackages?: string[];
  };
  /** stats the runner reports for a build (the instant runner reports none) */
  stats?: (base: string) => BuildStats | null;
  /**
   * makes the runner one of several engines (as the Docker Engine pool), whose status the test
   * drives: called with the bases whose builds are in the runner now, in the order they came
   */
  engines?: (running: readonly string[]) => EngineStatus[];
  /**
   * architectures served beside the primary `x86_64`, each with its repository in `repository-<arch>`
   * (the instant runner builds for any of them) @default none
   */
  arches?: string[];
}

/** Sends one request with a raw path (no URL normalisation, so `..` and `%2e` reach the server). */
export function request(port: number, pathname: string, options: Ask = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    const secret = options.secret === undefined ? SECRET : options.secret;
    if (secret !== null) headers.Authorization = secret;
    let payload: Buffer | undefined;
    if (options.raw !== undefined) payload = Buffer.from(options.raw);
    else if (options.body !== undefined) {
      payload = Buffer.from(JSON.stringify(options.body));
      headers['Content-Type'] ??= 'application/json';
    }
    if (payload && !options.chunked) headers['Content-Length'] = String(payload.length);
    const req = http.request(
      { host: '127.0.0.1', port, path: pathname, method: options.method ?? 'GET', headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', (error) => {
      // the server may answer (413) and close before the whole body was sent
      if (
        (error as NodeJS.ErrnoException).code === 'EPIPE' ||
        (error as NodeJS.ErrnoException).code === 'ECONNRESET'
      ) {
        if (answered) return;
      }
      reject(error);
    });
    let answered = false;
    req.on('response', () => {
      answered = true;
    });
    if (payload && options.chunked) {
      for (let offset = 0; offset < payload.length; offset += 16 * 1024)
        req.write(payload.subarray(offset, offset + 16 * 1024));
      req.end();
    } else {
      req.end(payload);
    }
  });
}

/** Starts a server with real parts, composed by `createSerene` as the host composes them. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-http-'));
  const aur = await startAurEmulator({ packages: options.packages ?? [] });
  const logs: LogRecord[] = [];
  const logger = createMemoryLogger(logs);

  // the instant runner, with gates that hold a base's build and a way to log into it
  const instant = createInstantRunner({ behaviour: (job) => options.behaviour?.(job.base) ?? 'success' });
  const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
  const loggers = new Map<string, (chunk: string) => void>();
  const running: string[] = [];
  const engines = options.engines;
  const runner: Runner = {
    name: 'gated',
    printSrcinfo: (dir) => instant.printSrcinfo(dir),
    ...(engines ? { engines: () => engines([...running]) } : {}),
    async run(job, runOptions = {}) {
      loggers.set(job.base, (chunk) => runOptions.onLog?.(chunk));
      running.push(job.base);
      try {
        await gates.get(job.base)?.promise;
        const result = await instant.run(job, runOptions);
        // as the pool: the engine it ran on, the one whose builds list it
        const engine = engines?.([...running]).find((status) => status.builds.includes(job.base))?.name;
        return {
          ...result,
          ...(options.stats ? { stats: options.stats(job.base) } : {}),
          ...(engine === undefined ? {} : { engine }),
        };
      } finally {
        running.splice(running.indexOf(job.base), 1);
        loggers.delete(job.base);
      }
    },
  };

  const repositoryDir = path.join(root, 'repository');
  const publisher = createFilesystemRepository({ dir: repositoryDir });
  const others = (options.arches ?? []).map((arch) => {
    const dir = `${repositoryDir}-${arch}`;
    return { arch, dir, publisher: createFilesystemRepository({ dir }) };
  });
  const serene = createSerene(
    {
      publishers: Object.fromEntries(others.map((other) => [other.arch, other.publisher])),
      logger,
      store: createKnexStore({ filename: ':memory:' }),
      runner,
      publisher,
      sources: createSourceFactory({
        generateSrcinfo: (dir) => runner.printSrcinfo(dir),
        aur: { baseUrl: aur.url },
      }),
    },
    {
      arch: 'x86_64',
      arches: ['x86_64', ...(options.arches ?? [])],
      name: 'serene',
      sourcesDir: path.join(root, 'sources'),
      workDir: path.join(root, 'work'),
      // the schedules are validated and shown as in production, and never fire during a test
      scheduleDevel: '0 0 */2 * * *',
      schedulingDisabled: true,
      gateCoolOffMs: options.gate?.coolOffMs,
      gateTrust: options.gate?.trust,
      gateReview: options.gate?.review,
      gateBlockedAccounts: options.gate?.blockedAccounts,
      gateBlockedPackages: options.gate?.blockedPackages,
    },
  );
  const secretsFile = path.join(root, 'config', 'authorized_secrets');
  await fs.mkdir(path.dirname(secretsFile), { recursive: true });
  await fs.writeFile(secretsFile, `${secretToken(SECRET)} tester@laptop\n`);

  const repoHttp = createRepoHttp({
    service: serene.service,
    bus: serene.bus,
    publisher,
    repositoryDir,
    arch: 'x86_64',
    repositories: others,
    name: 'serene',
    version: 'v0.4.3',
    started: new Date('2025-03-08T12:00:01.123Z'),
    allowReads: false,
    authorizedSecretsFile: secretsFile,
    webhookSecret: WEBHOOK_SECRET,
    logger,
    ...options.http,
  });
  const requests: Harness['requests'] = [];
  const listener = serene.add(
    createHttpListener({
      http: repoHttp,
      port: 0,
      host: '127.0.0.1',
      graceMs: 0,
      onRequest: (req, res) =>
        res.on('finish', () =>
          requests.push({
            method: req.method ?? '',
            url: req.url ?? '',
            status: res.statusCode,
            headers: req.headers,
          }),
        ),
    }),
  );
  await serene.start();
  const port = listener.port();

  return {
    root,
    url: `http://127.0.0.1:${port}`,
    port,
    aur,
    store: serene.store,
    publisher,
    orchestrator: serene.orchestrator,
    service: serene.service,
    gate: serene.gate,
    http: repoHttp,
    server: listener.server,
    logs,
    requests,
    secretsFile,
    repositoryDir,
    hold(base) {
      let open = () => {};
      const promise = new Promise<void>((resolve) => {
        open = resolve;
      });
      gates.set(base, { promise, open });
    },
    release(base) {
      gates.get(base)?.open();
      gates.delete(base);
    },
    log(base, chunk) {
      const write = loggers.get(base);
      if (!write) throw new Error(`no running build of ${base}`);
      write(chunk);
    },
    ask: (pathname, askOptions) => request(port, pathname, askOptions),
    async close() {
      for (const gate of gates.values()) gate.open();
      gates.clear();
      await serene.stop();
      await aur.close();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}

/** A signer that only has a public key (for `GET /key`). */
export function fakeSigner(): Signer {
  return {
    name: 'fake',
    sign: async () => new Uint8Array(),
    publicKey: async () =>
      '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZ...\n-----END PGP PUBLIC KEY BLOCK-----\n',
    fingerprint: async () => 'ABCDEF',
  };
}
