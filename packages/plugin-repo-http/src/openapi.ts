/**
 * The OpenAPI 3.1 document of the API, made from the same zod schemas that validate the requests
 * (zod's own `toJSONSchema`, whose draft 2020-12 output is OpenAPI 3.1's schema dialect).
 */
import { z } from 'zod';
import {
  BuildInfoSchema,
  BuildProgressSchema,
  BuildReasonSchema,
  BuildStateSchema,
  EngineSchema,
  GatePolicySchema,
  HealthSchema,
  HeldUpdateReviewSchema,
  HeldUpdateSchema,
  MakepkgFlagSchema,
  PackageAddRequestSchema,
  PackageBuildRequestSchema,
  PackageInfoSchema,
  PackagePeekSchema,
  PackagePolicySchema,
  PackageSettingsRequestSchema,
  QueueEntrySchema,
  RecentBuildSchema,
  ReviewDecisionRequestSchema,
  ReviewDecisionSchema,
  SereneInfoSchema,
  ServerDetailsSchema,
  SourceSpecSchema,
  StateEventSchema,
  WhoAmISchema,
} from './schemas.js';

type Json = Record<string, unknown>;

const ref = (id: string): Json => ({ $ref: `#/components/schemas/${id}` });

/** Components of one direction (`input` for request bodies, `output` for responses). */
function components(io: 'input' | 'output', schemas: Record<string, z.ZodType>): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const { schemas: out } = z.toJSONSchema(registry, { io, uri: (id) => `#/components/schemas/${id}` });
  const result: Record<string, Json> = {};
  for (const [id, schema] of Object.entries(out)) {
    const { $schema: _schema, $id: _id, ...rest } = schema as Json;
    result[id] = rest;
  }
  return result;
}

const text = (description: string): Json => ({
  description,
  content: { 'text/plain': { schema: { type: 'string' } } },
});
const json = (description: string, schema: Json): Json => ({
  description,
  content: { 'application/json': { schema } },
});
const empty = (description: string): Json => ({ description });
const body = (id: string): Json => ({ required: true, content: { 'application/json': { schema: ref(id) } } });
const name = (description: string): Json => ({
  name: 'name',
  in: 'path',
  required: true,
  description,
  schema: { type: 'string' },
});

const READ = [{ secret: [] }];
const WRITE = [{ secret: [] }];
const BAD = text('malformed request (plain-text message)');
const UNAUTHORIZED = text('no secret provided');
const FORBIDDEN = text('invalid secret');
const NOT_FOUND = text('not found (plain-text message)');
const FAILED = text('internal error: the whole error chain, `outer: inner: ...`');
const guarded = { 401: UNAUTHORIZED, 403: FORBIDDEN };

