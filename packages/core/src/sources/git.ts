/**
 * The `git` command line, wrapped: clone, pull, `HEAD` and `ls-remote`, as the original runs them
 * (docs/compatibility.md#sources). Arguments go straight to `execFile` (no shell); URLs that would read as
 * options are refused, and git never prompts for credentials.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { createLimiter } from '../concurrency.js';
import type { SourceOperationOptions } from '../contracts/source.js';
import { InputError, SereneError } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';

/** A git command failed; `stderr` holds what git said. */
export class GitError extends SereneError {
  /** git's error output, trimmed */
  readonly stderr: string;
  /** exit code, or null when git was killed (timeout, abort) */
  readonly exitCode: number | null;

  constructor(message: string, stderr: string, exitCode: number | null, options?: { cause?: unknown }) {
    super(stderr === '' ? message : `${message}: ${stderr}`, options);
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

/** One line of `git ls-remote`. */
export interface RemoteRef {
  commit: string;
  ref: string;
}

/** Options of {@link createGit}. */
export interface GitOptions {
  /**
   * The git program.
   * @default 'git'
   */
  program?: string;
  /**
   * Most git processes running at once; update checks of many packages queue behind it.
   * @default 8
   */
  concurrency?: number;
  /**
   * Milliseconds after which one git command is killed.
   * @default 600000
   */
  timeoutMs?: number;
  /** Environment of git processes; `GIT_TERMINAL_PROMPT=0` and `LC_ALL=C` are always set on top. */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

/** The git operations sources need. */
export interface Git {
  /** `git clone [--single-branch --branch <branch>] <url> .` in `dir` (created when missing). */
  clone(url: string, dir: string, options?: SourceOperationOptions & { branch?: string }): Promise<void>;
  /** `git pull --ff-only` in `dir`. */
  pull(dir: string, options?: SourceOperationOptions): Promise<void>;
  /** `git rev-parse HEAD` in `dir`. */
  headCommit(dir: string, options?: SourceOperationOptions): Promise<string>;
  /** `git ls-remote <url> [<pattern>...]`. */
  lsRemote(url: string, patterns?: readonly string[], options?: SourceOperationOptions): Promise<RemoteRef[]>;
  /** The commit `ref` points to on the remote, or undefined when the remote has no such ref. */
  findRemoteRef(url: string, ref: string, options?: SourceOperationOptions): Promise<string | undefined>;
  /** The full commit id `rev` names in the repository in `dir`, or undefined when it names no commit. */
  resolveCommit(dir: string, rev: string, options?: SourceOperationOptions): Promise<string | undefined>;
  /** `git reset --hard <commit>` in `dir`: the checkout (and its branch) at that commit. */
  resetHard(dir: string, commit: string, options?: SourceOperationOptions): Promise<void>;
  /** Author and committer time of one commit. */
  commitInfo(dir: string, commit: string, options?: SourceOperationOptions): Promise<CommitInfo>;
  /** The commits reachable from `to` but not from `from` (all of `to`'s history without `from`), newest first. */
  log(
    dir: string,
    from: string | undefined,
    to: string,
    options?: SourceOperationOptions,
  ): Promise<CommitInfo[]>;
  /** The paths that differ between the trees of two commits, with git's status letter (A, M, D, T). */
  changedFiles(
    dir: string,
    from: string,
    to: string,
    options?: SourceOperationOptions,
  ): Promise<ChangedFile[]>;
  /** `git diff` between two commits as a unified patch (no colour, no external diff, no renames). */
  diff(dir: string, from: string, to: string, options?: SourceOperationOptions): Promise<string>;
  /** A file's text at a commit, or null when the commit has no such file. */
  showFile(
    dir: string,
    commit: string,
    file: string,
    options?: SourceOperationOptions,
  ): Promise<string | null>;
}

/** One commit of a package's history. */
export interface CommitInfo {
  commit: string;
  /** `Name <email>` of the author: the packager who wrote the change */
  author: string;
  /** committer time: when the commit was made (pushed, for the AUR and its mirror) */
  committed: Date;
}

/** One path of {@link Git.changedFiles}. */
export interface ChangedFile {
  /** `A` added, `M` modified, `D` deleted, `T` type changed (file, link, executable bit) */
  status: string;
  path: string;
}

/** Refuses a URL (or ref) that git would read as an option, or that is empty. */
export function checkGitArgument(value: string, what: string): void {
  if (value === '') throw new InputError(`${what} is empty`);
  if (value.startsWith('-')) throw new InputError(`${what} '${value}' starts with '-'`);
  if (/[\0\n\r]/.test(value)) throw new InputError(`${what} contains control characters`);
}

/** Creates the git wrapper; no process runs until the first call. */
export function createGit(options: GitOptions = {}): Git {
  const program = options.program ?? 'git';
  const timeout = options.timeoutMs ?? 600_000;
  const logger = options.logger ?? createNoopLogger();
  const limit = createLimiter(options.concurrency ?? 8);
  const base = options.env ?? process.env;
  const env: NodeJS.ProcessEnv = {
    ...base,
    GIT_TERMINAL_PROMPT: '0',
    // no askpass helper either: a missing credential is an error, never a hanging prompt
    GIT_ASKPASS: '/bin/true',
    SSH_ASKPASS: '/bin/true',
    GIT_SSH_COMMAND: base.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes',
    LC_ALL: 'C',
  };
  // the `ext::` transport runs arbitrary commands; it is off by default but a config could turn it on
  const baseArgs = ['-c', 'protocol.ext.allow=never'];

  const run = (args: string[], cwd: string | undefined, signal: AbortSignal | undefined) =>
    limit(
      () =>
        new Promise<{ stdout: string; stderr: string; code: number | null; error?: Error }>((resolve) => {
          logger.debug('git', { args, cwd });
          execFile(
            program,
            [...baseArgs, ...args],
            { cwd, env, timeout, signal, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8', windowsHide: true },
            (error, stdout, stderr) => {
              if (!error) return resolve({ stdout, stderr, code: 0 });
              const code = typeof error.code === 'number' ? error.code : null;
              resolve({ stdout, stderr, code, error });
            },
          );
        }),
    );

  const checked = async (message: string, args: string[], cwd: string | undefined, signal?: AbortSignal) => {
    signal?.throwIfAborted();
    const result = await run(args, cwd, signal);
    if (result.error) {
      if (signal?.aborted) throw signal.reason;
      const detail = result.stderr.trim() || (result.code === null ? result.error.message : '');
      throw new GitError(message, detail, result.code, { cause: result.error });
    }
    return result.stdout;
  };

  const lsRemote: Git['lsRemote'] = async (url, patterns = [], opts = {}) => {
    checkGitArgument(url, 'git remote url');
    const stdout = await checked(
      `failed to check remote ${url}`,
      ['ls-remote', '--', url, ...patterns],
      undefined,
      opts.signal,
    );
    return stdout
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '')
      .map((line) => {
        const [commit = '', ref = ''] = line.split(/\s+/);
        return { commit, ref };
      });
  };

  const checkRev = (rev: string, what: string): void => {
    checkGitArgument(rev, what);
    if (!/^[0-9A-Za-z._/^~@{}-]+$/.test(rev)) throw new InputError(`${what} '${rev}' is not a git revision`);
  };

  // NUL-separated fields of one commit per record: commit, author, committer time
  const LOG_FORMAT = '--format=%H%x00%an <%ae>%x00%ct%x00';
  const readLog = (stdout: string): CommitInfo[] => {
    const fields = stdout.split('\0');
    const commits: CommitInfo[] = [];
    for (let i = 0; i + 2 < fields.length; i += 3) {
      commits.push({
        commit: fields[i]!.trim(),
        author: fields[i + 1]!,
        committed: new Date(Number(fields[i + 2]) * 1000),
      });
    }
    return commits;
  };

  return {
    async resolveCommit(dir, rev, opts = {}) {
      checkRev(rev, 'git revision');
      opts.signal?.throwIfAborted();
      const result = await run(
        ['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`],
        dir,
        opts.signal,
      );
      if (result.error) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (result.code === 1) return undefined;
        throw new GitError('failed to resolve a git revision', result.stderr.trim(), result.code, {
          cause: result.error,
        });
      }
      return result.stdout.trim();
    },
    async resetHard(dir, commit, opts = {}) {
      checkRev(commit, 'git commit');
      await checked(
        'failed to reset the checkout',
        ['reset', '--quiet', '--hard', commit, '--'],
        dir,
        opts.signal,
      );
    },
    async commitInfo(dir, commit, opts = {}) {
      checkRev(commit, 'git commit');
      const stdout = await checked(
        'failed to read a commit',
        ['show', '-s', LOG_FORMAT, commit, '--'],
        dir,
        opts.signal,
      );
      const [info] = readLog(stdout);
      if (!info) throw new GitError('failed to read a commit', `no commit ${commit}`, 0);
      return info;
    },
    async log(dir, from, to, opts = {}) {
      checkRev(to, 'git commit');
      if (from !== undefined) checkRev(from, 'git commit');
      const range = from === undefined ? [to] : [`${from}..${to}`];
      const stdout = await checked(
        'failed to read the history',
        ['log', LOG_FORMAT, ...range, '--'],
        dir,
        opts.signal,
      );
      return readLog(stdout);
    },
    async changedFiles(dir, from, to, opts = {}) {
      checkRev(from, 'git commit');
      checkRev(to, 'git commit');
      const stdout = await checked(
        'failed to compare commits',
        ['diff', '--no-renames', '--name-status', '-z', from, to, '--'],
        dir,
        opts.signal,
      );
      const fields = stdout.split('\0');
      const files: ChangedFile[] = [];
      for (let i = 0; i + 1 < fields.length; i += 2) files.push({ status: fields[i]!, path: fields[i + 1]! });
      return files;
    },
    async diff(dir, from, to, opts = {}) {
      checkRev(from, 'git commit');
      checkRev(to, 'git commit');
      return checked(
        'failed to compare commits',
        ['diff', '--no-color', '--no-ext-diff', '--no-renames', '--no-textconv', from, to, '--'],
        dir,
        opts.signal,
      );
    },
    async showFile(dir, commit, file, opts = {}) {
      checkRev(commit, 'git commit');
      if (file.includes(':') || file.startsWith('-')) throw new InputError(`invalid file name '${file}'`);
      opts.signal?.throwIfAborted();
      const result = await run(['cat-file', '-p', `${commit}:${file}`], dir, opts.signal);
      if (result.error) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        return null;
      }
      return result.stdout;
    },
    async clone(url, dir, opts = {}) {
      checkGitArgument(url, 'git repository url');
      await fs.mkdir(dir, { recursive: true });
      const args = ['clone'];
      if (opts.branch !== undefined) {
        checkGitArgument(opts.branch, 'git branch');
        args.push('--single-branch', `--branch=${opts.branch}`);
      }
      args.push('--', url, '.');
      await checked('failed to clone git repository', args, dir, opts.signal);
    },
    async pull(dir, opts = {}) {
      await checked('failed to pull git repository', ['pull', '--ff-only'], dir, opts.signal);
    },
    async headCommit(dir, opts = {}) {
      const stdout = await checked('failed to read HEAD commit', ['rev-parse', 'HEAD'], dir, opts.signal);
      return stdout.trim();
    },
    lsRemote,
    async findRemoteRef(url, ref, opts = {}) {
      checkGitArgument(ref, 'git ref');
      const refs = await lsRemote(url, [ref], opts);
      // ls-remote matches patterns at the tail of names: prefer the exact ref, as git.rs's first line
      const hit = refs.find((r) => r.ref === ref) ?? refs[0];
      if (hit && !/^[0-9a-f]{7,64}$/.test(hit.commit)) {
        throw new GitError(`malformed ls-remote answer for ${url} and ${ref}`, hit.commit, 0);
      }
      return hit?.commit;
    },
  };
}
