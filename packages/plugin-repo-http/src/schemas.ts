/**
 * The payloads of the API as zod schemas: one per request body (validated at the edge) and one per
 * response (documented in `/openapi.json`). Field names and shapes are the original's (docs/compatibility.md#json-types).
 */
import { MAKEPKG_FLAGS, packageNameProblem } from '@serene/core';
import { z } from 'zod';

// --- NAMES ---

export { MAX_NAME_LENGTH } from '@serene/core';

/** Why `name` is not an acceptable pkgbase or pkgname (core's package-name rule), or undefined. */
export const nameProblem = packageNameProblem;

/** A user-supplied text, quoted and cut short so that an error message stays readable. */
export function quote(text: string, max = 64): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return JSON.stringify(cut);
}

/** A pkgbase or pkgname (see {@link nameProblem}). */
export const PackageName = z.string().check((ctx) => {
  const problem = nameProblem(ctx.value);
  if (problem)
    ctx.issues.push({ code: 'custom', input: ctx.value, message: `not a valid package name: ${problem}` });
});

const GitUrl = z
  .string()
  .min(1)
  .max(4096)
  .check((ctx) => {
    // a leading '-' would read as an option of git; control characters have no place in a URL
    if (ctx.value.startsWith('-') || /[\u0000-\u001f\u007f]/.test(ctx.value)) {
      ctx.issues.push({ code: 'custom', input: ctx.value, message: 'not a valid git repository URL' });
    }
  });

// --- REQUESTS ---

/** Where a package comes from, tagged by `type` (`PackageAddRequest.source`). */
export const SourceSpecSchema = z.discriminatedUnion('type', [
  z
    .object({ type: z.literal('aur'), name: PackageName })
    .meta({ description: 'an AUR package, by pkgname or pkgbase' }),
  z
    .object({ type: z.literal('git'), url: GitUrl, devel: z.boolean() })
    .meta({ description: 'a git repository holding a PKGBUILD' }),
  z
    .object({ type: z.literal('raw'), pkgbuild: z.string().min(1), devel: z.boolean() })
    .meta({ description: 'a PKGBUILD given as text' }),
]);

/** Body of `POST /package/add`. */
export const PackageAddRequestSchema = z.object({
  replace: z
    .boolean()
    .meta({ description: 'replace the source of an already added package with the same base' }),
  resolve: z.boolean().default(true).meta({ description: 'order the initial build by dependencies' }),
  build: z.boolean().default(true).meta({ description: 'start an initial build right away' }),
  source: SourceSpecSchema,
});

/** Body of `POST /build` and `POST /build/all` (all four fields required, as the original). */
export const PackageBuildRequestSchema = z.object({
  packages: z.array(PackageName).max(100_000).meta({ description: 'pkgbases; ignored by /build/all' }),
  clean: z.boolean(),
  resolve: z.boolean(),
  force: z.boolean(),
});

/** A makepkg flag, lower case (`MakepkgFlag`). */
export const MakepkgFlagSchema = z.enum(MAKEPKG_FLAGS);

/** Body of `POST /package/{name}/set`: `{"key": <setting>, "value": <value>}`. */
export const PackageSettingsRequestSchema = z.discriminatedUnion('key', [
  z.object({
    key: z.enum(['clean', 'private', 'enabled', 'dependency', 'devel', 'srcinfooverride']),
    value: z.boolean(),
  }),
  z.object({
    key: z.literal('schedule'),
    value: z
      .string()
      .max(1000)
      .nullable()
      .meta({ description: 'cron with seconds (UTC); null for the default' }),
  }),
  z.object({ key: z.literal('prepare'), value: z.string().nullable() }),
  z.object({ key: z.literal('flags'), value: z.array(MakepkgFlagSchema).max(MAKEPKG_FLAGS.length * 4) }),
  // the update gate (beyond the original; docs/update-gate.md): null takes the package's override away
  z.object({
    key: z.literal('cooloff'),
    value: z
      .string()
      .max(100)
      .nullable()
      .meta({ description: 'cool-off of updates: `0`, seconds, or a number with s, m, h, d or w (`2d`)' }),
  }),
  z.object({
    key: z.literal('trust'),
    value: z.boolean().nullable().meta({ description: 'hold updates after a maintainer or packager change' }),
  }),
  z.object({
    key: z.literal('review'),
    value: z
      .enum(['off', 'diff', 'all'])
      .nullable()
      .meta({ description: '`diff`: hold anything beyond a version bump; `all`: hold every update' }),
  }),
]);