/** Builds the document; `version` is the server's, `arch` the served architecture. */
export function openApiDocument(version: string, arch: string): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'serene',
      version,
      description:
        'The API of a serene build server, wire-compatible with serene-aur. Errors are plain text. ' +
        'Read endpoints need a secret unless the server allows reads (`SereneInfo.readable`).',
    },
    components: {
      securitySchemes: {
        secret: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: 'the raw secret; its SHA-256 in Base64 must be listed in authorized_secrets',
        },
        webhook: {
          type: 'apiKey',
          in: 'query',
          name: 'secret',
          description: 'the webhook secret of a user and package',
        },
      },
      schemas: {
        ...components('input', {
          PackageAddRequest: PackageAddRequestSchema,
          PackageBuildRequest: PackageBuildRequestSchema,
          PackageSettingsRequest: PackageSettingsRequestSchema,
          SourceSpec: SourceSpecSchema,
          ReviewDecisionRequest: ReviewDecisionRequestSchema,
        }),
        ...components('output', {
          BuildProgress: BuildProgressSchema,
          BuildState: BuildStateSchema,
          BuildReason: BuildReasonSchema,
          BuildInfo: BuildInfoSchema,
          MakepkgFlag: MakepkgFlagSchema,
          PackagePeek: PackagePeekSchema,
          PackageInfo: PackageInfoSchema,
          SereneInfo: SereneInfoSchema,
          Health: HealthSchema,
          GatePolicy: GatePolicySchema,
          PackagePolicy: PackagePolicySchema,
          HeldUpdate: HeldUpdateSchema,
          HeldUpdateReview: HeldUpdateReviewSchema,
          ReviewDecision: ReviewDecisionSchema,
          QueueEntry: QueueEntrySchema,
          RecentBuild: RecentBuildSchema,
          ServerDetails: ServerDetailsSchema,
          Engine: EngineSchema,
          StateEvent: StateEventSchema,
          WhoAmI: WhoAmISchema,
        }),
      },
    },
    paths: {
      '/': {
        get: { summary: 'server information', responses: { 200: json('the server', ref('SereneInfo')) } },
      },
      '/health': {
        get: {
          summary: 'liveness for container orchestrators',
          responses: { 200: json('serving', ref('Health')), 503: text('not ready') },
        },
      },
      '/openapi.json': {
        get: { summary: 'this document', responses: { 200: json('OpenAPI 3.1', { type: 'object' }) } },
      },
      '/package/add': {
        post: {
          summary: 'add a package (and the AUR packages it needs)',
          security: WRITE,
          requestBody: body('PackageAddRequest'),
          responses: {
            200: json('the added or replaced packages, target first', {
              type: 'array',
              items: ref('PackageInfo'),
            }),
            400: BAD,
            ...guarded,
            404: text('no such AUR package'),
            413: text('body too large'),
            500: FAILED,
          },
        },
      },
      '/package/list': {
        get: {
          summary: 'all packages',
          security: READ,
          responses: { 200: json('packages', { type: 'array', items: ref('PackagePeek') }), ...guarded },
        },
      },
      '/package/{name}': {
        parameters: [name('pkgbase')],
        get: {
          summary: 'one package',
          security: READ,
          responses: { 200: json('the package', ref('PackageInfo')), 400: BAD, ...guarded, 404: NOT_FOUND },
        },
        delete: {
          summary: 'remove a package with its files, builds and logs',
          security: WRITE,
          responses: { 200: empty('removed'), 400: BAD, ...guarded, 404: NOT_FOUND, 500: FAILED },
        },
      },
      '/package/{name}/set': {
        parameters: [name('pkgbase')],
        post: {
          summary: 'change one setting',
          security: WRITE,
          requestBody: body('PackageSettingsRequest'),
          responses: { 200: empty('changed'), 400: BAD, ...guarded, 404: NOT_FOUND, 500: FAILED },
        },
      },
      '/package/{name}/policy': {
        parameters: [name('pkgbase')],
        get: {
          summary: 'the update policy of a package (update gate, beyond the original)',
          security: READ,
          responses: { 200: json('the policy', ref('PackagePolicy')), 400: BAD, ...guarded, 404: NOT_FOUND },
        },
      },
      '/review': {
        get: {
          summary: 'the updates the update gate holds (beyond the original)',
          security: READ,
          responses: {
            200: json('held updates, by package', { type: 'array', items: ref('HeldUpdate') }),
            ...guarded,
          },
        },
      },
      '/review/{name}': {
        parameters: [name('pkgbase')],
        get: {
          summary: 'the held update of a package with its diff since the last accepted revision',
          security: READ,
          responses: {
            200: json('the held update', ref('HeldUpdateReview')),
            400: BAD,
            ...guarded,
            404: text('no such package, or no update of it is held'),
          },
        },
      },
      '/review/{name}/approve': {
        parameters: [name('pkgbase')],
        post: {
          summary: 'approve the held update at a revision and build exactly that revision',
          security: WRITE,
          requestBody: body('ReviewDecisionRequest'),
          responses: {
            200: json('approved; a build of the revision was started', ref('ReviewDecision')),
            400: text('not a revision'),
            ...guarded,
            403: text('a block list holds the update (or an invalid secret)'),
            404: text('no such package, or no update of it is held'),
            409: text('stale revision: another revision is held now'),
            500: FAILED,
          },
        },
      },
      '/review/{name}/reject': {
        parameters: [name('pkgbase')],
        post: {
          summary: 'reject the held update at a revision: nothing is built until a newer revision',
          security: WRITE,
          requestBody: body('ReviewDecisionRequest'),
          responses: {
            200: json('rejected', ref('ReviewDecision')),
            400: text('not a revision'),
            ...guarded,
            404: text('no such package, or no update of it is held'),
            409: text('stale revision: another revision is held now'),
          },
        },
      },
      '/build': {
        post: {
          summary: 'build packages (asynchronously)',
          security: WRITE,
          requestBody: body('PackageBuildRequest'),
          responses: {
            200: empty('started'),
            400: BAD,
            ...guarded,
            404: NOT_FOUND,
            500: text(
              '`cannot build now, <base> is currently in a running build session`, or another failure',
            ),
          },
        },
      },
      '/build/all': {
        post: {
          summary: 'build every enabled package (`packages` is ignored)',
          security: WRITE,
          requestBody: body('PackageBuildRequest'),
          responses: { 200: empty('started'), 400: BAD, ...guarded, 500: FAILED },
        },
      },
      '/package/{name}/build': {
        parameters: [
          name('pkgbase'),
          {
            name: 'count',
            in: 'query',
            required: false,
            schema: { type: 'integer', minimum: 0, maximum: 4294967295 },
          },
        ],
        get: {
          summary: 'builds of a package, newest first',
          security: READ,
          responses: {
            200: json('builds', { type: 'array', items: ref('BuildInfo') }),
            400: BAD,
            ...guarded,
          },
        },
      },
      '/package/{name}/build/{time}': {
        parameters: [
          name('pkgbase'),
          {
            name: 'time',
            in: 'path',
            required: true,
            description: '`latest`, a 0-based index from the oldest build, or the exact RFC 3339 start time',
            schema: { type: 'string' },
          },
        ],
        get: {
          summary: 'one build',
          security: READ,
          responses: { 200: json('the build', ref('BuildInfo')), 400: BAD, ...guarded, 404: NOT_FOUND },
        },
      },
      '/package/{name}/build/{time}/logs': {
        parameters: [
          name('pkgbase'),
          { name: 'time', in: 'path', required: true, schema: { type: 'string' } },
        ],
        get: {
          summary: 'the log of a finished build',
          security: READ,
          responses: { 200: json('the log text', { type: 'string' }), 400: BAD, ...guarded, 404: NOT_FOUND },
        },
      },
      '/package/{name}/build/logs/subscribe': {
        parameters: [name('pkgbase')],
        get: {
          summary: 'live state and log of a package',
          description:
            'Server-sent events: `id: <pkgbase>`, `event: change` (data: BuildState JSON), `event: log` (data: the chunk as a ' +
            'JSON string), `event: ping` every 10 s (empty id, `data: null`). Each event is followed by the same event in ' +
            'the framing of the v0.4.3 CLI: no id, `event: <pkgbase>`, data `{"change": <BuildState>}`, `{"log": "<chunk>"}` ' +
            'or `"ping"`; each CLI reads the events it understands and skips the others. A late subscriber first receives ' +
            'the current state and the log so far, in both framings.',
          security: READ,
          responses: {
            200: {
              description: 'the stream',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            400: BAD,
            ...guarded,
            404: NOT_FOUND,
          },
        },
      },
      '/package/{name}/pkgbuild': {
        parameters: [name('pkgbase')],
        get: {
          summary: 'the PKGBUILD of the published build',
          security: READ,
          responses: { 200: json('PKGBUILD text', { type: 'string' }), 400: BAD, ...guarded, 404: NOT_FOUND },
        },
      },
      '/whoami': {
        get: {
          summary: "checks the caller's secret and names it (beyond the original; sign-in of the dashboard)",
          security: WRITE,
          responses: { 200: json('the secret is authorized', ref('WhoAmI')), ...guarded },
        },
      },
      '/queue': {
        get: {
          summary: 'the builds queued and running now, oldest first (beyond the original)',
          security: READ,
          responses: {
            200: json('builds in flight', { type: 'array', items: ref('QueueEntry') }),
            ...guarded,
          },
        },
      },
      '/builds': {
        parameters: [
          {
            name: 'count',
            in: 'query',
            required: false,
            description: 'how many (default 50)',
            schema: { type: 'integer', minimum: 0, maximum: 1000 },
          },
          {
            name: 'before',
            in: 'query',
            required: false,
            description: 'only builds started before this RFC 3339 time (the next page)',
            schema: { type: 'string' },
          },
          {
            name: 'package',
            in: 'query',
            required: false,
            description: "only this package's builds (a pkgbase; none for an unknown one)",
            schema: { type: 'string' },
          },
        ],
        get: {
          summary:
            'the newest builds of every package together (or of one), newest first, with their architecture and engine (beyond the original)',
          security: READ,
          responses: {
            200: json('builds', { type: 'array', items: ref('RecentBuild') }),
            400: BAD,
            ...guarded,
          },
        },
      },
      '/package/{name}/cancel': {
        parameters: [name('pkgbase')],
        post: {
          summary: 'cancel the queued or running build of a package (beyond the original)',
          description:
            'Recorded as `cancelled` with `build was cancelled by <name>`, the name being the rest of the ' +
            "caller's line in authorized_secrets. A queued build ends at once, a running one when its runner has stopped.",
          security: WRITE,
          responses: {
            200: json('the build as it was when cancelled', ref('QueueEntry')),
            400: BAD,
            ...guarded,
            404: NOT_FOUND,
            409: text('the package has no build queued or running'),
          },
        },
      },
      '/server': {
        get: {
          summary: 'the server for operators: key fingerprint, engines, queue (beyond the original)',
          security: READ,
          responses: { 200: json('the server', ref('ServerDetails')), ...guarded },
        },
      },
      '/engines': {
        get: {
          summary: 'the engines that build packages, with their state and load (beyond the original)',
          description:
            'With `ENGINES`, each Docker Engine of the pool as the pool sees it (pinged every 10 s); without, ' +
            'the one engine of `DOCKER_URL`, named after the runner, pinged when asked, its capacity `CONCURRENT_BUILDS`.',
          security: READ,
          responses: {
            200: json('the engines', { type: 'array', items: ref('Engine') }),
            ...guarded,
          },
        },
      },
      '/events': {
        get: {
          summary: 'live state changes of every package (beyond the original)',
          description:
            'Server-sent events: first `event: queue` (data: QueueEntry[] JSON, the builds in flight now), then for ' +
            'every state change `id: <pkgbase>`, `event: change` (data: StateEvent JSON), and `event: ping` every 10 s. ' +
            "No log chunks: follow a build's log on `/package/{name}/build/logs/subscribe`.",
          security: READ,
          responses: {
            200: {
              description: 'the stream',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...guarded,
          },
        },
      },
      '/webhook/package/{name}/secret': {
        parameters: [name('pkgbase')],
        get: {
          summary: "the caller's webhook secret for a package",
          security: WRITE,
          responses: {
            200: json('the secret', { type: 'string' }),
            400: BAD,
            ...guarded,
            404: NOT_FOUND,
            503: text("webhooks aren't enabled on this server"),
          },
        },
      },
      '/webhook/package/{name}/build': {
        parameters: [name('pkgbase')],
        post: {
          summary: 'build a package if its source changed (body ignored)',
          security: [{ webhook: [] }],
          responses: {
            200: empty('started'),
            400: BAD,
            401: text('no webhook secret provided'),
            403: text('no signing secret found'),
            404: NOT_FOUND,
            500: FAILED,
            503: text("webhooks aren't enabled on this server"),
          },
        },
      },
      '/key': {
        get: {
          summary: 'the armoured OpenPGP public key packages are signed with',
          security: READ,
          responses: {
            200: {
              description: 'the key',
              content: { 'application/octet-stream': { schema: { type: 'string' } } },
            },
            ...guarded,
            404: text('the server has no private key to sign packages'),
          },
        },
      },
      '/{arch}/package/{name}': {
        parameters: [
          { name: 'arch', in: 'path', required: true, schema: { type: 'string', examples: [arch] } },
          name('pkgname of a member package'),
        ],
        get: {
          summary: 'redirect to the current file of a package',
          responses: {
            307: { description: 'to the file', headers: { Location: { schema: { type: 'string' } } } },
            400: text('unsupported architecture or malformed name'),
            404: text('not built'),
          },
        },
      },
      [`/${arch}/{path}`]: {
        parameters: [{ name: 'path', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary:
            'the pacman repository (files, HTML listing of folders); Range, HEAD and conditional requests',
          responses: {
            200: { description: 'the file' },
            206: { description: 'a range of it' },
            304: { description: 'not modified' },
            400: BAD,
            404: NOT_FOUND,
            416: text('range not satisfiable'),
          },
        },
      },
    },
  };
}
