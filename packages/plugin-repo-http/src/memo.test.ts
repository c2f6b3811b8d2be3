import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Memo } from './memo.js';

describe('Memo', () => {
  it('computes once until invalidated, shares a running computation, and drops results of a stale one', async () => {
    const memo = new Memo<number>(60_000);
    let calls = 0;
    let release: () => void = () => {};
    const compute = () =>
      new Promise<number>((resolve) => {
        calls++;
        const value = calls;
        release = () => resolve(value);
      });
    const first = memo.get(compute);
    const second = memo.get(compute);
    release();
    expect(await first).toBe(1);
    expect(await second).toBe(1);
    expect(await memo.get(compute)).toBe(1);
    expect(calls).toBe(1);

    memo.invalidate();
    const before = memo.get(compute);
    const releaseBefore = release;
    memo.invalidate();
    // a change during the computation: a new request does not get the old result
    const after = memo.get(compute);
    const releaseAfter = release;
    releaseBefore();
    releaseAfter();
    expect(await before).toBe(2);
    expect(await after).toBe(3);
    expect(await memo.get(compute)).toBe(3);
    expect(calls).toBe(3);
  });

  it('trusts a value no longer than maxAgeMs', async () => {
    const memo = new Memo<number>(20);
    let calls = 0;
    const compute = async () => ++calls;
    expect(await memo.get(compute)).toBe(1);
    await sleep(40);
    expect(await memo.get(compute)).toBe(2);
  });
});