/** Body of `POST /review/{name}/approve` and `/reject`: the revision the reviewer saw. */
export const ReviewDecisionRequestSchema = z.object({
  revision: z.string().max(100).meta({
    description: 'the held commit (at least its first 7 hex digits), as `GET /review/{name}` shows it',
  }),
});

// --- RESPONSES ---

const Timestamp = z.iso.datetime().meta({ description: 'RFC 3339, UTC' });

/** `BuildProgress`. */
export const BuildProgressSchema = z.enum(['resolve', 'update', 'build', 'publish', 'clean']);

/** `BuildState`, adjacently tagged (`state`, `info`). */
export const BuildStateSchema = z.discriminatedUnion('state', [
  z.object({ state: z.literal('pending') }),
  z.object({ state: z.literal('cancelled'), info: z.string() }),
  z.object({ state: z.literal('running'), info: BuildProgressSchema }),
  z.object({ state: z.literal('success') }),
  z.object({ state: z.literal('failure') }),
  z.object({ state: z.literal('fatal'), info: z.tuple([z.string(), BuildProgressSchema]) }),
]);

/** `BuildReason`. */
export const BuildReasonSchema = z.enum(['webhook', 'manual', 'schedule', 'initial', 'unknown']);

const Count = z.number().int().nullable();

/** `BuildInfo`: one build. */
export const BuildInfoSchema = z.object({
  state: BuildStateSchema,
  reason: BuildReasonSchema,
  version: z.string().nullable().meta({ description: 'published pkgver' }),
  started: Timestamp.meta({ description: 'start time, also the identity of the build' }),
  ended: Timestamp.nullable(),
  mem_peak: Count.meta({ description: 'peak memory, bytes' }),
  cpu_user: Count.meta({ description: 'user CPU time, microseconds' }),
  cpu_system: Count.meta({ description: 'system CPU time, microseconds' }),
  io_tbr: Count.meta({ description: 'bytes read' }),
  io_tbw: Count.meta({ description: 'bytes written' }),
});

/** `PackagePeek`: an entry of `GET /package/list`. */
export const PackagePeekSchema = z.object({
  base: z.string(),
  members: z.array(z.string()),
  version: z.string().nullable(),
  enabled: z.boolean(),
  devel: z.boolean(),
  build: BuildInfoSchema.nullable(),
  added: Timestamp,
});

/** `PackageInfo`: one package. */
export const PackageInfoSchema = z.object({
  base: z.string(),
  members: z.array(z.string()),
  description: z.string().nullable(),
  upstream_url: z.string().nullable(),
  builds: z.number().int(),
  version: z.string().nullable(),
  source: z.string(),
  source_url: z.string().nullable(),
  devel: z.boolean(),
  srcinfo_override: z.boolean(),
  enabled: z.boolean(),
  clean: z.boolean(),
  private: z.boolean(),
  dependency: z.boolean(),
  schedule: z.string(),
  schedule_changed: z.boolean(),
  prepare_commands: z.string().nullable(),
  makepkg_flags: z.array(MakepkgFlagSchema),
  added: Timestamp,
});

/** `SereneInfo`: `GET /`. */
export const SereneInfoSchema = z.object({
  version: z.string(),
  started: Timestamp,
  name: z.string(),
  architecture: z.string(),
  readable: z.boolean(),
  signed: z.boolean(),
});

/** The update policy of a package (`GatePolicy`). */
export const GatePolicySchema = z.object({
  cool_off: z.string().meta({ description: 'cool-off of updates (`0`: off, else `2d`, `36h`, ...)' }),
  trust: z.boolean().meta({ description: 'maintainer and packager changes hold updates' }),
  review: z.enum(['off', 'diff', 'all']),
});

