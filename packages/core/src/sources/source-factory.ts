/**
 * The source factory: sources from add requests (resolving AUR names to their pkgbase) and from the
 * stored JSON; the AUR, mirror and git settings of the host arrive here as options.
 */
import type {
  AurDependencyPlan,
  AurDependencyQuery,
  AurDependencyTarget,
  InnerSource,
  InnerSourceJson,
  Source,
  SourceFactory,
  SourceOperationOptions,
  SourceSpec,
  SrcinfoGenerator,
} from '../contracts/source.js';
import { InputError, NotFoundError } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';
import { type AurClient, type AurClientOptions, createAurClient } from './aur-client.js';
import { resolveAurDependencies, resolveAurDependenciesOf } from './aur-dependencies.js';
import { AUR_SOURCE_TYPE, AurSource, isDevelAurBase } from './aur-source.js';
import { DEFAULT_AUR_GITHUB_MIRROR_URL, type SourceEnvironment } from './environment.js';
import { createGit, type Git } from './git.js';
import { GIT_SOURCE_TYPE, GitSource } from './git-source.js';
import { PackageSource, readSourceJson } from './package-source.js';
import { RAW_SOURCE_TYPE, RawSource } from './raw-source.js';

/** Reads one inner kind back from its JSON (a plugin's kind, or the internal `CliSource`). */
export type InnerSourceReader = (json: InnerSourceJson, env: SourceEnvironment) => InnerSource;

/** Options of {@link createSourceFactory}. */
export interface SourceFactoryOptions {
  /** Makes the `.SRCINFO` of a source folder in an isolated environment (`Runner.printSrcinfo`). */
  generateSrcinfo: SrcinfoGenerator;
  /**
   * The build architecture (`ARCH`): devel lookups follow `source_<arch>` entries.
   * @default 'x86_64'
   */
  arch?: string;
  /** The AUR RPC client; made from `aur` options when not given. */
  aurClient?: AurClient;
  /** Options of the AUR client made when `aurClient` is not given (`AUR_URL`, timeout, retries). */
  aur?: AurClientOptions;
  /**
   * `AUR_GITHUB_MIRROR`: new and updated AUR sources use the mirror's branches, without RPC.
   * @default false
   */
  githubMirror?: boolean;
  /**
   * Git URL of the GitHub mirror of the AUR.
   * @default 'https://github.com/archlinux/aur'
   */
  githubMirrorUrl?: string;
  /**
   * `AUR_RESOLVE_ADDING`: AUR names are resolved to their pkgbase by the RPC; when false the name must
   * be a branch (pkgbase) of the mirror.
   * @default true
   */
  resolveAdding?: boolean;
  /** The git wrapper; a default one (8 processes at once) when not given. */
  git?: Git;
  /** Readers of further inner kinds, by JSON tag. */
  innerKinds?: Record<string, InnerSourceReader>;
  logger?: Logger;
}

/** A {@link SourceFactory} that also hands out what its sources share. */
export interface SereneSourceFactory extends SourceFactory {
  readonly environment: SourceEnvironment;
  /** Wraps an inner source of any kind (the internal CLI source, a plugin's). */
  wrap(inner: InnerSource, devel: boolean): Source;
}

/** Creates the source factory; nothing is contacted until a source is created or updated. */
export function createSourceFactory(options: SourceFactoryOptions): SereneSourceFactory {
  const logger = options.logger ?? createNoopLogger();
  const env: SourceEnvironment = {
    aur: options.aurClient ?? createAurClient({ logger, ...options.aur }),
    git: options.git ?? createGit({ logger }),
    generateSrcinfo: options.generateSrcinfo,
    arch: options.arch ?? 'x86_64',
    githubMirror: options.githubMirror ?? false,
    githubMirrorUrl: options.githubMirrorUrl ?? DEFAULT_AUR_GITHUB_MIRROR_URL,
    logger,
  };
  const resolveAdding = options.resolveAdding ?? true;
  const extraKinds = options.innerKinds ?? {};

  const wrap = (inner: InnerSource, devel: boolean): Source => new PackageSource(inner, { devel }, env);

  function createAur(base: string): Source {
    if (base === '' || base.startsWith('-')) throw new InputError(`invalid AUR package base '${base}'`);
    // the devel flag comes from the base's name only; an add request cannot force it
    return wrap(new AurSource({ base }, env), isDevelAurBase(base));
  }

  async function aurBase(name: string, opts: SourceOperationOptions): Promise<string> {
    if (resolveAdding) {
      const pkg = await env.aur.lookup(name, opts);
      if (!pkg) throw new NotFoundError(`aur package '${name}' does not exist`);
      return pkg.PackageBase;
    }
    if (name === '' || name.startsWith('-')) throw new InputError(`invalid AUR package base '${name}'`);
    const found = await env.git.findRemoteRef(env.githubMirrorUrl, `refs/heads/${name}`, opts);
    if (found === undefined) {
      throw new NotFoundError(
        `aur package base '${name}' does not exist on the github mirror (the package base must be given, as the mirror is used)`,
      );
    }
    return name;
  }

  function readInner(json: Record<string, unknown> & { type: string }): InnerSource {
    switch (json.type) {
      case AUR_SOURCE_TYPE:
        return AurSource.fromJSON(json, env);
      case GIT_SOURCE_TYPE:
        return GitSource.fromJSON(json, env);
      case RAW_SOURCE_TYPE:
        return RawSource.fromJSON(json);
      default: {
        const reader = Object.hasOwn(extraKinds, json.type) ? extraKinds[json.type] : undefined;
        if (!reader) throw new InputError(`unknown source type '${json.type}'`);
        return reader(json, env);
      }
    }
  }

  return {
    environment: env,
    wrap,
    async create(spec: SourceSpec, opts: SourceOperationOptions = {}): Promise<Source> {
      switch (spec.type) {
        case 'aur':
          return createAur(await aurBase(spec.name, opts));
        case 'git':
          return wrap(new GitSource({ repository: spec.url }, env), spec.devel);
        case 'raw':
          return wrap(new RawSource(spec.pkgbuild), spec.devel);
        default:
          throw new InputError(`unknown source type '${(spec as { type: unknown }).type}'`);
      }
    },
    createAur,
    async resolveAurDependencies(
      target: AurDependencyTarget,
      query: AurDependencyQuery,
    ): Promise<AurDependencyPlan | null> {
      if (!resolveAdding) return null;
      const options = {
        signal: query.signal,
        isSatisfied: (dependency: string) => query.isSatisfied(dependency),
      };
      const result =
        'name' in target
          ? await resolveAurDependencies(env.aur, target.name, options)
          : await resolveAurDependenciesOf(env.aur, target.dependencies, options);
      return { bases: result.bases, missing: result.missing };
    },
    restore(json: Record<string, unknown> | string): Source {
      let value: unknown = json;
      if (typeof json === 'string') {
        try {
          value = JSON.parse(json);
        } catch (error) {
          throw new InputError('source JSON is not valid JSON', { cause: error });
        }
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new InputError('source JSON is not an object');
      }
      const fields = readSourceJson(value as Record<string, unknown>);
      return new PackageSource(readInner(fields.inner), fields, env);
    },
  };
}
