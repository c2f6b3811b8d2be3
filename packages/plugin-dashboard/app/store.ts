/**
 * The dashboard's state: the server, who is signed in, the package list and the queue, kept live by
 * the server-wide stream (`GET /events`). Components read it with {@link useStore}.
 */
import { useEffect, useState } from 'preact/hooks';
import { Api, ApiError, forgetSecret, readEventStream, storedSecret, storeSecret } from './api';
import type { HeldUpdate, PackagePeek, QueueEntry, SereneInfo, StateEvent } from './types';

export interface Toast {
  id: number;
  kind: 'ok' | 'error';
  text: string;
}

export interface State {
  api: Api;
  info: SereneInfo | undefined;
  /** the name of the signed-in secret; undefined when nobody is signed in */
  user: string | undefined;
  /** set once the server and the sign-in are known */
  ready: boolean;
  /** the server needs a secret to read, and there is none (or it was refused) */
  needsSignIn: boolean;
  signInError: string | undefined;
  packages: PackagePeek[] | undefined;
  packagesError: string | undefined;
  /** held updates of the update gate; undefined when the server has no gate */
  held: HeldUpdate[] | undefined;
  queue: QueueEntry[];
  /** the live stream is connected */
  live: boolean;
  /** counts up with every state change, for pages that refresh on changes */
  changes: number;
  lastChange: StateEvent | undefined;
  toasts: Toast[];
}

let state: State = {
  api: new Api(storedSecret()),
  info: undefined,
  user: undefined,
  ready: false,
  needsSignIn: false,
  signInError: undefined,
  packages: undefined,
  packagesError: undefined,
  held: undefined,
  queue: [],
  live: false,
  changes: 0,
  lastChange: undefined,
  toasts: [],
};
const listeners = new Set<() => void>();

export function getState(): State {
  return state;
}

function update(changes: Partial<State>): void {
  state = { ...state, ...changes };
  for (const listener of listeners) listener();
}

/** The state, re-rendering the component when it changes. */
export function useStore(): State {
  const [, setTick] = useState(0);
  useEffect(() => {
    const listener = () => setTick((tick) => tick + 1);
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  }, []);
  return state;
}

let toastId = 0;
/** Shows a short message (announced to screen readers), gone after a few seconds. */
export function toast(kind: Toast['kind'], text: string): void {
  const id = ++toastId;
  update({ toasts: [...state.toasts, { id, kind, text }] });
  setTimeout(
    () => update({ toasts: state.toasts.filter((entry) => entry.id !== id) }),
    kind === 'error' ? 8000 : 4000,
  );
}

/** Runs an action, with a toast for its outcome; resolves whether it succeeded. */
export async function act(what: string, action: () => Promise<unknown>): Promise<boolean> {
  try {
    await action();
    toast('ok', what);
    return true;
  } catch (error) {
    toast('error', error instanceof Error ? error.message : String(error));
    if (error instanceof ApiError && (error.status === 401 || error.status === 403) && state.user) signOut();
    return false;
  }
}

// --- start, sign-in ---

/**
 * Learns the server, checks a kept secret, loads the data and opens the live stream. The package
 * list is asked for at once, beside the other two requests (with 5,000 packages it is the
 * longest part of the start).
 */
export async function boot(): Promise<void> {
  const secret = storedSecret();
  const early = new Api(secret).packages().then(
    (list) => ({ list }),
    (error: unknown) => ({ error }),
  );
  let info: SereneInfo;
  let who: { name: string } | ApiError | undefined;
  try {
    [info, who] = await Promise.all([
      new Api(null).info(),
      secret === null
        ? undefined
        : new Api(secret).whoami().catch((error: unknown) => {
            if (error instanceof ApiError) return error;
            throw error;
          }),
    ]);
  } catch (error) {
    update({ ready: true, packagesError: `cannot reach the server: ${(error as Error).message}` });
    return;
  }
  update({ info });
  if (who instanceof ApiError) {
    if (who.status === 401 || who.status === 403) {
      forgetSecret();
      update({ api: new Api(null), signInError: 'the kept secret is no longer accepted: sign in again' });
    }
  } else if (who && secret !== null) {
    update({ user: who.name, api: new Api(secret) });
  }
  const needsSignIn = !info.readable && state.user === undefined;
  update({ ready: true, needsSignIn });
  if (needsSignIn) return;
  const first = await early;
  // the early list counts when it was asked for with the secret now in use (none, or the accepted one)
  const sameSecret = (state.user !== undefined) === (secret !== null);
  start('list' in first && sameSecret ? first.list : undefined);
}

/** Checks a secret with the server and keeps it; resolves with an error message, or undefined. */
export async function signIn(secret: string, remember: boolean): Promise<string | undefined> {
  try {
    const { name } = await new Api(secret).whoami();
    storeSecret(secret, remember);
    update({ user: name, api: new Api(secret), needsSignIn: false, signInError: undefined });
    restart();
    return undefined;
  } catch (error) {
    if (error instanceof ApiError && error.status === 403)
      return 'this secret is not in the server’s authorized_secrets';
    return error instanceof Error ? error.message : String(error);
  }
}

