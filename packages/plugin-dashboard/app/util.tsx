/** Small shared pieces: routes, build state words, times and sizes, the state badge. */
import { useEffect, useState } from 'preact/hooks';
import type { BuildInfo, BuildState } from './types';

// --- the router: hash routes, so the server serves one page ---

export type Route =
  | { page: 'list' }
  | { page: 'package'; base: string }
  | { page: 'build'; base: string; started: string }
  | { page: 'queue' }
  | { page: 'server' }
  | { page: 'add' }
  | { page: 'signin' }
  | { page: 'review' }
  | { page: 'held'; base: string }
  | { page: 'missing'; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '').split('?')[0] || '/';
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { page: 'list' };
  if (parts[0] === 'package' && parts.length === 2) return { page: 'package', base: parts[1]! };
  if (parts[0] === 'package' && parts.length === 4 && parts[2] === 'build') {
    return { page: 'build', base: parts[1]!, started: parts[3]! };
  }
  if (parts[0] === 'review' && parts.length === 2) return { page: 'held', base: parts[1]! };
  if (
    parts.length === 1 &&
    (parts[0] === 'queue' ||
      parts[0] === 'server' ||
      parts[0] === 'add' ||
      parts[0] === 'signin' ||
      parts[0] === 'review')
  ) {
    return { page: parts[0] };
  }
  return { page: 'missing', path };
}

/** The current route, following `hashchange`. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const listener = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', listener);
    return () => removeEventListener('hashchange', listener);
  }, []);
  return route;
}

export const href = {
  list: () => '#/',
  package: (base: string) => `#/package/${encodeURIComponent(base)}`,
  build: (base: string, started: string) =>
    `#/package/${encodeURIComponent(base)}/build/${encodeURIComponent(started)}`,
  queue: () => '#/queue',
  server: () => '#/server',
  add: () => '#/add',
  signin: () => '#/signin',
  review: () => '#/review',
  held: (base: string) => `#/review/${encodeURIComponent(base)}`,
};

export function navigate(to: string): void {
  location.hash = to;
}

// --- build states ---

/** A state in one word, as `serene list` says it. */
export type StateWord = 'none' | 'pending' | 'aborted' | 'working' | 'passing' | 'failing' | 'fatal';

export function stateWord(state: BuildState | undefined): StateWord {
  switch (state?.state) {
    case undefined:
      return 'none';
    case 'pending':
      return 'pending';
    case 'cancelled':
      return 'aborted';
    case 'running':
      return 'working';
    case 'success':
      return 'passing';
    case 'failure':
      return 'failing';
    case 'fatal':
      return 'fatal';
  }
}

/** Order of the package list: failures first, then what builds, waits, was cancelled, never built, passes. */
export const STATE_RANK: Readonly<Record<StateWord, number>> = {
  failing: 0,
  fatal: 0,
  working: 1,
  pending: 2,
  aborted: 3,
  none: 4,
  passing: 5,
};

/** The state with its detail: `running (build)`, `fatal (publish): message`. */
export function describeState(state: BuildState): string {
  switch (state.state) {
    case 'running':
      return `running (${state.info})`;
    case 'cancelled':
      return `cancelled: ${state.info}`;
    case 'fatal':
      return `fatal (${state.info[1]}): ${state.info[0]}`;
    default:
      return state.state;
  }
}

export function StateBadge({ state }: { state: BuildState | undefined }) {
  const word = stateWord(state);
  return (
    <span class={`badge s-${word}`} title={state ? describeState(state) : 'never built'}>
      {word}
    </span>
  );
}

// --- times and sizes ---

/** A duration in its two largest units: `45s`, `3m 20s`, `2h 5m`. */
export function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

export function ago(iso: string, now = Date.now()): string {
  return `${duration(now - new Date(iso).getTime())} ago`;
}

export function took(build: BuildInfo, now = Date.now()): number {
  return (build.ended ? new Date(build.ended).getTime() : now) - new Date(build.started).getTime();
}

export function localTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function bytes(value: number | null): string {
  if (value === null) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let amount = value;
  let unit = 0;
  while (amount >= 1024 && unit < units.length - 1) {
    amount /= 1024;
    unit++;
  }
  return unit === 0 ? `${amount} B` : `${amount.toFixed(1)} ${units[unit]}`;
}

/** Re-renders every `ms` (relative times stay true). */
export function useTick(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** Sets the document title. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · serene`;
  }, [title]);
}

/** The engine and architecture cells of a build's row, shown once there are several of either. */
export function PlacementCells({ of }: { of: { engine?: string | null; architecture?: string } }) {
  return (
    <>
      <td class="mono" data-column="engine">
        {of.engine ?? '–'}
      </td>
      <td class="mono" data-column="arch">
        {of.architecture}
      </td>
    </>
  );
}

/**
 * How many engines build packages (`GET /engines`), asked once: the engine and architecture columns
 * of the build tables are shown once there are several (or several architectures).
 */
export function useEngineCount(api: { engines(): Promise<readonly unknown[]> }): number {
  const [engines, setEngines] = useState(1);
  useEffect(() => {
    api.engines().then(
      (list) => setEngines(list.length),
      () => setEngines(1),
    );
  }, [api]);
  return engines;
}
