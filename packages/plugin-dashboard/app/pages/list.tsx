/**
 * The package list: failures first, a filter by state and a search by name, paginated (the page
 * renders 100 rows whatever the number of packages, so 5,000 stay fast; bench/dashboard.mjs).
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { act, getState, loadPackages, useStore } from '../store';
import type { PackagePeek } from '../types';
import {
  ago,
  duration,
  href,
  STATE_RANK,
  StateBadge,
  type StateWord,
  stateWord,
  took,
  useTick,
  useTitle,
} from '../util';

export const PAGE_SIZE = 100;

type Filter = 'all' | 'failing' | 'building' | 'passing' | 'none' | 'aborted' | 'disabled';

const FILTERS: { id: Filter; label: string; test: (pkg: PackagePeek, word: StateWord) => boolean }[] = [
  { id: 'all', label: 'All', test: () => true },
  { id: 'failing', label: 'Failing', test: (_, word) => word === 'failing' || word === 'fatal' },
  { id: 'building', label: 'Building', test: (_, word) => word === 'working' || word === 'pending' },
  { id: 'passing', label: 'Passing', test: (_, word) => word === 'passing' },
  { id: 'aborted', label: 'Cancelled', test: (_, word) => word === 'aborted' },
  { id: 'none', label: 'Never built', test: (_, word) => word === 'none' },
  { id: 'disabled', label: 'Disabled', test: (pkg) => !pkg.enabled },
];

/** Reads and writes `?q=…&state=…&page=…` of the hash, so a filtered view can be linked and kept on back. */
function readQuery(): { q: string; filter: Filter; page: number } {
  const query = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const filter = (query.get('state') ?? 'all') as Filter;
  return {
    q: query.get('q') ?? '',
    filter: FILTERS.some((entry) => entry.id === filter) ? filter : 'all',
    page: Math.max(0, Number(query.get('page') ?? 1) - 1) || 0,
  };
}

function writeQuery(q: string, filter: Filter, page: number): void {
  const query = new URLSearchParams();
  if (q) query.set('q', q);
  if (filter !== 'all') query.set('state', filter);
  if (page > 0) query.set('page', String(page + 1));
  const text = query.toString();
  history.replaceState(null, '', `#/${text ? `?${text}` : ''}`);
}

