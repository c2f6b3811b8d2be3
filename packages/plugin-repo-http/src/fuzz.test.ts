/**
 * A few thousand generated bad requests: malformed JSON, missing and mistyped fields, unknown keys,
 * hostile names, path traversal, oversized bodies, bad queries and headers. None may get a 5xx,
 * crash the server or change anything.
 */
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { seededRandom } from '@serene/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PackageAddRequestSchema,
  PackageBuildRequestSchema,
  PackageSettingsRequestSchema,
} from './schemas.js';
import { type Ask, type Harness, type Reply, startHarness } from './testing/harness.js';

const SEED = 0x5e2e7e;
const BODY_LIMIT = 32 * 1024;

/** One generated request and what kind of badness it carries. */
interface Case {
  kind: string;
  path: string;
  ask: Ask;
  /** must be a 4xx (otherwise only "not 5xx" is required) */
  strict: boolean;
}

const HOSTILE_NAMES = [
  '/',
  '..',
  '.',
  '../..',
  '../../etc/passwd',
  'a/b',
  '\u0000',
  'a\u0000b',
  '\n',
  'a\r\nX-Injected: 1',
  '\u001b[31mred',
  '\u007f',
  'x'.repeat(10_000),
  'é',
  '💥',
  ' ',
  'a b',
  '-rf',
  '--upload-pack=touch /tmp/pwned',
  '.hidden',
  'name?x=1',
  'name#frag',
  '%',
  '%zz',
  '\\',
  'a\\..\\b',
  '<script>alert(1)</script>',
  "'; DROP TABLE package; --",
  '$(touch x)',
  '*',
];

const WRONG_VALUES: unknown[] = [
  null,
  0,
  1.5,
  -1,
  'yes',
  '',
  [],
  {},
  true,
  false,
  [1, 2],
  { a: 1 },
  'x'.repeat(5000),
];

const VALID_BODIES: Record<string, () => Record<string, unknown>> = {
  '/package/add': () => ({
    replace: false,
    resolve: true,
    build: true,
    source: { type: 'aur', name: 'ghost' },
  }),
  '/build': () => ({ packages: ['ghost'], clean: false, resolve: true, force: false }),
  '/build/all': () => ({ packages: [], clean: false, resolve: true, force: false }),
  '/package/alpha/set': () => ({ key: 'enabled', value: true }),
};

/** Whether a body is valid for its endpoint: such bodies are not bad input and are skipped. */
function isValid(target: string, body: unknown): boolean {
  if (target === '/package/add') return PackageAddRequestSchema.safeParse(body).success;
  if (target === '/package/alpha/set') return PackageSettingsRequestSchema.safeParse(body).success;
  return PackageBuildRequestSchema.safeParse(body).success;
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T;
}

/** Every path in an object, as key lists. */
function paths(value: unknown, prefix: string[] = []): string[][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  const out: string[][] = prefix.length > 0 ? [prefix] : [];
  for (const [key, inner] of Object.entries(value)) out.push(...paths(inner, [...prefix, key]));
  return out;
}

