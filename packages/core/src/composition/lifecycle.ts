/**
 * The one ordered list serene starts and stops: parts start in the order they were added and stop
 * in the reverse order, on shutdown and when a later part fails to start alike.
 */
import { formatErrorChain } from '../errors.js';
import { createNoopLogger, type Logger } from '../logger.js';

/**
 * Something serene starts and stops: a plugin, a schedule, the HTTP listener. Both members are
 * optional; a part without `start` is only stopped, one without `stop` only started.
 */
export interface Part {
  /** Short name, for the log lines of the start and the stop. */
  readonly name: string;
  /** Starts the part; a rejection stops the whole start (the parts started so far stop again). */
  start?(): Promise<void> | void;
  /** Stops the part; called once, and only when its start completed. */
  stop?(): Promise<void> | void;
}

/** Options of {@link createLifecycle}. */
export interface LifecycleOptions {
  /** @default a logger that drops everything */
  logger?: Logger;
}

/** The ordered list of parts; see {@link createLifecycle}. */
export interface Lifecycle {
  /**
   * Appends a part: it starts after the parts already added and stops before them.
   *
   * @throws Error once the start has begun: the order is fixed by then.
   */
  add<T extends Part>(part: T): T;
  /** The parts, in start order. */
  readonly parts: readonly Part[];
  /**
   * Starts every part in order. When one fails, the parts already started stop in reverse order
   * (their failures logged) and the first error is thrown.
   */
  start(): Promise<void>;
  /**
   * Stops the started parts in reverse order; a failing stop is logged and the others still stop.
   * Idempotent: every call returns the same promise.
   */
  stop(): Promise<void>;
}

/** Creates an empty {@link Lifecycle}. */
export function createLifecycle(options: LifecycleOptions = {}): Lifecycle {
  const logger = options.logger ?? createNoopLogger();
  const parts: Part[] = [];
  const started: Part[] = [];
  let starting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;

  const stopStarted = async () => {
    for (const part of started.splice(0).reverse()) {
      try {
        await part.stop?.();
      } catch (error) {
        logger.error('a part failed to stop', { part: part.name, error: formatErrorChain(error) });
      }
    }
  };

  return {
    parts,
    add(part) {
      if (starting) throw new Error(`cannot add ${part.name}: the start has begun`);
      parts.push(part);
      return part;
    },
    start() {
      starting ??= (async () => {
        for (const part of parts) {
          if (stopping) return;
          try {
            await part.start?.();
          } catch (error) {
            logger.error('a part failed to start; stopping the parts started', {
              part: part.name,
              error: formatErrorChain(error),
            });
            await stopStarted();
            throw error;
          }
          started.push(part);
        }
      })();
      return starting;
    },
    stop() {
      stopping ??= (async () => {
        // a start in progress finishes its current part first, then sees `stopping`
        await starting?.catch(() => undefined);
        await stopStarted();
      })();
      return stopping;
    },
  };
}
