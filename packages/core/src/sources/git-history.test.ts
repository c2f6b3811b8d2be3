import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GitServer, startGitServer } from '../../../../test/fixtures/git/index.js';
import { InputError } from '../errors.js';
import { createGit } from './git.js';

// the history operations the update gate reads a checkout with, on real repositories over http

let server: GitServer;
let tmp: string;

beforeAll(async () => {
  server = await startGitServer();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-git-history-'));
});
afterAll(async () => {
  await server?.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('git history', () => {
  const git = createGit();

  it('resolves, logs, compares, shows and resets to commits', async () => {
    const first =
      (
        await server.createRepo(
          'hist',
          { PKGBUILD: 'pkgver=1\n' },
          { author: 'Alice <alice@example.invalid>' },
        )
      ).commit ?? '';
    const dir = path.join(tmp, 'hist');
    await git.clone(server.repoUrl('hist'), dir);
    const second = await server.commit(
      'hist',
      { PKGBUILD: 'pkgver=2\n', 'evil.install': 'post_install() { :; }\n' },
      { author: 'Mallory <m@example.invalid>' },
    );
    await git.pull(dir);

    expect(await git.resolveCommit(dir, 'HEAD')).toBe(second);
    expect(await git.resolveCommit(dir, first.slice(0, 10))).toBe(first);
    expect(await git.resolveCommit(dir, 'f'.repeat(40))).toBeUndefined();
    const log = await git.log(dir, first, 'HEAD');
    expect(log.map((commit) => [commit.commit, commit.author])).toEqual([
      [second, 'Mallory <m@example.invalid>'],
    ]);
    expect(log[0]?.committed).toBeInstanceOf(Date);
    expect((await git.log(dir, undefined, 'HEAD')).map((commit) => commit.author)).toEqual([
      'Mallory <m@example.invalid>',
      'Alice <alice@example.invalid>',
    ]);
    expect((await git.commitInfo(dir, first)).author).toBe('Alice <alice@example.invalid>');
    expect(await git.changedFiles(dir, first, second)).toEqual([
      { status: 'M', path: 'PKGBUILD' },
      { status: 'A', path: 'evil.install' },
    ]);
    expect(await git.diff(dir, first, second)).toContain('+pkgver=2');
    expect(await git.showFile(dir, first, 'PKGBUILD')).toBe('pkgver=1\n');
    expect(await git.showFile(dir, first, 'evil.install')).toBeNull();

    await git.resetHard(dir, first);
    expect(await git.headCommit(dir)).toBe(first);
    await expect(fs.access(path.join(dir, 'evil.install'))).rejects.toThrow();
    // the branch fast-forwards again on the next pull
    await git.pull(dir);
    expect(await git.headCommit(dir)).toBe(second);
  });

  it('refuses revisions and paths that git would read as options or other syntax', async () => {
    const dir = path.join(tmp, 'hist');
    await expect(git.resolveCommit(dir, '--all')).rejects.toBeInstanceOf(InputError);
    await expect(git.resetHard(dir, '--hard')).rejects.toBeInstanceOf(InputError);
    await expect(git.diff(dir, 'HEAD', 'a b')).rejects.toBeInstanceOf(InputError);
    await expect(git.showFile(dir, 'HEAD', '../x:y')).rejects.toBeInstanceOf(InputError);
  });
});