export function ListPage() {
  useTitle('Packages');
  const { packages, packagesError, user, info } = useStore();
  const initial = useMemo(readQuery, []);
  const [q, setQ] = useState(initial.q);
  const [filter, setFilter] = useState<Filter>(initial.filter);
  const [page, setPage] = useState(initial.page);
  const now = useTick(10_000);
  const search = useRef<HTMLInputElement>(null);

  useEffect(() => writeQuery(q, filter, page), [q, filter, page]);
  // `/` focuses the search, as on most sites with one
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement;
      if (event.key === '/' && !/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) {
        event.preventDefault();
        search.current?.focus();
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);

  // words and sort keys once per list, not per keystroke
  const rows = useMemo(() => {
    if (!packages) return [];
    return packages
      .map((pkg) => ({
        pkg,
        word: stateWord(pkg.build?.state),
        key: `${pkg.base}\n${pkg.members.join('\n')}`.toLowerCase(),
      }))
      .sort(
        (a, b) =>
          STATE_RANK[a.word] - STATE_RANK[b.word] ||
          (a.pkg.base < b.pkg.base ? -1 : a.pkg.base > b.pkg.base ? 1 : 0),
      );
  }, [packages]);
  const counts = useMemo(() => {
    const result: Record<Filter, number> = {
      all: 0,
      failing: 0,
      building: 0,
      passing: 0,
      none: 0,
      aborted: 0,
      disabled: 0,
    };
    for (const row of rows)
      for (const entry of FILTERS) if (entry.test(row.pkg, row.word)) result[entry.id]++;
    return result;
  }, [rows]);
  const needle = q.trim().toLowerCase();
  const shown = useMemo(() => {
    const test = FILTERS.find((entry) => entry.id === filter)!.test;
    return rows.filter((row) => test(row.pkg, row.word) && (needle === '' || row.key.includes(needle)));
  }, [rows, filter, needle]);
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  const current = Math.min(page, pages - 1);
  const slice = shown.slice(current * PAGE_SIZE, (current + 1) * PAGE_SIZE);

  const buildAll = () => {
    if (confirm('Build every enabled package whose source changed?'))
      void act('building all enabled packages', () => getState().api.buildAll());
  };

  return (
    <section>
      <div class="heading">
        <h1 tabIndex={-1}>Packages</h1>
        {user && (
          <div class="actions">
            <button type="button" onClick={buildAll}>
              Build all
            </button>
            <a class="button primary" href={href.add()}>
              Add package
            </a>
          </div>
        )}
      </div>
      {packagesError && (
        <p class="error" role="alert">
          Could not load the packages: {packagesError}{' '}
          <button type="button" onClick={() => void loadPackages()}>
            Retry
          </button>
        </p>
      )}
      <div class="filters">
        <label class="search">
          <span class="sr-only">Search packages</span>
          <input
            ref={search}
            type="search"
            placeholder="Search by name  ( / )"
            value={q}
            onInput={(event) => {
              setQ((event.target as HTMLInputElement).value);
              setPage(0);
            }}
          />
        </label>
        <fieldset class="chips">
          <legend class="sr-only">Filter by state</legend>
          {FILTERS.map((entry) => (
            <button
              key={entry.id}
              type="button"
              class={`chip f-${entry.id}`}
              aria-pressed={filter === entry.id}
              onClick={() => {
                setFilter(entry.id);
                setPage(0);
              }}
            >
              {entry.label} <span class="n">{counts[entry.id]}</span>
            </button>
          ))}
        </fieldset>
      </div>
      {!packages && !packagesError && <p class="muted">Loading packages…</p>}
      {packages && packages.length === 0 && (
        <div class="card empty">
          <p>No packages are added yet.</p>
          {user ? (
            <a class="button primary" href={href.add()}>
              Add the first package
            </a>
          ) : (
            <p class="muted">Sign in to add packages.</p>
          )}
        </div>
      )}
      {packages && packages.length > 0 && (
        <>
          <p class="muted summary" aria-live="polite">
            {shown.length === rows.length
              ? `${rows.length} packages`
              : `${shown.length} of ${rows.length} packages`}
            {pages > 1 && `, page ${current + 1} of ${pages}`}
          </p>
          <table class="list">
            <thead>
              <tr>
                <th scope="col">State</th>
                <th scope="col">Name</th>
                <th scope="col">Version</th>
                <th scope="col">Last build</th>
                <th scope="col" class="wide-cell">
                  Took
                </th>
                {user && (
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {slice.map(({ pkg }) => (
                <Row key={pkg.base} pkg={pkg} now={now} actions={user !== undefined} />
              ))}
            </tbody>
          </table>
          {shown.length === 0 && <p class="muted">No package matches.</p>}
          {pages > 1 && (
            <nav class="pager" aria-label="Pages">
              <button type="button" disabled={current === 0} onClick={() => setPage(current - 1)}>
                ← Previous
              </button>
              <span>
                Page {current + 1} of {pages}
              </span>
              <button type="button" disabled={current >= pages - 1} onClick={() => setPage(current + 1)}>
                Next →
              </button>
            </nav>
          )}
        </>
      )}
      {info && !user && !info.readable && <p class="muted">Signed out.</p>}
    </section>
  );
}

function Row({ pkg, now, actions }: { pkg: PackagePeek; now: number; actions: boolean }) {
  const build = pkg.build;
  const busy = build?.state.state === 'running' || build?.state.state === 'pending';
  return (
    <tr class={pkg.enabled ? undefined : 'disabled'}>
      <td>
        <StateBadge state={build?.state} />
      </td>
      <td class="name">
        <a href={href.package(pkg.base)}>{pkg.base}</a>
        {!pkg.enabled && <span class="tag">disabled</span>}
        {pkg.devel && <span class="tag">devel</span>}
      </td>
      <td class="mono">{pkg.version ?? '–'}</td>
      <td>
        {build ? (
          <a href={href.build(pkg.base, build.started)}>{ago(build.ended ?? build.started, now)}</a>
        ) : (
          '–'
        )}
      </td>
      <td class="wide-cell">{build ? duration(took(build, now)) : '–'}</td>
      {actions && (
        <td class="row-actions">
          {busy ? (
            <button
              type="button"
              class="small"
              onClick={() =>
                void act(`cancelled the build of ${pkg.base}`, () => getState().api.cancel(pkg.base))
              }
              aria-label={`Cancel the build of ${pkg.base}`}
            >
              Cancel
            </button>
          ) : (
            <button
              type="button"
              class="small"
              onClick={() => void act(`building ${pkg.base}`, () => getState().api.startBuild([pkg.base]))}
              aria-label={`Build ${pkg.base}`}
            >
              Build
            </button>
          )}
        </td>
      )}
    </tr>
  );
}
