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
]);

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

/** `GET /health`. */
export const HealthSchema = z.object({ status: z.literal('ok') });

export type PackageAddRequest = z.output<typeof PackageAddRequestSchema>;
export type PackageBuildRequest = z.output<typeof PackageBuildRequestSchema>;
export type PackageSettingsRequest = z.output<typeof PackageSettingsRequestSchema>;
export type BuildInfo = z.output<typeof BuildInfoSchema>;
export type PackagePeek = z.output<typeof PackagePeekSchema>;
export type PackageInfo = z.output<typeof PackageInfoSchema>;
export type SereneInfo = z.output<typeof SereneInfoSchema>;

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
