import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GitServer, startGitServer } from '../../../../test/fixtures/git/index.js';
import {
  compareUtf8,
  develSourceUrls,
  findRemoteCommit,
  gitSourceRef,
  lookupDevelRevisions,
  parseGitSourceUrl,
  sortRevisions,
} from './devel.js';
import { createGit, GitError } from './git.js';

describe('git source URLs', () => {
  it('splits the remote from fragment and query, as the original', () => {
    expect(parseGitSourceUrl('https://h/r.git')).toEqual({ remote: 'https://h/r.git', fragment: {} });
    expect(parseGitSourceUrl('https://h/r.git#tag=v1')).toEqual({
      remote: 'https://h/r.git',
      fragment: { tag: 'v1' },
    });
    expect(parseGitSourceUrl('https://h/r.git?signed#tag=v1')).toEqual({
      remote: 'https://h/r.git',
      fragment: { tag: 'v1' },
    });
    expect(parseGitSourceUrl('https://h/r.git#tag=v1?signed')).toEqual({
      remote: 'https://h/r.git',
      fragment: { tag: 'v1' },
    });
    // pairs without '=' are dropped, `a=b=c` keeps `b`, a repeated key keeps its last value
    expect(parseGitSourceUrl('https://h/r#x&branch=a=b&branch=dev').fragment).toEqual({ branch: 'dev' });
  });

  it('follows #commit=, then #tag=, then #branch=, else HEAD', () => {
    expect(gitSourceRef(parseGitSourceUrl('u#tag=v1&branch=b'))).toBe('refs/tags/v1');
    expect(gitSourceRef(parseGitSourceUrl('u#branch=b'))).toBe('refs/heads/b');
    expect(gitSourceRef(parseGitSourceUrl('u'))).toBe('HEAD');
  });

  it('takes the git+ sources of the pkgbase for the architecture, without name:: and git+', () => {
    const srcinfo = [
      'pkgbase = x',
      '\tpkgver = 1',
      '\tpkgrel = 1',
      '\tarch = x86_64',
      '\tarch = aarch64',
      '\tsource = x::git+https://h/x.git#branch=main',
      '\tsource = https://h/file.tar.gz',
      '\tsource = hg+https://h/hg',
      '\tsource = git://h/plain.git',
      '\tsource_x86_64 = git+https://h/amd64.git',
      '\tsource_aarch64 = git+https://h/arm.git',
      '',
      'pkgname = x',
      '',
    ].join('\n');
    expect(develSourceUrls(srcinfo, 'x86_64')).toEqual([
      'https://h/x.git#branch=main',
      'https://h/amd64.git',
    ]);
    expect(develSourceUrls(srcinfo, 'aarch64')).toEqual(['https://h/x.git#branch=main', 'https://h/arm.git']);
  });

  it('orders revisions by the UTF-8 bytes of their URLs', () => {
    expect(Object.keys(sortRevisions({ b: '2', a: '1', B: '3' }))).toEqual(['B', 'a', 'b']);
    // U+FF5E sorts before U+1F600 in UTF-8 (and in Rust), after it in UTF-16
    expect(compareUtf8('\uff5e', '\u{1f600}')).toBeLessThan(0);
  });
});

describe('remote commits', () => {
  let server: GitServer;
  let main = '';
  let dev = '';
  let lightweight = '';
  let annotated = '';

  beforeAll(async () => {
    server = await startGitServer();
    main = (await server.createRepo('up', { 'a.txt': '1\n' }, { branch: 'main' })).commit ?? '';
    dev = await server.commit('up', { 'a.txt': 'dev\n' }, { branch: 'dev' });
    lightweight = await server.tag('up', 'v1', main);
    annotated = await server.tag('up', 'v2', dev, 'release 2');
  });
  afterAll(async () => server?.close());

  const git = createGit();

  it('finds HEAD, branches and tags with ls-remote, and takes #commit= as is', async () => {
    const url = server.repoUrl('up');
    expect(await findRemoteCommit(git, url)).toBe(main);
    expect(await findRemoteCommit(git, `${url}#branch=dev`)).toBe(dev);
    expect(await findRemoteCommit(git, `${url}#tag=v1`)).toBe(lightweight);
    expect(lightweight).toBe(main);
    // an annotated tag: the tag object, as `ls-remote <remote> refs/tags/v2` shows it first
    expect(await findRemoteCommit(git, `${url}#tag=v2`)).toBe(annotated);
    expect(annotated).not.toBe(dev);
    expect(await findRemoteCommit(git, `${url}?signed#commit=abc123`)).toBe('abc123');
  });

  it('fails for a ref the remote does not have', async () => {
    const error = await findRemoteCommit(git, `${server.repoUrl('up')}#branch=nope`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitError);
    expect(String(error)).toContain(`failed to find ref 'refs/heads/nope'`);
  });

  it('looks up every git+ source of a .SRCINFO, keyed by the URL without git+', async () => {
    const url = server.repoUrl('up');
    const srcinfo = [
      'pkgbase = up-git',
      '\tpkgver = r1',
      '\tpkgrel = 1',
      '\tarch = any',
      `\tsource = up::git+${url}#branch=dev`,
      `\tsource = git+${url}`,
      '\tsource = local.patch',
      '',
      'pkgname = up-git',
      '',
    ].join('\n');
    const revisions = await lookupDevelRevisions(git, srcinfo, 'x86_64');
    expect(revisions).toEqual({ [url]: main, [`${url}#branch=dev`]: dev });
    expect(Object.keys(revisions)).toEqual([url, `${url}#branch=dev`]);
  });
});