function mutateStructure(rand: () => number, body: Record<string, unknown>): unknown {
  const all = paths(body);
  const target = pick(rand, all);
  const clone = structuredClone(body) as Record<string, unknown>;
  let parent: Record<string, unknown> = clone;
  for (const key of target.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
  const last = target[target.length - 1]!;
  switch (Math.floor(rand() * 5)) {
    case 0:
      delete parent[last];
      break;
    case 1:
      parent[last] = pick(rand, WRONG_VALUES);
      break;
    case 2:
      parent[last] = typeof parent[last] === 'string' ? pick(rand, HOSTILE_NAMES) : pick(rand, WRONG_VALUES);
      break;
    case 3:
      // a discriminator nobody knows
      if ('type' in parent) parent.type = pick(rand, ['AUR', 'svn', '', 'aurx', 'Git']);
      else if ('key' in parent)
        parent.key = pick(rand, ['enable', 'srcinfo_override', 'Clean', 'flag', 'schedules', '']);
      else return pick(rand, WRONG_VALUES);
      break;
    default:
      return pick(rand, [[clone], 'body', 42, null, true]);
  }
  return clone;
}

function mutateText(rand: () => number, text: string): string | Buffer {
  switch (Math.floor(rand() * 7)) {
    case 0:
      return text.slice(0, Math.floor(rand() * text.length));
    case 1: {
      const at = Math.floor(rand() * text.length);
      return (
        text.slice(0, at) + pick(rand, ['{', '}', '"', ',', ':', '\\', '\u0000', 'x', ']']) + text.slice(at)
      );
    }
    case 2:
      return pick(rand, [
        '',
        ' ',
        'null',
        '[]',
        '{}',
        '1',
        '"text"',
        'undefined',
        "{'a':1}",
        '{"replace":}',
        'NaN',
      ]);
    case 3:
      return Buffer.from([0xff, 0xfe, 0x80, ...Buffer.from(text)]);
    case 4:
      return '['.repeat(100_000 > BODY_LIMIT ? BODY_LIMIT - 1 : 100_000);
    case 5:
      return `${text},`;
    default:
      return text.replace(/"/g, "'");
  }
}

function generate(count: number): Case[] {
  const rand = seededRandom(SEED);
  const cases: Case[] = [];
  const bodyTargets = Object.keys(VALID_BODIES);
  const nameRoutes: [string, (name: string) => string][] = [
    ['GET', (n) => `/package/${n}`],
    ['DELETE', (n) => `/package/${n}`],
    ['POST', (n) => `/package/${n}/set`],
    ['GET', (n) => `/package/${n}/build`],
    ['GET', (n) => `/package/${n}/build/latest`],
    ['GET', (n) => `/package/${n}/build/0/logs`],
    ['GET', (n) => `/package/${n}/build/logs/subscribe`],
    ['GET', (n) => `/package/${n}/pkgbuild`],
    ['GET', (n) => `/webhook/package/${n}/secret`],
    ['POST', (n) => `/webhook/package/${n}/build?secret=abc`],
    ['GET', (n) => `/x86_64/package/${n}`],
    ['GET', (n) => `/${n}/package/alpha`],
  ];
  const repoParts = [
    '..',
    '%2e%2e',
    '%2E%2E',
    '.%2e',
    '%2e.',
    '..%2f',
    '%2f',
    '%5c',
    '..%5c',
    '%00',
    '%0a',
    '.hidden',
    '%252e%252e',
    '....',
    '..;',
    'serene.db',
    '%ff',
    '%',
    '%e0%a4%a',
    'secret.txt',
    '~',
    '%u002e',
  ];

  while (cases.length < count) {
    const roll = rand();
    if (roll < 0.45) {
      // bodies
      const target = pick(rand, bodyTargets);
      const valid = VALID_BODIES[target]!();
      let raw: string | Buffer;
      let kind: string;
      const how = rand();
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (how < 0.45) {
        const body = mutateStructure(rand, valid);
        if (isValid(target, body)) continue;
        raw = JSON.stringify(body) ?? 'undefined';
        kind = 'structure';
      } else if (how < 0.8) {
        raw = mutateText(rand, JSON.stringify(valid));
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw.toString());
        } catch {
          parsed = Symbol('malformed');
        }
        if (typeof parsed !== 'symbol' && isValid(target, parsed)) continue;
        kind = 'malformed';
      } else if (how < 0.9) {
        raw = JSON.stringify(valid);
        headers['Content-Type'] = pick(rand, [
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data',
          'json',
          '',
        ]);
        if (headers['Content-Type'] === '') delete headers['Content-Type'];
        kind = 'content-type';
      } else {
        const size = BODY_LIMIT + 1 + Math.floor(rand() * BODY_LIMIT * 3);
        raw = JSON.stringify({ ...valid, padding: 'p'.repeat(size) });
        kind = 'oversize';
      }
      cases.push({
        kind,
        path: target,
        ask: { method: 'POST', raw, headers, chunked: kind === 'oversize' && rand() < 0.5 },
        strict: true,
      });
    } else if (roll < 0.75) {
      // hostile names in routes
      const [method, route] = pick(rand, nameRoutes);
      const name = pick(rand, HOSTILE_NAMES);
      const encoded =
        rand() < 0.7 ? encodeURIComponent(name) : encodeURI(name).replace(/[?#]/g, encodeURIComponent);
      const ask: Ask = { method };
      if (method === 'POST' && route('x').endsWith('/set')) ask.body = { key: 'enabled', value: true };
      cases.push({ kind: 'name', path: route(encoded), ask, strict: true });
    } else if (roll < 0.9) {
      // the repository: traversal and garbage
      const parts = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => pick(rand, repoParts));
      const headers: Record<string, string> = {};
      if (rand() < 0.3)
        headers.Range = pick(rand, [
          'bytes=a-b',
          'bytes=99999999999999999999-',
          'bytes=-',
          'bytes=5-1',
          'lines=1-2',
          'bytes=0-0,1-1',
        ]);
      if (rand() < 0.2)
        headers['If-Modified-Since'] = pick(rand, ['yesterday', '', 'Mon, 99 Jan 2024 00:00:00 GMT']);
      const pathText = `/x86_64/${parts.join('/')}`;
      const traversal = parts.some(
        (part) => /^(\.\.|%2e%2e|%2E%2E|\.%2e|%2e\.)$/.test(part) || part.startsWith('..'),
      );
      cases.push({ kind: 'repository', path: pathText, ask: { headers }, strict: traversal });
    } else {
      // queries and times
      const which = rand();
      if (which < 0.5) {
        const count = pick(rand, [
          '-1',
          'abc',
          '1e3',
          '99999999999',
          '4294967296',
          '',
          '0x10',
          '1.5',
          '%00',
          '1&count=2',
        ]);
        cases.push({
          kind: 'query',
          path: `/package/alpha/build?count=${count}`,
          ask: {},
          strict: count !== '1&count=2',
        });
      } else {
        const time = pick(rand, [
          'yesterday',
          '-1',
          '1.5',
          '2025-13-01T00:00:00Z',
          'latest%00',
          'x'.repeat(5000),
          '%',
          '4294967296',
        ]);
        cases.push({ kind: 'time', path: `/package/alpha/build/${time}`, ask: {}, strict: true });
      }
    }
  }
  return cases;
}

/** Runs `work` over `items`, `width` at a time. */
async function pool<T, R>(items: readonly T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!);
      }
    }),
  );
  return results;
}

