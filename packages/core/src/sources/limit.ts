/** Runs async functions with at most a fixed number of them at a time, in call order. */
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

/** Creates a {@link Limiter}; `concurrency` below 1 counts as 1. */
export function createLimiter(concurrency: number): Limiter {
  const max = Math.max(1, Math.floor(concurrency));
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = (): void => {
    const handOver = waiting.shift();
    // the slot passes straight to the next waiter, so a newcomer cannot take it in between
    if (handOver) handOver();
    else active--;
  };
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await task();
    } finally {
      release();
    }
  };
}
