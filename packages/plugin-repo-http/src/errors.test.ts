import type { AddressInfo } from 'node:net';
import { createNoopLogger, DiskFullError } from '@serene/core';
import Koa from 'koa';
import { describe, expect, it } from 'vitest';
import { errorMiddleware, statusOf } from './errors.js';

describe('errors at the HTTP edge', () => {
  it('a full disk answers 507 Insufficient Storage, naming the full disk', async () => {
    const error = new DiskFullError('/srv/repository/serene.db.tar.gz', {
      cause: Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }),
    });
    expect(statusOf(error)).toBe(507);
    // as an error from another copy of core is known: by its name
    expect(statusOf(Object.assign(new Error('full'), { name: 'DiskFullError' }))).toBe(507);
    const app = new Koa();
    app.use(errorMiddleware(createNoopLogger()));
    app.use(() => {
      throw error;
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect(response.status).toBe(507);
      expect(await response.text()).toMatch(
        /^no space left on the disk to write '\/srv\/repository\/serene.db.tar.gz' \(the disk is full\): ENOSPC/,
      );
    } finally {
      server.close();
    }
  });
});
