import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GitServer, startGitServer } from '../../../../test/fixtures/git/index.js';
import { createLimiter } from '../concurrency.js';
import { InputError } from '../errors.js';
import { createGit, GitError } from './git.js';

let server: GitServer;
let tmp: string;
let first: string;

beforeAll(async () => {
  server = await startGitServer();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-git-test-'));
  first = (await server.createRepo('pkg', { PKGBUILD: 'pkgver=1\n' })).commit ?? '';
  await server.commit('pkg', { PKGBUILD: 'pkgver=side\n' }, { branch: 'side' });
});
afterAll(async () => {
  await server?.close();
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('git wrapper', () => {
  const git = createGit();

  it('clones over http, reads HEAD and pulls new commits', async () => {
    const dir = path.join(tmp, 'clone');
    await git.clone(server.repoUrl('pkg'), dir);
    expect(await fs.readFile(path.join(dir, 'PKGBUILD'), 'utf8')).toBe('pkgver=1\n');
    expect(await git.headCommit(dir)).toBe(first);
    const second = await server.commit('pkg', { PKGBUILD: 'pkgver=2\n' });
    await git.pull(dir);
    expect(await git.headCommit(dir)).toBe(second);
    expect(await fs.readFile(path.join(dir, 'PKGBUILD'), 'utf8')).toBe('pkgver=2\n');
  });

  it('clones a single branch', async () => {
    const dir = path.join(tmp, 'branch');
    await git.clone(server.repoUrl('pkg'), dir, { branch: 'side' });
    expect(await fs.readFile(path.join(dir, 'PKGBUILD'), 'utf8')).toBe('pkgver=side\n');
  });

  it('finds remote refs with ls-remote', async () => {
    const refs = await git.lsRemote(server.repoUrl('pkg'));
    expect(refs.map((r) => r.ref)).toEqual(
      expect.arrayContaining(['HEAD', 'refs/heads/master', 'refs/heads/side']),
    );
    const side = refs.find((r) => r.ref === 'refs/heads/side')?.commit;
    expect(await git.findRemoteRef(server.repoUrl('pkg'), 'refs/heads/side')).toBe(side);
    expect(await git.findRemoteRef(server.repoUrl('pkg'), 'refs/heads/none')).toBeUndefined();
  });

  it('fails with the git error output', async () => {
    const error = await git
      .clone(`${server.url}/missing.git`, path.join(tmp, 'missing'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitError);
    expect((error as GitError).message).toMatch(/^failed to clone git repository: .*not found/is);
    await expect(git.pull(tmp)).rejects.toThrow(/failed to pull git repository/);
  });

  it('refuses URLs and refs that git would read as options', async () => {
    await expect(git.clone('--upload-pack=touch /tmp/pwned', path.join(tmp, 'x'))).rejects.toBeInstanceOf(
      InputError,
    );
    await expect(git.lsRemote('-oProxyCommand=x')).rejects.toBeInstanceOf(InputError);
    await expect(
      git.clone(server.repoUrl('pkg'), path.join(tmp, 'y'), { branch: '-x' }),
    ).rejects.toBeInstanceOf(InputError);
    await expect(git.findRemoteRef(server.repoUrl('pkg'), '--heads')).rejects.toBeInstanceOf(InputError);
  });

  it('never prompts for credentials', async () => {
    // no terminal and no askpass: a server asking for a password is an error, not a hang
    const started = Date.now();
    await expect(git.lsRemote('http://user@127.0.0.1:9/repo.git')).rejects.toBeInstanceOf(GitError);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    controller.abort(new Error('cancelled'));
    await expect(git.lsRemote(server.repoUrl('pkg'), [], { signal: controller.signal })).rejects.toThrow(
      'cancelled',
    );
  });
});

describe('limiter', () => {
  it('runs at most n tasks at once, in order', async () => {
    const limit = createLimiter(2);
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        limit(async () => {
          active++;
          peak = Math.max(peak, active);
          order.push(i);
          await sleep(5);
          active--;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
