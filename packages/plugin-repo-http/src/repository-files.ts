/**
 * The pacman repository folder over HTTP (docs/compatibility.md#repository-layout): files with their type and length, `HEAD`,
 * single byte ranges (pacman resumes downloads), `Last-Modified`/`If-Modified-Since` and
 * `ETag`/`If-None-Match` (pacman -Sy skips an unchanged database), and the original's HTML
 * directory listing.
 *
 * @remarks Written here rather than taken from `send`/`koa-send` so that symlinks can be confined to
 * the folder, the listing can match actix-files', and hot files can be served without a system call
 * but the socket's: a resolved path (realpath, type, size, times) is remembered until a watch on the
 * folder reports a change (at most `revalidateMs`), and small files (the databases) are kept in
 * memory while their inode, size and times stay the same. A replaced database is served at once.
 */
import * as fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import * as path from 'node:path';
import { InputError, type Logger, NotFoundError } from '@serene/core';
import mime from 'mime-types';
import { HttpError } from './errors.js';

/** Options of {@link RepositoryFiles}. */
export interface RepositoryFilesOptions {
  /** the repository folder */
  dir: string;
  /** the URL path it is served at, without a trailing slash (`/x86_64`) */
  mount: string;
  logger: Logger;
  /**
   * Files up to this size are kept in memory while they do not change.
   * @default 4 MiB
   */
  cacheFileBytes?: number;
  /**
   * Memory for such files, all together.
   * @default 64 MiB
   */
  cacheBytes?: number;
  /**
   * Size of the two buffers a file is streamed through (256 KiB measured fastest on loopback).
   * @default 256 KiB
   */
  chunkBytes?: number;
  /**
   * A resolved path (symlinks, type, size and times) is checked again after this many ms even
   * when the folder watch reported nothing (files in subfolders, file systems without events).
   * @default 1000
   */
  revalidateMs?: number;
}

/** A file held in memory, with what identifies its version. */
interface CachedFile {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  body: Buffer;
}

/** A request path resolved to a file, remembered until the folder changes or `revalidateMs` passed. */
interface Resolved {
  real: string;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  /** {@link RepositoryFiles} generation it was resolved in */
  generation: number;
  checkedAt: number;
}

/** Read buffers kept for later transfers. */
const MAX_SPARE_BUFFERS = 8;

/** At most this many resolved paths are remembered. */
const MAX_RESOLVED = 10_000;

