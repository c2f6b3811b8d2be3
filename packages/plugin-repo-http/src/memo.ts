/**
 * A computed answer kept until something it depends on changes: {@link Memo.invalidate} is called
 * on every change (build events, writes through the API), and `maxAgeMs` bounds how long a value is
 * trusted in case a change happened behind the server's back.
 */
export class Memo<T> {
  private value: T | undefined;
  private computedAt = 0;
  private generation = 0;
  private pending: { generation: number; promise: Promise<T> } | undefined;

  constructor(private readonly maxAgeMs: number) {}

  /** Forgets the value; computations still running are not kept either. */
  invalidate(): void {
    this.generation++;
    this.value = undefined;
  }

  /**
   * The kept value, or a new one from `compute`. Concurrent callers share one computation, unless
   * a change came between: then a later caller starts its own, so nobody gets data older than
   * their request.
   */
  get(compute: () => Promise<T>): Promise<T> {
    if (this.value !== undefined && Date.now() - this.computedAt < this.maxAgeMs)
      return Promise.resolve(this.value);
    if (this.pending?.generation === this.generation) return this.pending.promise;
    const generation = this.generation;
    const promise = compute().then((value) => {
      if (generation === this.generation) {
        this.value = value;
        this.computedAt = Date.now();
      }
      return value;
    });
    const pending = { generation, promise };
    this.pending = pending;
    const clear = () => {
      if (this.pending === pending) this.pending = undefined;
    };
    promise.then(clear, clear);
    return promise;
  }
}
