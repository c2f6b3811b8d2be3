/**
 * JSON request bodies: `Content-Type: application/json` required (as actix's `Json` extractor), a
 * size limit, strict UTF-8, and validation by a zod schema with a message that says what is wrong.
 */
import type { IncomingMessage } from 'node:http';
import { InputError } from '@serene/core';
import type { Context } from 'koa';
import type { z } from 'zod';
import { PayloadTooLargeError } from './errors.js';
import { describeIssues } from './schemas.js';

/** Default limit of a JSON body: 2 MiB, actix-web's (raw PKGBUILDs travel in it). */
export const DEFAULT_BODY_LIMIT = 2 * 1024 * 1024;

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Beyond this many bytes, the rest of a refused body is not read to its end: the connection is
 * closed instead.
 */
const DISCARD_LIMIT = 64 * 1024 * 1024;

/**
 * Reads the rest of a refused body and throws it away, so that the client, still sending, gets to
 * read the answer (closing at once would reset the connection under it).
 */
function discard(req: IncomingMessage): void {
  let dropped = 0;
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > DISCARD_LIMIT) req.destroy();
  });
  req.resume();
}

/** Reads the whole body, refusing more than `limit` bytes. */
function readRaw(ctx: Context, limit: number): Promise<Buffer> {
  const req = ctx.req;
  const declared = ctx.request.length;
  if (declared !== undefined && declared > limit) {
    discard(req);
    return Promise.reject(
      new PayloadTooLargeError(`request body is ${declared} bytes, the limit is ${limit}`),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        discard(req);
        reject(new PayloadTooLargeError(`request body is larger than the limit of ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new InputError(`the request body could not be read: ${error.message}`));
    };
    const onAborted = () => onError(new Error('the client went away'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/** Reads and parses the JSON body (no validation). */
export async function readJson(ctx: Context, limit: number): Promise<unknown> {
  const matched = ctx.is('application/json', '+json');
  // null: the request has no body at all
  if (matched === null)
    throw new InputError('Json deserialize error: the body is empty, expected a JSON value');
  if (matched === false) {
    const type = ctx.get('Content-Type');
    throw new InputError(
      `Content type error: expected 'application/json', got ${type ? `'${type.slice(0, 100)}'` : 'no Content-Type'}`,
    );
  }
  const raw = await readRaw(ctx, limit);
  let text: string;
  try {
    text = decoder.decode(raw);
  } catch {
    throw new InputError('Json deserialize error: the body is not valid UTF-8');
  }
  if (text.trim() === '')
    throw new InputError('Json deserialize error: the body is empty, expected a JSON value');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InputError(`Json deserialize error: ${(error as Error).message}`);
  }
}

/** Reads the JSON body and validates it against `schema`. */
export async function readBody<S extends z.ZodType>(
  ctx: Context,
  schema: S,
  limit: number,
): Promise<z.output<S>> {
  const json = await readJson(ctx, limit);
  const result = schema.safeParse(json);
  if (!result.success) throw new InputError(`Json deserialize error: ${describeIssues(result.error, json)}`);
  return result.data;
}