/** Whether two descriptions are of the same version of a file. */
function sameVersion(a: CachedFile | Resolved, b: CachedFile | Resolved): boolean {
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** What the response headers of a file are made of. */
interface FileFacts {
  ino: number;
  size: number;
  mtimeMs: number;
}

const EXTRA_TYPES: Readonly<Record<string, string>> = {
  '.zst': 'application/zstd',
  '.sig': 'application/pgp-signature',
};

/** The Content-Type of a file name. */
export function contentTypeOf(name: string): string {
  const ext = path.extname(name).toLowerCase();
  return (
    EXTRA_TYPES[ext] ??
    (ext ? mime.contentType(ext) || 'application/octet-stream' : 'application/octet-stream')
  );
}

/** A strong validator made of inode, size and modification time. */
function etagOf(facts: FileFacts): string {
  return `"${facts.ino.toString(16)}-${facts.size.toString(16)}-${Math.round(facts.mtimeMs * 1000).toString(16)}"`;
}

/** Modification time at the precision of HTTP dates (seconds). */
function httpSeconds(mtimeMs: number): number {
  return Math.floor(mtimeMs / 1000) * 1000;
}

// --- RANGES ---

/** A byte range, both ends included. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range` header for a file of `size` bytes: the range, `unsatisfiable` (416), or undefined
 * when the header is to be ignored (malformed, another unit, or several ranges: the whole file is
 * then sent, as RFC 9110 allows).
 */
export function parseRange(header: string, size: number): ByteRange | 'unsatisfiable' | undefined {
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    // suffix: the last N bytes
    const length = Number(last);
    if (length === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? Number.POSITIVE_INFINITY : Number(last);
  if (end < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

/** Whether an `If-None-Match`/`If-Match` list holds `etag` (weak comparison when `weak`). */
function matchesEtag(list: string, etag: string, weak: boolean): boolean {
  if (list.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return list.split(',').some((item) => {
    const tag = item.trim();
    if (tag === etag) return true;
    return weak && tag.replace(/^W\//, '') === bare;
  });
}

// --- PATHS ---

/** The decoded segments of a request path below the mount, checked one by one. */
export function pathSegments(rest: string): string[] {
  const segments: string[] = [];
  for (const raw of rest.split('/')) {
    if (raw === '') continue;
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      throw new InputError('the path has an invalid percent-encoding');
    }
    if (segment === '..' || segment === '.')
      throw new InputError(`path traversal ('${segment}') is not allowed`);
    if (segment.includes('/') || segment.includes('\\')) {
      throw new InputError('an encoded slash or backslash in the path is not allowed');
    }
    if (/[\u0000-\u001f\u007f]/.test(segment))
      throw new InputError('control characters in the path are not allowed');
    if (segment.startsWith('.')) throw new InputError('hidden files are not served');
    segments.push(segment);
  }
  return segments;
}

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (char) => `&#x${char.charCodeAt(0).toString(16)};`);

/** Percent-encodes what may not stand in a path segment. */
export const encodeSegment = (text: string): string =>
  encodeURIComponent(text).replace(/%(3A|40|2B|24|2C|3B|3D|26)/g, (_, hex: string) =>
    String.fromCharCode(parseInt(hex, 16)),
  );

// --- THE HANDLER ---

/**
 * Serves the repository folder. {@link RepositoryFiles.handle} either answers the request or throws
 * (before anything was written) an error for the error middleware.
 */
export class RepositoryFiles {
  private readonly dir: string;
  private readonly mount: string;
  private readonly logger: Logger;
  private readonly cacheFileBytes: number;
  private readonly cacheBytes: number;
  private readonly chunkBytes: number;
  private readonly revalidateMs: number;
  private readonly cache = new Map<string, CachedFile>();
  private readonly resolved = new Map<string, Resolved>();
  private readonly spare: Buffer[] = [];
  private cached = 0;
  private root: string | undefined;
  private generation = 0;
  private watcher: fs.FSWatcher | undefined;
  private closed = false;

  constructor(options: RepositoryFilesOptions) {
    this.dir = path.resolve(options.dir);
    this.mount = options.mount;
    this.logger = options.logger;
    this.cacheFileBytes = options.cacheFileBytes ?? 4 * 1024 * 1024;
    this.cacheBytes = options.cacheBytes ?? 64 * 1024 * 1024;
    this.chunkBytes = options.chunkBytes ?? 256 * 1024;
    this.revalidateMs = options.revalidateMs ?? 1000;
  }

  /** Whether a request path is below the mount. */
  covers(pathname: string): boolean {
    return pathname === this.mount || pathname.startsWith(`${this.mount}/`);
  }

  /**
   * Answers a request for `pathname` (a path below the mount, not yet percent-decoded).
   *
   * @throws InputError (400) for traversal and malformed paths, NotFoundError (404), HttpError (405, 412, 416)
   */
  async handle(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new HttpError(405, `method ${req.method} is not allowed on repository files`, {
        Allow: 'GET, HEAD',
      });
    }
    this.watch();
    let found = this.resolved.get(pathname);
    if (!found || found.generation !== this.generation || Date.now() - found.checkedAt > this.revalidateMs) {
      const resolved = this.resolve(req, res, pathname);
      // a folder: its listing was sent
      if (!resolved) return;
      found = resolved;
    }

    const hit = this.cache.get(found.real);
    if (hit && sameVersion(hit, found)) {
      this.sendFile(req, res, found.real, hit, hit.body, undefined);
      return;
    }
    if (req.method === 'HEAD') {
      this.sendFile(req, res, found.real, found, undefined, undefined);
      return;
    }
    // read through a descriptor: what is sent is one version of the file, even if it is replaced
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(found.real, 'r');
    } catch {
      this.resolved.delete(pathname);
      throw this.notFound(pathname);
    }
    let owned = true;
    try {
      const facts = await handle.stat();
      if (!facts.isFile()) throw this.notFound(pathname);
      if (facts.size <= this.cacheFileBytes) {
        const body = Buffer.allocUnsafe(facts.size);
        let read = 0;
        while (read < facts.size) {
          const { bytesRead } = await handle.read(body, read, facts.size - read, read);
          if (bytesRead === 0) break;
          read += bytesRead;
        }
        const entry: CachedFile = {
          ino: facts.ino,
          size: read,
          mtimeMs: facts.mtimeMs,
          ctimeMs: facts.ctimeMs,
          body: read === facts.size ? body : body.subarray(0, read),
        };
        if (read === facts.size) this.remember(found.real, entry);
        this.sendFile(req, res, found.real, entry, entry.body, undefined);
        return;
      }
      owned = false;
      this.sendFile(req, res, found.real, facts, undefined, handle);
    } finally {
      if (owned) await handle.close();
    }
  }

  /** Stops watching the folder and forgets the files held in memory. */
  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    this.cache.clear();
    this.resolved.clear();
    this.spare.length = 0;
    this.cached = 0;
  }

  // --- internal helpers ---

  /**
   * Checks and resolves a request path: the file it names (remembered for later requests), or
   * undefined when it is a folder, whose listing is sent here.
   */
  private resolve(req: IncomingMessage, res: ServerResponse, pathname: string): Resolved | undefined {
    const segments = pathSegments(pathname.slice(this.mount.length));
    const root = this.rootDir();
    let real: string;
    let stat: fs.Stats;
    try {
      real = fs.realpathSync.native(path.join(root, ...segments));
      stat = fs.statSync(real);
    } catch {
      throw this.notFound(pathname);
    }
    // symlinks are followed only as long as they stay inside the repository
    if (real !== root && !real.startsWith(`${root}/`)) {
      this.logger.debug('refusing a symlink that leaves the repository', { path: pathname });
      throw this.notFound(pathname);
    }
    if (stat.isDirectory()) {
      this.listing(req, res, real, pathname, segments);
      return undefined;
    }
    if (!stat.isFile() || pathname.endsWith('/')) throw this.notFound(pathname);
    const resolved: Resolved = {
      real,
      ino: stat.ino,
      size: stat.size,
      mtimeMs: stat.mtimeMs,
      ctimeMs: stat.ctimeMs,
      generation: this.generation,
      checkedAt: Date.now(),
    };
    if (this.resolved.size >= MAX_RESOLVED) this.resolved.delete(this.resolved.keys().next().value as string);
    this.resolved.set(pathname, resolved);
    return resolved;
  }

  /**
   * Watches the repository folder: any change in it makes every remembered resolution stale (new
   * database, new symlink, removed package). Without a watch, resolutions last `revalidateMs`.
   */
  private watch(): void {
    if (this.watcher || this.closed) return;
    try {
      this.watcher = fs.watch(this.rootDir(), { persistent: false }, () => {
        this.generation++;
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.generation++;
      });
    } catch {
      // the folder does not exist yet, or no watches are left: revalidation by time covers it
      this.watcher = undefined;
    }
  }

  private rootDir(): string {
    if (this.root) return this.root;
    try {
      this.root = fs.realpathSync.native(this.dir);
    } catch {
      // not created yet: nothing to serve
      throw new NotFoundError('the repository does not exist yet');
    }
    return this.root;
  }

  private notFound(pathname: string): NotFoundError {
    let shown: string;
    try {
      shown = decodeURIComponent(pathname.slice(this.mount.length + 1));
    } catch {
      shown = pathname;
    }
    shown = shown.replace(/[\u0000-\u001f\u007f]/g, '?');
    return new NotFoundError(
      `'${shown.length > 200 ? `${shown.slice(0, 200)}…` : shown}' was not found in the repository`,
    );
  }

  private remember(key: string, entry: CachedFile): void {
    const previous = this.cache.get(key);
    if (previous) {
      this.cached -= previous.size;
      this.cache.delete(key);
    }
    if (entry.size > this.cacheBytes) return;
    // oldest first out, until the new one fits
    for (const [oldKey, old] of this.cache) {
      if (this.cached + entry.size <= this.cacheBytes) break;
      this.cache.delete(oldKey);
      this.cached -= old.size;
    }
    this.cache.set(key, entry);
    this.cached += entry.size;
  }

  /**
   * Answers with a file: conditions, range, headers, then the body from memory (`body`) or from the
   * open file (`handle`, closed here).
   */
  private sendFile(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    facts: FileFacts,
    body: Buffer | undefined,
    handle: fs.promises.FileHandle | undefined,
  ): void {
    const etag = etagOf(facts);
    const modified = new Date(facts.mtimeMs);
    const lastModified = modified.toUTCString();
    const headers = req.headers;
    const close = () => void handle?.close().catch(() => undefined);

    // preconditions (RFC 9110 13.2.2)
    const ifMatch = headers['if-match'];
    const ifUnmodified = headers['if-unmodified-since'];
    if (
      (ifMatch !== undefined && !matchesEtag(ifMatch, etag, false)) ||
      (ifMatch === undefined &&
        ifUnmodified !== undefined &&
        httpSeconds(facts.mtimeMs) > Date.parse(ifUnmodified))
    ) {
      close();
      throw new HttpError(412, 'precondition failed');
    }
    const ifNoneMatch = headers['if-none-match'];
    const ifModified = headers['if-modified-since'];
    const notModified =
      ifNoneMatch !== undefined
        ? matchesEtag(ifNoneMatch, etag, true)
        : ifModified !== undefined && httpSeconds(facts.mtimeMs) <= Date.parse(ifModified);
    if (notModified) {
      close();
      res.writeHead(304, { ETag: etag, 'Last-Modified': lastModified });
      res.end();
      return;
    }

    let range: ByteRange | undefined;
    const rangeHeader = headers.range;
    if (rangeHeader !== undefined && req.method === 'GET') {
      const ifRange = headers['if-range'] as string | undefined;
      const rangeApplies =
        ifRange === undefined ||
        (ifRange.startsWith('"') || ifRange.startsWith('W/')
          ? ifRange === etag
          : Date.parse(ifRange) === httpSeconds(facts.mtimeMs));
      const parsed = rangeApplies ? parseRange(rangeHeader, facts.size) : undefined;
      if (parsed === 'unsatisfiable') {
        close();
        throw new HttpError(
          416,
          `the range '${rangeHeader.slice(0, 100)}' is outside the file of ${facts.size} bytes`,
          {
            'Content-Range': `bytes */${facts.size}`,
          },
        );
      }
      range = parsed;
    }

    const start = range?.start ?? 0;
    const end = range ? range.end : facts.size - 1;
    const length = facts.size === 0 ? 0 : end - start + 1;
    const out: Record<string, string | number> = {
      'Content-Type': contentTypeOf(name),
      'Content-Length': length,
      'Last-Modified': lastModified,
      ETag: etag,
      'Accept-Ranges': 'bytes',
    };
    if (range) out['Content-Range'] = `bytes ${start}-${end}/${facts.size}`;
    res.writeHead(range ? 206 : 200, out);

    if (req.method === 'HEAD' || length === 0) {
      close();
      res.end();
      return;
    }
    if (body) {
      close();
      res.end(range ? body.subarray(start, end + 1) : body);
      return;
    }
    if (!handle) {
      res.end();
      return;
    }
    this.stream(handle, res, start, end).then(
      () => undefined,
      (error: Error) => {
        this.logger.debug('sending a repository file broke off', {
          file: path.basename(name),
          error: error.message,
        });
        res.destroy();
      },
    );
  }

  /**
   * Sends bytes `start..end` of an open file: two buffers taken turns with, each read again only
   * once the socket has taken what was written from it (at most two chunks in flight, no buffer
   * allocated per chunk: twice the throughput of a read stream). Closes the file.
   */
  private async stream(
    handle: fs.promises.FileHandle,
    res: ServerResponse,
    start: number,
    end: number,
  ): Promise<void> {
    const buffers: [Buffer, Buffer] = [this.borrow(), this.borrow()];
    const written: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
    try {
      let position = start;
      for (let turn: 0 | 1 = 0; position <= end; turn = turn === 0 ? 1 : 0) {
        // the buffer of this turn is free once its last write reached the socket
        await written[turn];
        if (res.destroyed) return;
        const buffer = buffers[turn];
        const { bytesRead } = await handle.read(
          buffer,
          0,
          Math.min(buffer.length, end - position + 1),
          position,
        );
        if (bytesRead === 0) throw new Error('the file became shorter while it was sent');
        position += bytesRead;
        written[turn] = new Promise<void>((resolve) => {
          const done = () => {
            res.off('close', done);
            resolve();
          };
          res.once('close', done);
          res.write(buffer.subarray(0, bytesRead), done);
        });
      }
      await Promise.all(written);
      res.end();
    } catch (error) {
      // no way to say so in the middle of a body: the client sees the connection break
      res.destroy();
      throw error;
    } finally {
      await Promise.all(written);
      this.giveBack(buffers[0]);
      this.giveBack(buffers[1]);
      await handle.close();
    }
  }

  /** A buffer of `chunkBytes` from the spares, or a new one. */
  private borrow(): Buffer {
    return this.spare.pop() ?? Buffer.allocUnsafe(this.chunkBytes);
  }

  /** Keeps a few buffers for the next transfers (their pages stay mapped: no faults on reuse). */
  private giveBack(buffer: Buffer): void {
    if (this.spare.length < MAX_SPARE_BUFFERS) this.spare.push(buffer);
  }

  /** The original's (actix-files') directory listing, sorted by name; hidden entries left out. */
  private listing(
    req: IncomingMessage,
    res: ServerResponse,
    dir: string,
    pathname: string,
    segments: readonly string[],
  ): void {
    const root = this.rootDir();
    const base = [this.mount, ...segments.map(encodeSegment)].join('/');
    const title = `Index of ${escapeHtml(pathname)}`;
    const items: string[] = [];
    for (const entry of fs
      .readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.name.startsWith('.')) continue;
      let folder = entry.isDirectory();
      if (entry.isSymbolicLink()) {
        // listed only when it resolves inside the repository
        try {
          const target = fs.realpathSync.native(path.join(dir, entry.name));
          if (target !== root && !target.startsWith(`${root}/`)) continue;
          folder = fs.statSync(target).isDirectory();
        } catch {
          continue;
        }
      } else if (!entry.isFile() && !folder) {
        continue;
      }
      const href = `${base}/${encodeSegment(entry.name)}`;
      items.push(`<li><a href="${href}">${escapeHtml(entry.name)}${folder ? '/' : ''}</a></li>`);
    }
    const html = `<html><head><title>${title}</title></head><body><h1>${title}</h1><ul>${items.join('')}</ul></body>\n</html>`;
    const body = Buffer.from(html);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}
