/**
 * Devel packages: the remote commits of the `git+` sources of a `.SRCINFO`, which make a devel package's
 * state change when upstream moves (docs/compatibility.md#sources).
 */
import type { SourceOperationOptions } from '../contracts/source.js';
import { archValues, parseSrcinfo, type Srcinfo } from '../pacman/srcinfo.js';
import { type Git, GitError } from './git.js';

/** A `git+` source URL (without `git+`) split as makepkg reads it. */
export interface GitSourceUrl {
  /** what git talks to: the URL before `#` and `?` */
  remote: string;
  /** `#key=value&...` pairs; a key given twice keeps its last value */
  fragment: Record<string, string>;
}

/** Splits a git source URL (without `git+`) at `#` and `?`, exactly as the original does. */
export function parseGitSourceUrl(url: string): GitSourceUrl {
  const hash = url.indexOf('#');
  const query = url.indexOf('?');
  const cut = Math.min(hash === -1 ? url.length : hash, query === -1 ? url.length : query);
  const fragment: Record<string, string> = Object.create(null);
  if (hash !== -1) {
    // the fragment ends at a `?` after it (`#tag=v1?signed`), else at the end
    const end = query > hash ? query : url.length;
    for (const pair of url.slice(hash + 1, end).split('&')) {
      const [key, value] = pair.split('=');
      // pairs without `=` are dropped; `a=b=c` is `a` = `b`, as Rust's `split('=')` with two `next()`s
      if (key !== undefined && value !== undefined) fragment[key] = value;
    }
  }
  return { remote: url.slice(0, cut), fragment };
}

/** The ref a git source follows: `refs/tags/T` for `#tag=T`, `refs/heads/B` for `#branch=B`, else `HEAD`. */
export function gitSourceRef(source: GitSourceUrl): string {
  const { tag, branch } = source.fragment;
  if (tag !== undefined) return `refs/tags/${tag}`;
  if (branch !== undefined) return `refs/heads/${branch}`;
  return 'HEAD';
}

/**
 * The commit a git source URL (without `git+`) stands for: `#commit=X` is X itself, else the remote's
 * commit of {@link gitSourceRef}; a ref the remote does not have is a {@link GitError}.
 */
export async function findRemoteCommit(
  git: Git,
  url: string,
  options: SourceOperationOptions = {},
): Promise<string> {
  const source = parseGitSourceUrl(url);
  const commit = source.fragment.commit;
  if (commit !== undefined) return commit;
  const ref = gitSourceRef(source);
  const found = await git.findRemoteRef(source.remote, ref, options);
  if (found === undefined)
    throw new GitError(`failed to find ref '${ref}' of remote '${source.remote}'`, '', 0);
  return found;
}

/**
 * The `git+` source URLs of a `.SRCINFO` for `arch`, each without `name::` and `git+`, in file order:
 * the pkgbase's `source` entries, then its `source_<arch>` ones. Other VCS kinds are left out.
 */
export function develSourceUrls(srcinfo: Srcinfo | string, arch: string): string[] {
  const parsed = typeof srcinfo === 'string' ? parseSrcinfo(srcinfo) : srcinfo;
  const urls: string[] = [];
  for (const entry of archValues(parsed.base, 'source', arch)) {
    const named = entry.indexOf('::');
    const url = named === -1 ? entry : entry.slice(named + 2);
    if (url.startsWith('git+')) urls.push(url.slice('git+'.length));
  }
  return urls;
}

/**
 * The remote commit of every `git+` source of a `.SRCINFO` (see {@link develSourceUrls}), keyed by the
 * URL without `git+`, as `devel_revisions` keeps them. Any failing lookup fails the whole call.
 */
export async function lookupDevelRevisions(
  git: Git,
  srcinfo: Srcinfo | string,
  arch: string,
  options: SourceOperationOptions = {},
): Promise<Record<string, string>> {
  const urls = [...new Set(develSourceUrls(srcinfo, arch))];
  const commits = await Promise.all(urls.map((url) => findRemoteCommit(git, url, options)));
  const revisions: Record<string, string> = {};
  for (const [index, url] of urls.entries()) revisions[url] = commits[index] ?? '';
  return sortRevisions(revisions);
}

/** Compares strings by their UTF-8 bytes, as Rust orders `String`s. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A copy of a revisions map with its keys in ascending order (a `BTreeMap`'s order). */
export function sortRevisions(revisions: Readonly<Record<string, string>>): Record<string, string> {
  const sorted: Record<string, string> = {};
  for (const key of Object.keys(revisions).sort(compareUtf8)) sorted[key] = revisions[key] ?? '';
  return sorted;
}
