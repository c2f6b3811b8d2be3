/**
 * Limits on how many async tasks run at once, all made of one primitive: a counting
 * {@link Semaphore} with a FIFO queue. The server-wide build limit is one; a {@link Limiter} (the
 * AUR and git requests), {@link mapLimit} (reading many packages), a serial queue
 * (`createLimiter(1)`: a database's writes) and a {@link createKeyedLock} (one run per container
 * name) are made of it.
 *
 * Own code rather than p-limit: the build queue needs waiting that an AbortSignal cancels, and the
 * running and queued counts it shows.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { TimeoutError } from './errors.js';

/**
 * A counting semaphore with a FIFO queue: a freed slot passes straight to the longest waiter, so a
 * newcomer never takes it in between.
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: { resolve: () => void; reject: (error: unknown) => void }[] = [];

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('limit must be a positive integer');
  }

  /** Slots taken now. */
  get running(): number {
    return this.active;
  }

  /** Callers waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Waits for a slot; resolves with the function that gives it back (calling it twice gives it back
   * once). Aborting leaves the queue and rejects with the signal's reason.
   */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.active < this.limit) {
      this.active++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject,
      };
      const onAbort = () => {
        const index = this.waiting.indexOf(waiter);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(signal?.reason ?? new TimeoutError('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
    });
    return this.releaser();
  }

  /** Runs `task` in a slot, and gives the slot back when it settles. */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await task();
    } finally {
      release();
    }
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next.resolve();
      else this.active--;
    };
  }
}

/** Runs async functions with at most a fixed number of them at a time, in call order. */
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

/**
 * Creates a {@link Limiter}; `concurrency` below 1 counts as 1, and `createLimiter(1)` is a serial
 * queue (each task starts when the one before settled, whether it failed or not).
 */
export function createLimiter(concurrency: number): Limiter {
  const slots = new Semaphore(Math.max(1, Math.floor(concurrency)));
  return (task) => slots.run(task);
}

/**
 * Maps `items` through `fn` with at most `concurrency` calls at a time; the results are in the
 * items' order. Rejects as `Promise.all` does: with the first failure (the calls under way still
 * run to their end, and the ones not started yet still start).
 */
export function mapLimit<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const limit = createLimiter(concurrency);
  return Promise.all(items.map((item, index) => limit(() => fn(item, index))));
}

/** A per-key serial queue: tasks with the same key run one after the other, other keys meanwhile. */
export type KeyedLock = <T>(key: string, task: () => Promise<T>) => Promise<T>;

/** Creates a {@link KeyedLock}; it keeps nothing for a key with no task queued or running. */
export function createKeyedLock(): KeyedLock {
  const locks = new Map<string, Semaphore>();
  return async (key, task) => {
    let lock = locks.get(key);
    if (!lock) {
      lock = new Semaphore(1);
      locks.set(key, lock);
    }
    try {
      return await lock.run(task);
    } finally {
      if (lock.running === 0 && lock.queued === 0 && locks.get(key) === lock) locks.delete(key);
    }
  };
}

/**
 * Lets a long loop give the event loop a turn once it has run for `budgetMs` since its last turn:
 * `await pause()` in each step costs a microtask, and a macrotask turn (`setImmediate`, so timers,
 * I/O and requests are handled in between) every `budgetMs`. A step count would not do: steps of a
 * loop over thousands of packages take from microseconds to milliseconds (docs/benchmarks.md,
 * issue 16).
 */
export type Pause = () => Promise<void>;

/** Creates a {@link Pause} with its own budget; the first turn comes `budgetMs` after this call. */
export function createPause(budgetMs = 10): Pause {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < budgetMs) return;
    await nextTurn();
    since = performance.now();
  };
}
