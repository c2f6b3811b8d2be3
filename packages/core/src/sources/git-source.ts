/**
 * The custom git source (docs/compatibility.md#sources): a clone of any git repository holding a
 * PKGBUILD; its state is the checkout's `HEAD` commit.
 */
import type { GitSourceJson, InnerSource, SourceOperationOptions } from '../contracts/source.js';
import { InputError } from '../errors.js';
import type { SourceEnvironment } from './environment.js';
import { readPkgbuildFile, readSrcinfoFile } from './files.js';
import { checkGitArgument } from './git.js';

/** JSON tag of {@link GitSource}. */
export const GIT_SOURCE_TYPE = 'GitSource';

/** A git repository with a PKGBUILD at its top. */
export class GitSource implements InnerSource {
  readonly type = GIT_SOURCE_TYPE;
  readonly repository: string;
  /** `HEAD` of the checkout after the last clone or pull */
  lastCommit: string;

  constructor(
    json: { repository: string; lastCommit?: string },
    private readonly env: Pick<SourceEnvironment, 'git' | 'logger'>,
  ) {
    checkGitArgument(json.repository, 'git repository url');
    this.repository = json.repository;
    this.lastCommit = json.lastCommit ?? '';
  }

  /** Reads a `GitSource` JSON object. */
  static fromJSON(json: Record<string, unknown>, env: GitSource['env']): GitSource {
    if (typeof json.repository !== 'string' || typeof json.last_commit !== 'string') {
      throw new InputError('GitSource needs string fields repository and last_commit');
    }
    return new GitSource({ repository: json.repository, lastCommit: json.last_commit }, env);
  }

  describe(): { label: string; url: string | null } {
    return { label: 'git repository', url: this.repository };
  }

  async initialize(dir: string, options: SourceOperationOptions = {}): Promise<void> {
    this.env.logger.debug('initializing git source', { repository: this.repository });
    await this.env.git.clone(this.repository, dir, options);
    this.lastCommit = await this.env.git.headCommit(dir, options);
  }

  async update(dir: string, options: SourceOperationOptions = {}): Promise<void> {
    this.env.logger.debug('updating git source', { repository: this.repository });
    await this.env.git.pull(dir, options);
    this.lastCommit = await this.env.git.headCommit(dir, options);
  }

  state(): string {
    return this.lastCommit;
  }

  async pin(dir: string, commit: string, options: SourceOperationOptions = {}): Promise<void> {
    await this.env.git.resetHard(dir, commit, options);
    this.lastCommit = await this.env.git.headCommit(dir, options);
  }

  pkgbuild(dir: string): Promise<string> {
    return readPkgbuildFile(dir);
  }

  srcinfo(dir: string): Promise<string | null> {
    return readSrcinfoFile(dir);
  }

  toJSON(): GitSourceJson {
    return { type: GIT_SOURCE_TYPE, repository: this.repository, last_commit: this.lastCommit };
  }
}
