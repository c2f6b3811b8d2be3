/** The queue: builds running and waiting (live), and the newest builds of every package. */
import { useEffect, useState } from 'preact/hooks';
import { act, getState, useStore } from '../store';
import type { QueueEntry, RecentBuild } from '../types';
import {
  ago,
  describeState,
  duration,
  href,
  PlacementCells,
  StateBadge,
  took,
  useEngineCount,
  useTick,
  useTitle,
} from '../util';

const RECENT = 50;

function step(entry: QueueEntry): string {
  if (entry.phase === 'running') return entry.state.state === 'running' ? entry.state.info : 'starting';
  if (entry.phase === 'queued') return 'waiting for a build slot';
  return entry.waiting_for.length > 0 ? `waiting for ${entry.waiting_for.join(', ')}` : 'preparing';
}

export function QueuePage() {
  useTitle('Queue');
  const { api, queue, user, changes } = useStore();
  const [recent, setRecent] = useState<RecentBuild[] | undefined>(undefined);
  const [more, setMore] = useState(true);
  const engines = useEngineCount(api);
  const [error, setError] = useState<string | undefined>(undefined);
  const now = useTick(1000);

  // the first page follows every change; older pages stay as loaded
  useEffect(() => {
    let stale = false;
    api
      .recent(RECENT)
      .then((list) => {
        if (stale) return;
        setRecent((old) => (old && old.length > RECENT ? [...list, ...old.slice(RECENT)] : list));
        setMore(list.length === RECENT);
      })
      .catch((e: unknown) => !stale && setError((e as Error).message));
    return () => {
      stale = true;
    };
  }, [api, changes]);

  const loadMore = async () => {
    const last = recent?.at(-1);
    if (!last) return;
    const page = await api.recent(RECENT, last.started);
    setRecent([...(recent ?? []), ...page]);
    setMore(page.length === RECENT);
  };

  const running = queue.filter((entry) => entry.phase === 'running');
  // the engine and architecture columns, once there are several engines or architectures
  const placed =
    engines > 1 || new Set([...queue, ...(recent ?? [])].map((entry) => entry.architecture)).size > 1;
  const waiting = queue.filter((entry) => entry.phase !== 'running');
  return (
    <section>
      <h1 tabIndex={-1}>Queue</h1>
      <p class="muted" aria-live="polite" data-testid="queue-summary">
        {queue.length === 0 ? 'Nothing is building.' : `${running.length} running, ${waiting.length} waiting`}
      </p>
      {queue.length > 0 && (
        <div class="scroll">
          <table class="queue">
            <thead>
              <tr>
                <th scope="col">Package</th>
                <th scope="col">State</th>
                <th scope="col">Step</th>
                <th scope="col">Reason</th>
                {placed && (
                  <>
                    <th scope="col">Engine</th>
                    <th scope="col">Arch</th>
                  </>
                )}
                <th scope="col">For</th>
                {user && (
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {[...running, ...waiting].map((entry) => (
                <tr key={`${entry.base} ${entry.started}`}>
                  <td class="name">
                    <a href={href.build(entry.base, entry.started)}>{entry.base}</a>
                  </td>
                  <td>
                    <StateBadge state={entry.state} />
                  </td>
                  <td>{step(entry)}</td>
                  <td>{entry.reason}</td>
                  {placed && <PlacementCells of={entry} />}
                  <td>{duration(now - new Date(entry.started).getTime())}</td>
                  {user && (
                    <td class="row-actions">
                      <button
                        type="button"
                        class="small danger"
                        onClick={() =>
                          void act(`cancelled the build of ${entry.base}`, () =>
                            getState().api.cancel(entry.base),
                          )
                        }
                        aria-label={`Cancel the build of ${entry.base}`}
                      >
                        Cancel
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2>Recent builds</h2>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {recent === undefined && !error && <p class="muted">Loading…</p>}
      {recent && recent.length === 0 && <p class="muted">No builds yet.</p>}
      {recent && recent.length > 0 && (
        <div class="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Package</th>
                <th scope="col">State</th>
                <th scope="col">Version</th>
                <th scope="col">Reason</th>
                {placed && (
                  <>
                    <th scope="col">Engine</th>
                    <th scope="col">Arch</th>
                  </>
                )}
                <th scope="col">Started</th>
                <th scope="col">Took</th>
              </tr>
            </thead>
            <tbody>
              {recent.map((build) => (
                <tr key={`${build.base} ${build.started}`}>
                  <td class="name">
                    <a href={href.build(build.base, build.started)}>{build.base}</a>
                  </td>
                  <td>
                    <StateBadge state={build.state} />
                    {build.state.state === 'cancelled' && (
                      <span class="muted small-text">
                        {' '}
                        {describeState(build.state).replace(/^cancelled: /, '')}
                      </span>
                    )}
                  </td>
                  <td class="mono">{build.version ?? '–'}</td>
                  <td>{build.reason}</td>
                  {placed && <PlacementCells of={build} />}
                  <td>{ago(build.started, now)}</td>
                  <td>{duration(took(build, now))}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {recent && more && recent.length > 0 && (
        <button type="button" onClick={() => void loadMore()}>
          Show older builds
        </button>
      )}
    </section>
  );
}
