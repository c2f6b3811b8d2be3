import type { HeldUpdate } from '../contracts/gate.js';
import type { BuildReason, BuildState } from '../contracts/store.js';

/** The events of a build, as the HTTP layer (SSE), metrics and plugins receive them. */
export interface BuildEvents {
  /** a build changed state (every change the store records) */
  state: {
    base: string;
    started: Date;
    state: BuildState;
    reason?: BuildReason;
    /** the architecture the build is for (docs/engines.md#architectures) */
    arch?: string;
  };
  /** a chunk of build output, in order */
  log: { base: string; started: Date; chunk: string };
  /**
   * the update gate held an update (new revision or reasons), released it (its cool-off ended), or
   * a reviewer approved or rejected it; `message` is a line for people (the live log shows it)
   */
  gate: {
    base: string;
    action: 'held' | 'released' | 'approved' | 'rejected';
    message: string;
    held?: HeldUpdate;
  };
}

/** A handler of one event type. */
export type EventHandler<T> = (event: T) => void;

/**
 * A small typed, synchronous event bus. Handlers must be quick and must not throw; a throwing
 * handler is reported to `onError` and the others still run.
 */
export class EventBus<Events extends object = BuildEvents> {
  private readonly handlers = new Map<keyof Events, Set<EventHandler<never>>>();

  constructor(private readonly onError: (error: unknown) => void = () => {}) {}

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends keyof Events>(type: K, handler: EventHandler<Events[K]>): () => void {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler as EventHandler<never>);
    return () => {
      set.delete(handler as EventHandler<never>);
    };
  }

  /** Delivers `event` to every handler of `type`. */
  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.handlers.get(type);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        (handler as EventHandler<Events[K]>)(event);
      } catch (error) {
        this.onError(error);
      }
    }
  }

  /** How many handlers listen to `type`. */
  listenerCount(type: keyof Events): number {
    return this.handlers.get(type)?.size ?? 0;
  }
}