const TrustSchema = z.object({
  maintainer: z
    .string()
    .nullable()
    .optional()
    .meta({ description: 'AUR maintainer; null: orphaned; missing: unknown (git sources, GitHub mirror)' }),
  co_maintainers: z.array(z.string()),
  submitter: z.string().nullable().optional(),
  packagers: z.array(z.string()).meta({ description: '`Name <email>` of the commit authors' }),
});

/** `GET /package/{name}/policy`. */
export const PackagePolicySchema = z.object({
  effective: GatePolicySchema.meta({ description: 'what applies to the package' }),
  overrides: GatePolicySchema.partial().meta({ description: "the package's own settings" }),
  inherits_from: z
    .string()
    .nullable()
    .meta({ description: 'the package this one was added as a dependency of; its overrides apply too' }),
  accepted_revision: z
    .string()
    .nullable()
    .meta({ description: "the last built, approved or added revision of the package's repository" }),
  trust: TrustSchema.nullable().meta({
    description: 'who is trusted: recorded at add, extended by approvals',
  }),
});

/** A held update (`GET /review`). */
export const HeldUpdateSchema = z.object({
  base: z.string(),
  revision: z.string().meta({ description: 'the held commit: approve or reject exactly this one' }),
  version: z.string().meta({ description: 'full version of the held revision' }),
  base_revision: z
    .string()
    .nullable()
    .meta({ description: 'the last accepted (built or approved) revision' }),
  reasons: z.array(
    z.object({
      kind: z.enum([
        'cool-off',
        'maintainer',
        'orphaned',
        'adopted',
        'co-maintainer',
        'packager',
        'blocked',
        'diff',
        'review',
        'error',
      ]),
      message: z.string(),
      until: Timestamp.optional().meta({ description: 'cool-off: when it ends' }),
    }),
  ),
  detected: Timestamp.meta({ description: 'when serene first held this revision' }),
  modified: Timestamp.meta({
    description: 'when the package last changed upstream (AUR LastModified, else commit time)',
  }),
  trust: TrustSchema,
  files: z.array(z.object({ status: z.string(), path: z.string() })),
  policy: GatePolicySchema,
});

/** `GET /review/{name}`: a held update with its diff. */
export const HeldUpdateReviewSchema = HeldUpdateSchema.extend({
  diff: z.string().meta({ description: 'unified diff of the package repository since base_revision' }),
});

/** `POST /review/{name}/approve` and `/reject`. */
export const ReviewDecisionSchema = z.object({
  base: z.string(),
  revision: z.string().meta({ description: 'the full approved or rejected commit' }),
});

// --- BEYOND THE ORIGINAL: the queue, recent builds, the server ---

/** Where a build in flight stands. */
export const BuildPhaseSchema = z.enum(['waiting', 'queued', 'running']).meta({
  description:
    '`waiting` for builds of its session it depends on, `queued` for a free build slot, `running` on the runner',
});

/** An entry of `GET /queue`: a build queued or running. */
export const QueueEntrySchema = z.object({
  base: z.string(),
  started: Timestamp.meta({ description: 'when it was queued, also the identity of the build' }),
  reason: BuildReasonSchema,
  state: BuildStateSchema,
  phase: BuildPhaseSchema,
  waiting_for: z.array(z.string()).meta({ description: 'bases it still waits for (phase `waiting`)' }),
  engine: z.string().nullable().meta({
    description:
      'the engine running it (an `Engine` name); null while it waits for its turn or for a free engine',
  }),
  architecture: z.string().meta({ description: 'the architecture it is built for' }),
});

/** An entry of `GET /builds`: a build with its package. */
export const RecentBuildSchema = BuildInfoSchema.extend({
  base: z.string(),
  architecture: z.string().meta({ description: 'what the build was for (docs/engines.md#architectures)' }),
  engine: z.string().nullable().meta({
    description:
      'the engine it ran on (an `Engine` name); null before its run ended, when it ran on none, and for builds recorded before serene recorded it',
  }),
});