export function signOut(): void {
  forgetSecret();
  const needsSignIn = state.info?.readable !== true;
  update({ user: undefined, api: new Api(null), needsSignIn });
  restart();
}

// --- data and the live stream ---

let stream: AbortController | undefined;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;

function restart(): void {
  stream?.abort();
  stream = undefined;
  update({ packages: undefined, queue: [], live: false });
  if (!state.needsSignIn) start();
}

function start(list?: PackagePeek[]): void {
  void loadHeld();
  if (list) update({ packages: list, packagesError: undefined });
  else void loadPackages();
  const controller = new AbortController();
  stream = controller;
  void follow(controller.signal);
}

/** Loads the held updates (again); a server without the update gate answers 404: no Review tab. */
export async function loadHeld(): Promise<void> {
  try {
    update({ held: await state.api.reviews() });
  } catch {
    update({ held: undefined });
  }
}

/** Loads the package list (again). */
export async function loadPackages(): Promise<void> {
  try {
    update({ packages: await state.api.packages(), packagesError: undefined });
  } catch (error) {
    update({ packagesError: (error as Error).message });
  }
}

/** Loads the list again soon (once for a burst of changes). */
export function refreshSoon(ms = 800): void {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = undefined;
    void loadPackages();
    if (state.held !== undefined) void loadHeld();
  }, ms);
}

/** Follows `GET /events`, reconnecting with a growing pause, until aborted. */
async function follow(signal: AbortSignal): Promise<void> {
  let pause = 1000;
  while (!signal.aborted) {
    try {
      const response = await state.api.request('GET', '/events', undefined, signal);
      update({ live: true });
      pause = 1000;
      await readEventStream(response, (message) => {
        if (message.event === 'queue') update({ queue: JSON.parse(message.data) as QueueEntry[] });
        else if (message.event === 'change') applyChange(JSON.parse(message.data) as StateEvent);
      });
    } catch {
      // aborted, refused or cut: tried again below unless aborted
    }
    update({ live: false });
    if (signal.aborted) return;
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 30_000);
    // what changed while away
    if (!signal.aborted) void loadPackages();
  }
}

/** One state change: the queue and the package's row follow it at once. */
function applyChange(event: StateEvent): void {
  const done = event.state.state !== 'pending' && event.state.state !== 'running';
  let queue = state.queue;
  const index = queue.findIndex((entry) => entry.base === event.base && entry.started === event.started);
  if (done) queue = queue.filter((_, i) => i !== index);
  else if (index >= 0) {
    const phase = event.state.state === 'running' ? 'running' : queue[index]!.phase;
    queue = queue.map((entry, i) =>
      i === index
        ? { ...entry, state: event.state, phase, waiting_for: phase === 'running' ? [] : entry.waiting_for }
        : entry,
    );
  } else {
    const architecture = queue[0]?.architecture ?? state.info?.architecture ?? '';
    queue = [
      ...queue,
      {
        base: event.base,
        started: event.started,
        reason: event.reason ?? 'unknown',
        state: event.state,
        phase: event.state.state === 'running' ? 'running' : 'queued',
        waiting_for: [],
        // placed on an engine once it runs: the refresh below tells which
        engine: null,
        architecture,
      },
    ];
  }
  let packages = state.packages;
  if (packages) {
    const at = packages.findIndex((pkg) => pkg.base === event.base);
    if (at >= 0) {
      const pkg = packages[at]!;
      const previous = pkg.build && pkg.build.started === event.started ? pkg.build : undefined;
      const build = {
        ...(previous ?? {
          version: null,
          mem_peak: null,
          cpu_user: null,
          cpu_system: null,
          io_tbr: null,
          io_tbw: null,
          ended: null,
        }),
        state: event.state,
        reason: event.reason ?? previous?.reason ?? 'unknown',
        started: event.started,
        ended: done ? new Date().toISOString() : null,
      };
      packages = packages.slice();
      packages[at] = { ...pkg, build };
    }
  }
  update({ queue, packages, changes: state.changes + 1, lastChange: event });
  // a finished build may have published a new version: the list says so after a refresh
  if (done) refreshSoon();
  // a queue entry whose phase the event cannot tell (waiting or queued), or a running one not yet
  // known on an engine, is asked for
  const unplaced = queue.some((entry) => entry.phase === 'running' && entry.engine === null);
  if (!done && (index < 0 || unplaced)) void refreshQueue();
}

/**
 * Asks for the queue, and takes the answer only when no state change arrived while it was on its
 * way (else it could bring back a build that has just ended); tries again a few times.
 */
async function refreshQueue(): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const seen = state.changes;
    let fresh: QueueEntry[];
    try {
      fresh = await state.api.queue();
    } catch {
      return;
    }
    if (state.changes === seen) {
      update({ queue: fresh });
      return;
    }
  }
}