/** Sends raw bytes and reads the status line of the answer. */
function rawRequest(port: number, bytes: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(bytes));
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
    socket.on('error', reject);
  });
}

describe('bad requests', () => {
  let h: Harness;

  /** What must not change: packages, builds, repository files, source folders. */
  async function snapshot(): Promise<string> {
    const list = await h.service.list();
    const builds = await Promise.all(list.map((item) => h.store.listBuilds(item.view.record.base)));
    const files = async (dir: string): Promise<string[]> => {
      const out: string[] = [];
      for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
        const full = path.join(entry.parentPath, entry.name);
        const stat = await fs.lstat(full);
        out.push(`${path.relative(dir, full)} ${stat.size} ${stat.mtimeMs}`);
      }
      return out.sort();
    };
    return JSON.stringify({
      packages: list.map((item) => item.view.record),
      builds,
      entries: await h.publisher.list(),
      repository: await files(h.repositoryDir),
      sources: await files(path.join(h.root, 'sources')),
      queue: h.orchestrator.queue,
      secrets: await fs.readFile(h.secretsFile, 'utf8'),
    });
  }

  beforeAll(async () => {
    h = await startHarness({ packages: [{ base: 'alpha', pkgver: '1.0' }], http: { bodyLimit: BODY_LIMIT } });
    const added = await h.ask('/package/add', {
      method: 'POST',
      body: { replace: false, source: { type: 'aur', name: 'alpha' } },
    });
    expect(added.status).toBe(200);
    await h.orchestrator.idle();
    await fs.writeFile(path.join(h.root, 'secret.txt'), 'TOP-SECRET-OUTSIDE');
  });
  afterAll(() => h.close());

  it('answers thousands of generated bad requests with 4xx and a message, changing nothing', async () => {
    const before = await snapshot();
    const cases = generate(3000);
    const replies = await pool(
      cases,
      16,
      async (c): Promise<[Case, Reply]> => [c, await h.ask(c.path, c.ask)],
    );
    await h.orchestrator.idle();

    const failures = replies.filter(
      ([c, reply]) =>
        reply.status >= 500 ||
        reply.status === 0 ||
        (c.strict && (reply.status < 400 || reply.status >= 500)) ||
        (reply.status >= 400 && reply.text.trim() === '' && reply.status !== 405) ||
        reply.text.includes('TOP-SECRET-OUTSIDE'),
    );
    expect(
      failures
        .slice(0, 10)
        .map(
          ([c, reply]) =>
            `${c.kind} ${c.ask.method ?? 'GET'} ${c.path.slice(0, 120)} -> ${reply.status} ${reply.text.slice(0, 200)}`,
        ),
    ).toEqual([]);
    const kinds = new Map<string, number>();
    for (const c of cases) kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
    expect([...kinds.keys()].sort()).toEqual(
      ['content-type', 'malformed', 'name', 'oversize', 'query', 'repository', 'structure', 'time'].sort(),
    );
    const statuses = new Set(replies.map(([, reply]) => reply.status));
    for (const status of [400, 404, 413]) expect(statuses).toContain(status);

    // requests the HTTP parser itself refuses
    for (const bytes of [
      'GET /package/a\u0000b HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /x86_64/\u001b HTTP/1.1\r\nHost: x\r\n\r\n',
      'POST /build HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
      'GARBAGE\r\n\r\n',
      `GET /${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ]) {
      const status = await rawRequest(h.port, bytes);
      expect(status, JSON.stringify(bytes.slice(0, 60))).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(500);
    }

    // still serving, nothing changed
    expect((await h.ask('/', { secret: null })).status).toBe(200);
    expect(await snapshot()).toBe(before);
    expect(h.logs.filter((line) => line.level === 'error')).toEqual([]);
  });

  it('explains what is wrong', async () => {
    const ask = (
      pathname: string,
      raw: string,
      headers: Record<string, string> = { 'Content-Type': 'application/json' },
    ) => h.ask(pathname, { method: 'POST', raw, headers });
    expect((await ask('/build', '{"packages": [}')).text).toMatch(/^Json deserialize error: /);
    expect((await ask('/build', '{"packages": [], "clean": false}')).text).toBe(
      'Json deserialize error: resolve: missing field (expected boolean); force: missing field (expected boolean)',
    );
    expect(
      (await ask('/build', '{"packages": "alpha", "clean": 0, "resolve": true, "force": true}')).text,
    ).toBe(
      'Json deserialize error: packages: Invalid input: expected array, received string; clean: Invalid input: expected boolean, received number',
    );
    expect(
      (await ask('/package/add', '{"replace": false, "source": {"type": "svn", "url": "x"}}')).text,
    ).toBe('Json deserialize error: source.type: unknown value "svn", expected one of aur, git, raw');
    expect(
      (await ask('/package/add', '{"replace": false, "source": {"type": "aur", "name": "../x"}}')).text,
    ).toMatch(/source\.name: not a valid package name/);
    expect(
      (
        await ask(
          '/package/add',
          '{"replace": false, "source": {"type": "git", "url": "--upload-pack=x", "devel": false}}',
        )
      ).text,
    ).toMatch(/source\.url: not a valid git repository URL/);
    expect((await ask('/build', '{}', { 'Content-Type': 'text/plain' })).text).toBe(
      "Content type error: expected 'application/json', got 'text/plain'",
    );
    const big = await ask('/build', JSON.stringify({ padding: 'x'.repeat(BODY_LIMIT) }));
    expect(big.status).toBe(413);
    expect(big.text).toMatch(/limit is 32768/);
    const name = await h.ask(`/package/${'x'.repeat(10_000)}`);
    expect(name.status).toBe(400);
    expect(name.text).toMatch(
      /^invalid package name "x{64}…": it is 10000 characters long, the limit is 255$/,
    );
    const control = await h.ask('/package/a%0Ab');
    expect(control.text).toBe(
      'invalid package name "a\\nb": it may contain only letters, digits and @ . _ + -',
    );
  });
});
