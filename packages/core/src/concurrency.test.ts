import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createKeyedLock, createLimiter, createPause, mapLimit, Semaphore } from './concurrency.js';

/** A task that runs until `finish()` is called, recording when it started. */
function gate(log: string[], name: string) {
  let finish!: (value: string) => void;
  let fail!: (error: Error) => void;
  const done = new Promise<string>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  return {
    task: () => {
      log.push(name);
      return done;
    },
    finish: () => finish(name),
    fail: (error: Error) => fail(error),
  };
}

describe('Semaphore', () => {
  it('refuses a limit that is not a positive integer', () => {
    for (const limit of [0, -1, 1.5, Number.NaN]) expect(() => new Semaphore(limit)).toThrow(RangeError);
  });

  it('runs at most its limit at once, hands each freed slot to the longest waiter, and counts', async () => {
    const slots = new Semaphore(2);
    const log: string[] = [];
    const tasks = ['a', 'b', 'c', 'd'].map((name) => gate(log, name));
    const runs = tasks.map((t) => slots.run(t.task));
    await tick();
    expect(log).toEqual(['a', 'b']);
    expect([slots.running, slots.queued]).toEqual([2, 2]);
    tasks[1]!.finish();
    await tick();
    expect(log).toEqual(['a', 'b', 'c']);
    // a newcomer queues behind d although a slot is about to be freed
    const late = gate(log, 'late');
    const lateRun = slots.run(late.task);
    tasks[0]!.fail(new Error('a failed'));
    await expect(runs[0]).rejects.toThrow('a failed');
    await tick();
    expect(log).toEqual(['a', 'b', 'c', 'd']);
    for (const t of [tasks[2]!, tasks[3]!, late]) t.finish();
    expect(await Promise.all([runs[1], runs[2], runs[3], lateRun])).toEqual(['b', 'c', 'd', 'late']);
    expect([slots.running, slots.queued]).toEqual([0, 0]);
  });

  it('leaves the queue when the wait is aborted, with the signal reason, and gives a slot back once', async () => {
    const slots = new Semaphore(1);
    const release = await slots.acquire();
    const controller = new AbortController();
    const waiting = slots.acquire(controller.signal);
    expect(slots.queued).toBe(1);
    controller.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    expect(slots.queued).toBe(0);
    await expect(slots.acquire(controller.signal)).rejects.toThrow('cancelled');
    release();
    release();
    expect(slots.running).toBe(0);
    const again = await slots.acquire();
    expect(slots.running).toBe(1);
    again();
  });
});

describe('createLimiter and mapLimit', () => {
  it('counts a concurrency below 1 as 1: a serial queue that goes on after a failure', async () => {
    const limit = createLimiter(0);
    const log: string[] = [];
    const first = gate(log, 'first');
    const second = gate(log, 'second');
    const runs = [limit(first.task), limit(second.task)];
    await tick();
    expect(log).toEqual(['first']);
    first.fail(new Error('boom'));
    await expect(runs[0]).rejects.toThrow('boom');
    await tick();
    expect(log).toEqual(['first', 'second']);
    second.finish();
    expect(await runs[1]).toBe('second');
  });

  it('maps in order with a bounded number of calls at a time', async () => {
    let running = 0;
    let peak = 0;
    const results = await mapLimit([5, 1, 4, 2, 3, 0], 3, async (n, index) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(n);
      running--;
      return `${index}:${n}`;
    });
    expect(results).toEqual(['0:5', '1:1', '2:4', '3:2', '4:3', '5:0']);
    expect(peak).toBe(3);
  });
});

describe('createKeyedLock', () => {
  it('runs tasks of one key one after the other, and of other keys meanwhile', async () => {
    const lock = createKeyedLock();
    const log: string[] = [];
    const a1 = gate(log, 'a1');
    const a2 = gate(log, 'a2');
    const b1 = gate(log, 'b1');
    const runs = [lock('a', a1.task), lock('a', a2.task), lock('b', b1.task)];
    await tick();
    expect(log).toEqual(['a1', 'b1']);
    a1.fail(new Error('a1 failed'));
    await expect(runs[0]).rejects.toThrow('a1 failed');
    await tick();
    expect(log).toEqual(['a1', 'b1', 'a2']);
    a2.finish();
    b1.finish();
    expect(await Promise.all([runs[1], runs[2]])).toEqual(['a2', 'b1']);
    // a key used again later starts at once
    expect(await lock('a', async () => 'again')).toBe('again');
  });
});

describe('createPause', () => {
  /** Runs for `ms` without giving the event loop a turn. */
  const busy = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };

  it('gives the event loop a turn once the budget is spent, not before', async () => {
    const pause = createPause(20);
    let turns = 0;
    const counting = setInterval(() => turns++, 0);
    try {
      // within the budget: no turn, however many steps
      for (let i = 0; i < 1000; i++) await pause();
      expect(turns).toBe(0);
      // 100 ms of 5 ms steps: a turn every 20 ms or so
      for (let i = 0; i < 20; i++) {
        busy(5);
        await pause();
      }
      expect(turns).toBeGreaterThanOrEqual(3);
      expect(turns).toBeLessThanOrEqual(6);
    } finally {
      clearInterval(counting);
    }
  });

  it('holds the event loop at most about one step past the budget', async () => {
    const pause = createPause(10);
    const gaps: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      gaps.push(performance.now() - last);
      last = performance.now();
    }, 1);
    try {
      for (let i = 0; i < 200; i++) {
        busy(1);
        await pause();
      }
    } finally {
      clearInterval(timer);
    }
    expect(gaps.length).toBeGreaterThan(5);
    // budget 10 ms plus one 1 ms step, with room for a slow machine
    expect(Math.max(...gaps.slice(1))).toBeLessThan(40);
  });
});
