import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentTypeOf, parseRange, pathSegments } from './repository-files.js';
import { type Harness, startHarness } from './testing/harness.js';

describe('parseRange', () => {
  it('reads single byte ranges as RFC 9110 defines them', () => {
    expect(parseRange('bytes=0-99', 1000)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=900-', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRange('bytes=-100', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRange('bytes=-5000', 1000)).toEqual({ start: 0, end: 999 });
    expect(parseRange('bytes=990-5000', 1000)).toEqual({ start: 990, end: 999 });
    expect(parseRange('BYTES = 1 - 2', 1000)).toEqual({ start: 1, end: 2 });
  });

  it('tells unsatisfiable ranges from ones to ignore', () => {
    expect(parseRange('bytes=1000-', 1000)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 1000)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable');
    expect(parseRange('bytes=5-1', 1000)).toBeUndefined();
    expect(parseRange('bytes=0-1,5-6', 1000)).toBeUndefined();
    expect(parseRange('items=0-1', 1000)).toBeUndefined();
    expect(parseRange('bytes=-', 1000)).toBeUndefined();
    expect(parseRange('bytes=a-b', 1000)).toBeUndefined();
  });
});

describe('pathSegments', () => {
  it('decodes segments and refuses traversal, hidden files, encoded slashes and controls', () => {
    expect(pathSegments('/a%20b//c')).toEqual(['a b', 'c']);
    for (const bad of [
      '/..',
      '/%2e%2e',
      '/%2E%2e/x',
      '/a/./b',
      '/.hidden',
      '/%2ehidden',
      '/a%2fb',
      '/a%5cb',
      '/a%00',
      '/a%0a',
      '/%E0%A4%A',
    ]) {
      expect(() => pathSegments(bad), bad).toThrow();
    }
  });

  it('knows the types of repository files', () => {
    expect(contentTypeOf('serene.db.tar.gz')).toBe('application/gzip');
    expect(contentTypeOf('foo-1-1-x86_64.pkg.tar.zst')).toBe('application/zstd');
    expect(contentTypeOf('foo-1-1-x86_64.pkg.tar.zst.sig')).toBe('application/pgp-signature');
    expect(contentTypeOf('serene.db')).toBe('application/octet-stream');
    expect(contentTypeOf('bases.json')).toBe('application/json; charset=utf-8');
  });
});

describe('the repository over HTTP', () => {
  let h: Harness;
  let db: Buffer;
  const big = randomBytes(5 * 1024 * 1024 + 123);

  beforeAll(async () => {
    h = await startHarness({ packages: [{ base: 'alpha', pkgver: '1.0' }] });
    await h.ask('/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'aur', name: 'alpha' } },
    });
    await h.orchestrator.idle();
    db = await fs.readFile(path.join(h.repositoryDir, 'serene.db.tar.gz'));
    await fs.writeFile(path.join(h.repositoryDir, 'big-1-1-x86_64.pkg.tar.zst'), big);
    await fs.mkdir(path.join(h.repositoryDir, 'sub dir'));
    await fs.writeFile(path.join(h.repositoryDir, 'sub dir', 'inner.txt'), 'inner\n');
    await fs.writeFile(path.join(h.repositoryDir, '.tmp.partial'), 'half written');
    await fs.writeFile(path.join(h.root, 'secret.txt'), 'outside the repository');
    await fs.symlink(path.join(h.root, 'secret.txt'), path.join(h.repositoryDir, 'escape'));
    await fs.symlink(h.root, path.join(h.repositoryDir, 'escape-dir'));
    await fs.symlink('sub dir/inner.txt', path.join(h.repositoryDir, 'inside'));
    await fs.symlink('nowhere', path.join(h.repositoryDir, 'dangling'));
  });
  afterAll(() => h.close());

  it('serves the database with type, length, validators and no secret', async () => {
    const reply = await h.ask('/x86_64/serene.db', { secret: null });
    expect(reply.status).toBe(200);
    expect(reply.body.equals(db)).toBe(true);
    expect(reply.headers['content-length']).toBe(String(db.length));
    // the type of what the link points to
    expect(reply.headers['content-type']).toBe('application/gzip');
    expect(reply.headers['accept-ranges']).toBe('bytes');
    expect(reply.headers.etag).toMatch(/^"[0-9a-f-]+"$/);
    const stat = await fs.stat(path.join(h.repositoryDir, 'serene.db.tar.gz'));
    expect(reply.headers['last-modified']).toBe(new Date(stat.mtimeMs).toUTCString());
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const head = await h.ask('/x86_64/serene.db', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-length']).toBe(String(db.length));
    const bigHead = await h.ask('/x86_64/big-1-1-x86_64.pkg.tar.zst', { method: 'HEAD' });
    expect(bigHead.headers['content-length']).toBe(String(big.length));
    expect(bigHead.body.length).toBe(0);
  });

  it('answers 304 to If-Modified-Since and If-None-Match of an unchanged file, 200 once it changed', async () => {
    const first = await h.ask('/x86_64/serene.db');
    const lastModified = first.headers['last-modified']!;
    const unchanged = await h.ask('/x86_64/serene.db', { headers: { 'If-Modified-Since': lastModified } });
    expect(unchanged.status).toBe(304);
    expect(unchanged.body.length).toBe(0);
    const older = new Date(Date.parse(lastModified) - 1000).toUTCString();
    expect((await h.ask('/x86_64/serene.db', { headers: { 'If-Modified-Since': older } })).status).toBe(200);
    expect(
      (await h.ask('/x86_64/serene.db', { headers: { 'If-Modified-Since': 'not a date' } })).status,
    ).toBe(200);
    const etag = first.headers.etag!;
    expect((await h.ask('/x86_64/serene.db', { headers: { 'If-None-Match': etag } })).status).toBe(304);
    expect((await h.ask('/x86_64/serene.db', { headers: { 'If-None-Match': `W/${etag}` } })).status).toBe(
      304,
    );
    expect((await h.ask('/x86_64/serene.db', { headers: { 'If-None-Match': '"other"' } })).status).toBe(200);
    expect((await h.ask('/x86_64/serene.db', { headers: { 'If-Match': '"other"' } })).status).toBe(412);

    // a rebuild replaces the database: served at once, with new validators
    await h.aur.bump('alpha');
    await h.service.startBuild(['alpha'], { clean: false, resolve: true, force: true });
    await h.orchestrator.idle();
    const now = await fs.readFile(path.join(h.repositoryDir, 'serene.db.tar.gz'));
    expect(now.equals(db)).toBe(false);
    const changed = await h.ask('/x86_64/serene.db', { headers: { 'If-None-Match': etag } });
    expect(changed.status).toBe(200);
    expect(changed.body.equals(now)).toBe(true);
    db = now;
  });

  it('serves ranges of the database and of a big file (pacman resumes downloads)', async () => {
    const part = await h.ask('/x86_64/serene.db', { headers: { Range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-19/${db.length}`);
    expect(part.headers['content-length']).toBe('10');
    expect(part.body.equals(db.subarray(10, 20))).toBe(true);
    const tail = await h.ask('/x86_64/serene.db', { headers: { Range: 'bytes=-7' } });
    expect(tail.body.equals(db.subarray(db.length - 7))).toBe(true);

    const resume = await h.ask('/x86_64/big-1-1-x86_64.pkg.tar.zst', {
      headers: { Range: 'bytes=4000000-' },
    });
    expect(resume.status).toBe(206);
    expect(resume.headers['content-range']).toBe(`bytes 4000000-${big.length - 1}/${big.length}`);
    expect(resume.body.equals(big.subarray(4_000_000))).toBe(true);
    const whole = await h.ask('/x86_64/big-1-1-x86_64.pkg.tar.zst');
    expect(createHash('sha256').update(whole.body).digest('hex')).toBe(
      createHash('sha256').update(big).digest('hex'),
    );

    const beyond = await h.ask('/x86_64/serene.db', { headers: { Range: `bytes=${db.length}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${db.length}`);
    // several ranges, or an If-Range that no longer holds: the whole file
    expect((await h.ask('/x86_64/serene.db', { headers: { Range: 'bytes=0-1,4-5' } })).status).toBe(200);
    const stale = await h.ask('/x86_64/serene.db', { headers: { Range: 'bytes=0-1', 'If-Range': '"old"' } });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(db.length);
    const fresh = await h.ask('/x86_64/serene.db', {
      headers: { Range: 'bytes=0-1', 'If-Range': (await h.ask('/x86_64/serene.db')).headers.etag! },
    });
    expect(fresh.status).toBe(206);
  });

  it('lists folders as the original, without hidden files or links that leave the repository', async () => {
    const reply = await h.ask('/x86_64/');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(reply.text).toMatch(
      /^<html><head><title>Index of \/x86_64\/<\/title><\/head><body><h1>Index of \/x86_64\/<\/h1><ul>/,
    );
    expect(reply.text).toContain('<li><a href="/x86_64/serene.db">serene.db</a></li>');
    expect(reply.text).toContain('<li><a href="/x86_64/sub%20dir">sub dir/</a></li>');
    expect(reply.text).toContain('<li><a href="/x86_64/inside">inside</a></li>');
    expect(reply.text).toMatch(/<\/ul><\/body>\n<\/html>$/);
    for (const hidden of ['.tmp.partial', 'escape', 'escape-dir', 'dangling'])
      expect(reply.text).not.toContain(`>${hidden}<`);
    const bare = await h.ask('/x86_64');
    expect(bare.status).toBe(200);
    expect(bare.text).toContain('href="/x86_64/serene.db"');
    const sub = await h.ask('/x86_64/sub%20dir/');
    expect(sub.text).toContain('<li><a href="/x86_64/sub%20dir/inner.txt">inner.txt</a></li>');
    expect((await h.ask('/x86_64/sub%20dir/inner.txt')).text).toBe('inner\n');
  });

  it('follows symlinks only inside the repository', async () => {
    expect((await h.ask('/x86_64/inside')).text).toBe('inner\n');
    for (const link of [
      '/x86_64/escape',
      '/x86_64/escape-dir/',
      '/x86_64/escape-dir/secret.txt',
      '/x86_64/dangling',
    ]) {
      const reply = await h.ask(link);
      expect(reply.status, link).toBe(404);
      expect(reply.text).not.toContain('outside the repository');
    }
  });

  it('refuses path traversal, plain or encoded, with 400 and says why', async () => {
    const attempts = [
      '/x86_64/../secret.txt',
      '/x86_64/%2e%2e/secret.txt',
      '/x86_64/%2E%2E%2Fsecret.txt',
      '/x86_64/..%2fsecret.txt',
      '/x86_64/sub%20dir/../../secret.txt',
      '/x86_64/%252e%252e/secret.txt',
      '/x86_64/.tmp.partial',
      '/x86_64/a%00b',
      '/x86_64/%ff%fe',
    ];
    for (const attempt of attempts) {
      const reply = await h.ask(attempt);
      expect(reply.status, attempt).toBeGreaterThanOrEqual(400);
      expect(reply.status, attempt).toBeLessThan(500);
      expect(reply.text, attempt).not.toContain('outside the repository');
      expect(reply.text.length, attempt).toBeGreaterThan(0);
    }
    expect((await h.ask('/x86_64/../secret.txt')).text).toBe("path traversal ('..') is not allowed");
    expect((await h.ask('/x86_64/.tmp.partial')).text).toBe('hidden files are not served');
    expect((await h.ask('/x86_64/nothing')).status).toBe(404);
    expect((await h.ask('/x86_64/serene.db/')).status).toBe(404);
  });

  it('lets clients break off downloads without leaking open files', async () => {
    const open = async () => (await fs.readdir('/proc/self/fd')).length;
    const before = await open();
    for (let i = 0; i < 10; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.get(
          { host: '127.0.0.1', port: h.port, path: '/x86_64/big-1-1-x86_64.pkg.tar.zst', agent: false },
          (res) => {
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on('error', (error) =>
          (error as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(error),
        );
      });
    }
    const deadline = Date.now() + 5000;
    while ((await open()) > before + 2 && Date.now() < deadline) await sleep(20);
    expect(await open()).toBeLessThanOrEqual(before + 2);
    expect((await h.ask('/x86_64/big-1-1-x86_64.pkg.tar.zst')).body.equals(big)).toBe(true);
  });

  it('notices removed and replaced files at once', async () => {
    const file = path.join(h.repositoryDir, 'note.txt');
    await fs.writeFile(file, 'one');
    expect((await h.ask('/x86_64/note.txt')).text).toBe('one');
    await fs.writeFile(`${file}.new`, 'two!');
    await fs.rename(`${file}.new`, file);
    await sleep(50);
    expect((await h.ask('/x86_64/note.txt')).text).toBe('two!');
    await fs.rm(file);
    await sleep(50);
    expect((await h.ask('/x86_64/note.txt')).status).toBe(404);
  });

  it('answers 405 to methods other than GET and HEAD', async () => {
    const reply = await h.ask('/x86_64/serene.db', { method: 'DELETE' });
    expect(reply.status).toBe(405);
    expect(reply.headers.allow).toBe('GET, HEAD');
    await expect(fs.access(path.join(h.repositoryDir, 'serene.db'))).resolves.toBeUndefined();
  });
});