/** An entry of `GET /engines`: one engine that builds packages, with its state and load. */
export const EngineSchema = z.object({
  name: z.string().meta({ description: 'unique; as `QueueEntry.engine` and build logs name it' }),
  architecture: z
    .string()
    .nullable()
    .meta({ description: 'the architecture it builds for; null until it answered once' }),
  state: z.enum(['up', 'down', 'unknown']).meta({
    description: '`up` answers and takes builds, `down` does not answer, `unknown` not asked yet',
  }),
  since: Timestamp.meta({ description: 'when the state last changed (the start when it never did)' }),
  reason: z.string().nullable().meta({ description: 'why it is down; null otherwise' }),
  capacity: z.number().int().meta({ description: 'builds it runs at once' }),
  running: z.number().int().meta({ description: 'builds running on it now: its load' }),
  builds: z.array(z.string()).meta({ description: 'bases of the builds running on it now' }),
  labels: z.array(z.string()).meta({ description: 'labels packages are pinned to (`ENGINE_PINS`)' }),
});

/** `GET /server`: what an operator needs to see of the server. */
export const ServerDetailsSchema = SereneInfoSchema.extend({
  fingerprint: z.string().nullable().meta({ description: 'of the signing key; null when unsigned' }),
  engines: z
    .array(EngineSchema)
    .meta({ description: 'what builds packages (as `GET /engines`): one engine without `ENGINES`' }),
  architectures: z.array(z.string()).meta({
    description: 'the architectures served, each at `/<arch>/`, `architecture` (the primary) first',
  }),
  packages: z.number().int(),
  queue: z.object({ running: z.number().int(), queued: z.number().int() }),
});

/** `GET /whoami`: the name of the caller's secret. */
export const WhoAmISchema = z.object({
  name: z.string().meta({ description: "the rest of the secret's line in authorized_secrets" }),
});

/** Data of a `change` event of `GET /events`. */
export const StateEventSchema = z.object({
  base: z.string(),
  started: Timestamp,
  reason: BuildReasonSchema.nullable(),
  state: BuildStateSchema,
});

/** `GET /health`. */
export const HealthSchema = z.object({ status: z.literal('ok') });

export type PackageAddRequest = z.output<typeof PackageAddRequestSchema>;
export type PackageBuildRequest = z.output<typeof PackageBuildRequestSchema>;
export type PackageSettingsRequest = z.output<typeof PackageSettingsRequestSchema>;
export type BuildInfo = z.output<typeof BuildInfoSchema>;
export type PackagePeek = z.output<typeof PackagePeekSchema>;
export type PackageInfo = z.output<typeof PackageInfoSchema>;
export type SereneInfo = z.output<typeof SereneInfoSchema>;
export type GatePolicyJson = z.output<typeof GatePolicySchema>;
export type PackagePolicy = z.output<typeof PackagePolicySchema>;
export type HeldUpdateJson = z.output<typeof HeldUpdateSchema>;
export type HeldUpdateReview = z.output<typeof HeldUpdateReviewSchema>;
export type QueueEntry = z.output<typeof QueueEntrySchema>;
export type RecentBuild = z.output<typeof RecentBuildSchema>;
export type ServerDetails = z.output<typeof ServerDetailsSchema>;
export type EngineJson = z.output<typeof EngineSchema>;
export type StateEvent = z.output<typeof StateEventSchema>;

// --- ERRORS ---

/** One line per problem of a rejected body: `path: message`, the value quoted where it helps. */
export function describeIssues(error: z.ZodError, input: unknown): string {
  return error.issues
    .map((issue) => {
      const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      if (issue.code === 'invalid_union' && 'discriminator' in issue && 'options' in issue) {
        const options = (issue.options as unknown[]).map(String).join(', ');
        const value = valueAt(input, issue.path);
        if (value === undefined) return `${where}missing field, expected one of ${options}`;
        const shown =
          typeof value === 'string' ? quote(value) : quote(JSON.stringify(value) ?? String(value));
        return `${where}unknown value ${shown}, expected one of ${options}`;
      }
      if (issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined) {
        return `${where}missing field (expected ${issue.expected})`;
      }
      return `${where}${issue.message}`;
    })
    .join('; ');
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let current = input;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    if (!Object.hasOwn(current, key)) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
