/**
 * The AUR source (docs/compatibility.md#sources): a clone of `<AUR_URL>/<base>.git` (or of the
 * base's branch of the GitHub mirror); its state is the AUR's version of the package.
 */
import * as fs from 'node:fs/promises';
import type {
  AurPackageInfo,
  AurSourceJson,
  InnerSource,
  SourceOperationOptions,
} from '../contracts/source.js';
import { InputError } from '../errors.js';
import type { Srcinfo } from '../pacman/srcinfo.js';
import type { SourceEnvironment } from './environment.js';
import { exists, parseSrcinfoOf, readPkgbuildFile, readSrcinfoFile } from './files.js';

/** JSON tag of {@link AurSource}. */
export const AUR_SOURCE_TYPE = 'AurSource';

/** Whether an AUR package base counts as devel: it ends with `-git` (only that suffix, as the original). */
export function isDevelAurBase(base: string): boolean {
  return base.endsWith('-git');
}

/** An AUR package base, checked out with git and versioned by the RPC. */
export class AurSource implements InnerSource {
  readonly type = AUR_SOURCE_TYPE;
  readonly base: string;
  /** the RPC `Version` (or the `.SRCINFO` version when the RPC does not know the base) */
  version: string;
  /** whether the checkout comes from the GitHub mirror */
  mirror: boolean;
  /** the RPC answer of the last lookup, not kept in the JSON */
  private info: AurPackageInfo | undefined;

  constructor(
    json: { base: string; version?: string; mirror?: boolean },
    private readonly env: Pick<
      SourceEnvironment,
      'aur' | 'git' | 'githubMirror' | 'githubMirrorUrl' | 'logger'
    >,
  ) {
    this.base = json.base;
    this.version = json.version ?? '';
    // a new source follows the current setting; a stored one keeps its flag until `update` migrates it
    this.mirror = json.mirror ?? env.githubMirror;
  }

  /** Reads an `AurSource` JSON object; a missing `mirror` is false, as serde's default. */
  static fromJSON(json: Record<string, unknown>, env: AurSource['env']): AurSource {
    if (typeof json.base !== 'string' || typeof json.version !== 'string') {
      throw new InputError('AurSource needs string fields base and version');
    }
    if (json.mirror !== undefined && typeof json.mirror !== 'boolean') {
      throw new InputError('AurSource field mirror must be a boolean');
    }
    return new AurSource({ base: json.base, version: json.version, mirror: json.mirror ?? false }, env);
  }

  describe(): { label: string; url: string | null } {
    return {
      label: this.mirror ? 'aur package, github mirror' : 'aur package',
      url: this.env.aur.listingUrl(this.base),
    };
  }

  async initialize(dir: string, options: SourceOperationOptions = {}): Promise<void> {
    this.env.logger.debug('initializing aur source', { base: this.base, mirror: this.mirror });
    if (this.mirror) {
      await this.env.git.clone(this.env.githubMirrorUrl, dir, { ...options, branch: this.base });
    } else {
      await this.env.git.clone(this.env.aur.repositoryUrl(this.base), dir, options);
    }
    // bases without a pkgname of the same name (`material-symbols-git`) are unknown to `info`, and the
    // mirror has no RPC: the checkout's .SRCINFO gives the version then
    this.version = (await this.rpcVersion(options)) ?? (await this.srcinfoVersion(dir));
  }

  async update(dir: string, options: SourceOperationOptions = {}): Promise<void> {
    // the RPC lookup goes first, before any file access, so that concurrent updates share one request
    const rpc = this.mirror === this.env.githubMirror ? this.rpcVersion(options) : undefined;
    rpc?.catch(() => {}); // awaited below; not an unhandled rejection if a branch returns before
    if (!(await exists(dir))) {
      this.env.logger.warn('source folder does not exist, recreating it', { base: this.base });
      return this.initialize(dir, options);
    }
    if (rpc === undefined) {
      this.env.logger.info('recreating aur source', { base: this.base, mirror: this.env.githubMirror });
      // removing the checkout is simpler than changing its remote
      await fs.rm(dir, { recursive: true, force: true });
      await fs.mkdir(dir, { recursive: true });
      this.mirror = this.env.githubMirror;
      return this.initialize(dir, options);
    }
    const version = await rpc;
    if (version !== undefined) {
      if (version !== this.version) {
        await this.env.git.pull(dir, options);
        this.version = version;
      }
    } else {
      // without an RPC version there is nothing to compare: pull and read the version
      await this.env.git.pull(dir, options);
      this.version = await this.srcinfoVersion(dir);
    }
  }

  state(): string {
    return this.version;
  }

  async pin(dir: string, commit: string, options: SourceOperationOptions = {}): Promise<void> {
    await this.env.git.resetHard(dir, commit, options);
    // the version of the pinned commit, which the RPC may have left behind
    const text = await readSrcinfoFile(dir);
    if (text === null) throw new InputError(`AUR package '${this.base}' has no .SRCINFO at ${commit}`);
    this.version = fullVersion(parseSrcinfoOf(text, '.SRCINFO'));
  }

  aurInfo(): AurPackageInfo | undefined {
    return this.info;
  }

  pkgbuild(dir: string): Promise<string> {
    return readPkgbuildFile(dir);
  }

  srcinfo(dir: string): Promise<string | null> {
    return readSrcinfoFile(dir);
  }

  toJSON(): AurSourceJson {
    return { type: AUR_SOURCE_TYPE, base: this.base, version: this.version, mirror: this.mirror };
  }

  // --- Internal helpers ---

  private async rpcVersion(options: SourceOperationOptions): Promise<string | undefined> {
    if (this.mirror) return undefined;
    const pkg = await this.env.aur.lookup(this.base, options);
    this.info = pkg;
    return pkg?.Version;
  }

  private async srcinfoVersion(dir: string): Promise<string> {
    if (!this.mirror) {
      this.env.logger.warn('version lookup over RPC failed for AUR package, using .SRCINFO', {
        base: this.base,
      });
    }
    const text = await readSrcinfoFile(dir);
    if (text === null) throw new InputError(`AUR package '${this.base}' does not contain a .SRCINFO`);
    return fullVersion(parseSrcinfoOf(text, '.SRCINFO'));
  }
}

/**
 * `[epoch:]pkgver-pkgrel` of a `.SRCINFO` as the `srcinfo` crate's `version()` writes it: an epoch that
 * is there is kept, even `0`, so stored states agree with the original's.
 */
export function fullVersion(srcinfo: Srcinfo): string {
  const { epoch, pkgver, pkgrel } = srcinfo.base;
  return `${epoch !== undefined ? `${epoch}:` : ''}${pkgver}-${pkgrel}`;
}
