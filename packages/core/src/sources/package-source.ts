/**
 * The source wrapper (docs/compatibility.md#sources): devel flag, `.SRCINFO` override,
 * generated `.SRCINFO` and devel revisions around an inner source, and the JSON the original keeps in
 * `package.source`.
 */
import type {
  InnerSource,
  Source,
  SourceJson,
  SourceOperationOptions,
  SrcinfoGenerator,
} from '../contracts/source.js';
import { InputError, SereneError } from '../errors.js';
import type { Logger } from '../logger.js';
import { compareUtf8, lookupDevelRevisions, sortRevisions } from './devel.js';
import { checkSrcinfoOf, parseSrcinfoOf } from './files.js';
import type { Git } from './git.js';

/** What a {@link PackageSource} uses besides its inner source. */
export interface PackageSourceEnvironment {
  git: Git;
  generateSrcinfo: SrcinfoGenerator;
  /** the build architecture: which `source_<arch>` entries devel lookups follow */
  arch: string;
  logger: Logger;
}

/** The wrapper fields of {@link SourceJson}. */
export interface PackageSourceFields {
  devel: boolean;
  srcinfoOverride?: boolean;
  generatedSrcinfo?: string | null;
  develRevisions?: Record<string, string>;
}

/** The original's `Source`: an inner source with the wrapper's settings and generated data. */
export class PackageSource implements Source {
  readonly inner: InnerSource;
  devel: boolean;
  srcinfoOverride: boolean;
  private generated: string | null;
  private revisions: Record<string, string>;

  constructor(
    inner: InnerSource,
    fields: PackageSourceFields,
    private readonly env: PackageSourceEnvironment,
  ) {
    this.inner = inner;
    this.devel = fields.devel;
    this.srcinfoOverride = fields.srcinfoOverride ?? false;
    this.generated = fields.generatedSrcinfo ?? null;
    this.revisions = sortRevisions(fields.develRevisions ?? {});
  }

  get generatedSrcinfo(): string | null {
    return this.generated;
  }

  get develRevisions(): Readonly<Record<string, string>> {
    return this.revisions;
  }

  describe(): { label: string; url: string | null } {
    return this.inner.describe();
  }

  async initialize(dir: string, options: SourceOperationOptions = {}): Promise<void> {
    await this.inner.initialize(dir, options);
    // the original runs a whole update after the inner initialization; the inner update it starts with
    // finds nothing new right after a checkout, so only the wrapper's part runs here
    await this.refresh(dir, true, options);
  }

  async update(dir: string, options: SourceOperationOptions = {}): Promise<void> {
    const before = this.inner.state();
    await this.inner.update(dir, options);
    await this.refresh(dir, this.inner.state() !== before, options);
  }

  async pin(dir: string, commit: string, options: SourceOperationOptions = {}): Promise<void> {
    if (!this.inner.pin) throw new InputError(`a ${this.inner.type} has no git revisions to pin`);
    const before = this.inner.state();
    await this.inner.pin(dir, commit, options);
    await this.refresh(dir, this.inner.state() !== before, options);
  }

  state(): string {
    if (!this.devel) return this.inner.state();
    // BTreeMap order: ascending by URL
    const keys = Object.keys(this.revisions).sort(compareUtf8);
    return this.inner.state() + keys.map((key) => this.revisions[key]).join('');
  }

  async srcinfo(dir: string): Promise<string> {
    const text = this.srcinfoOverride ? this.generated : ((await this.innerSrcinfo(dir)) ?? this.generated);
    if (text === null) {
      throw new SereneError(
        'failed to get a srcinfo for a package, the source was not initialized or updated',
      );
    }
    return text;
  }

  pkgbuild(dir: string): Promise<string> {
    return this.inner.pkgbuild(dir);
  }

  toJSON(): SourceJson {
    return {
      devel: this.devel,
      srcinfo_override: this.srcinfoOverride,
      srcinfo: this.generated,
      devel_revisions: sortRevisions(this.revisions),
      inner: this.inner.toJSON(),
    };
  }

  // --- Internal helpers ---

  /** The wrapper's part of an update: `.SRCINFO` generation, then devel revisions. */
  private async refresh(dir: string, changed: boolean, options: SourceOperationOptions): Promise<void> {
    const innerHasSrcinfo = (await this.innerSrcinfo(dir)) !== null;
    if ((changed || this.generated === null) && (!innerHasSrcinfo || this.srcinfoOverride)) {
      this.env.logger.debug('generating .SRCINFO', { dir });
      let text: string;
      try {
        text = await this.env.generateSrcinfo(dir, options);
        checkSrcinfoOf(text, 'the generated .SRCINFO');
      } catch (error) {
        options.signal?.throwIfAborted();
        throw new SereneError('failed to generate srcinfo for package', { cause: error });
      }
      this.generated = text;
    }
    if (this.devel) {
      const srcinfo = parseSrcinfoOf(await this.srcinfo(dir), '.SRCINFO');
      this.revisions = await lookupDevelRevisions(this.env.git, srcinfo, this.env.arch, options);
    }
  }

  /** The inner source's own `.SRCINFO`, checked to parse. */
  private async innerSrcinfo(dir: string): Promise<string | null> {
    const text = await this.inner.srcinfo(dir);
    if (text !== null) checkSrcinfoOf(text, '.SRCINFO');
    return text;
  }
}

/** Reads the wrapper fields of a {@link SourceJson}-shaped object; throws {@link InputError} when malformed. */
export function readSourceJson(json: Record<string, unknown>): PackageSourceFields & {
  inner: Record<string, unknown> & { type: string };
} {
  if ('type' in json && !('inner' in json)) {
    throw new InputError('source JSON is in the legacy (pre-0.4.1) format; it must be migrated first');
  }
  const { devel, srcinfo_override, srcinfo, devel_revisions, inner } = json;
  if (typeof devel !== 'boolean') throw new InputError('source JSON needs a boolean devel');
  if (typeof srcinfo_override !== 'boolean')
    throw new InputError('source JSON needs a boolean srcinfo_override');
  if (srcinfo !== null && srcinfo !== undefined && typeof srcinfo !== 'string') {
    throw new InputError('source JSON field srcinfo must be a string or null');
  }
  if (typeof srcinfo === 'string') checkSrcinfoOf(srcinfo, 'the stored .SRCINFO');
  const revisions: Record<string, string> = {};
  if (devel_revisions !== undefined) {
    if (typeof devel_revisions !== 'object' || devel_revisions === null || Array.isArray(devel_revisions)) {
      throw new InputError('source JSON field devel_revisions must be an object');
    }
    for (const [url, commit] of Object.entries(devel_revisions)) {
      if (typeof commit !== 'string') throw new InputError(`devel revision of '${url}' is not a string`);
      revisions[url] = commit;
    }
  }
  if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) {
    throw new InputError('source JSON needs an inner object');
  }
  const tag = (inner as Record<string, unknown>).type;
  if (typeof tag !== 'string') throw new InputError('inner source JSON needs a string type');
  return {
    devel,
    srcinfoOverride: srcinfo_override,
    generatedSrcinfo: srcinfo ?? null,
    develRevisions: revisions,
    inner: inner as Record<string, unknown> & { type: string },
  };
}
