/** One package: its state and actions, settings, history (chart and table), and PKGBUILD. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { act, getState, loadPackages, refreshSoon, useStore } from '../store';
import { MAKEPKG_FLAGS, type PackageInfo, type RecentBuild } from '../types';
import {
  ago,
  bytes,
  describeState,
  duration,
  href,
  localTime,
  navigate,
  PlacementCells,
  StateBadge,
  took,
  useEngineCount,
  useTick,
  useTitle,
} from '../util';
import { HistoryChart } from './chart';

export function PackagePage({ base }: { base: string }) {
  useTitle(base);
  const { api, user, changes, lastChange, queue } = useStore();
  const [pkg, setPkg] = useState<PackageInfo | undefined>(undefined);
  const [builds, setBuilds] = useState<RecentBuild[]>([]);
  const engines = useEngineCount(api);
  const [pkgbuild, setPkgbuild] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [reload, setReload] = useState(0);
  const now = useTick(5000);

  // loads again when this package changes state (the live stream says so)
  const mine = lastChange?.base === base ? changes : 0;
  useEffect(() => {
    let stale = false;
    Promise.all([
      api.package(base),
      api.history(base, 50),
      api
        .pkgbuild(base)
        .catch((e: unknown) => (e instanceof ApiError && e.status === 404 ? '' : Promise.reject(e))),
    ])
      .then(([info, list, text]) => {
        if (stale) return;
        setPkg(info);
        setBuilds(list);
        setPkgbuild(text);
        setError(undefined);
      })
      .catch((e: unknown) => !stale && setError((e as Error).message));
    return () => {
      stale = true;
    };
  }, [api, base, mine, reload]);

  if (error && !pkg) {
    return (
      <section>
        <h1 tabIndex={-1}>{base}</h1>
        <p class="error" role="alert">
          {error}
        </p>
        <a href={href.list()}>Back to the packages</a>
      </section>
    );
  }
  if (!pkg) return <p class="muted">Loading {base}…</p>;

  const latest = builds[0];
  // the engine and architecture columns, once there are several engines or architectures
  const placed = engines > 1 || new Set(builds.map((build) => build.architecture)).size > 1;
  const inFlight = queue.find((entry) => entry.base === base);
  const refresh = () => setReload((n) => n + 1);
  const set = (key: string, value: unknown, what: string) =>
    act(what, () => getState().api.set(base, key, value)).then(() => {
      refresh();
      // the list shows enabled and devel too
      refreshSoon(0);
    });

  return (
    <section>
      <p class="crumbs">
        <a href={href.list()}>Packages</a> /
      </p>
      <div class="heading">
        <h1 tabIndex={-1}>
          {pkg.base} <span class="version mono">{pkg.version ?? 'not built yet'}</span>
        </h1>
        <StateBadge state={inFlight?.state ?? latest?.state} />
      </div>
      {pkg.description && <p>{pkg.description}</p>}
      {user && (
        <div class="actions bar">
          {inFlight ? (
            <button
              type="button"
              class="danger"
              onClick={() => void act(`cancelled the build of ${base}`, () => getState().api.cancel(base))}
            >
              Cancel build
            </button>
          ) : (
            <>
              <button
                type="button"
                class="primary"
                onClick={() => void act(`building ${base}`, () => getState().api.startBuild([base]))}
              >
                Build
              </button>
              <button
                type="button"
                onClick={() =>
                  void act(`building ${base} in a new container`, () =>
                    getState().api.startBuild([base], true),
                  )
                }
              >
                Clean build
              </button>
            </>
          )}
          <button
            type="button"
            onClick={() =>
              void set('enabled', !pkg.enabled, pkg.enabled ? `disabled ${base}` : `enabled ${base}`)
            }
          >
            {pkg.enabled ? 'Disable' : 'Enable'}
          </button>
          <button
            type="button"
            class="danger ghost"
            onClick={() => {
              if (confirm(`Remove ${base} with its builds, logs and repository files?`)) {
                void act(`removed ${base}`, () => getState().api.remove(base)).then((ok) => {
                  if (!ok) return;
                  void loadPackages();
                  navigate(href.list());
                });
              }
            }}
          >
            Remove
          </button>
        </div>
      )}
      {inFlight && (
        <p class="card note">
          {inFlight.phase === 'running'
            ? 'Building now'
            : inFlight.phase === 'queued'
              ? 'Waiting for a build slot'
              : `Waiting for ${inFlight.waiting_for.join(', ') || 'its session'}`}{' '}
          since {ago(inFlight.started, now)} · <a href={href.build(base, inFlight.started)}>follow the log</a>
        </p>
      )}

      <div class="grid">
        <div class="card">
          <h2>About</h2>
          <dl>
            <dt>Source</dt>
            <dd>
              {pkg.source_url ? (
                <a href={pkg.source_url} rel="noreferrer noopener" target="_blank">
                  {pkg.source}
                </a>
              ) : (
                pkg.source
              )}
            </dd>
            <dt>Members</dt>
            <dd>{pkg.members.length > 0 ? pkg.members.join(', ') : '–'}</dd>
            {pkg.upstream_url && (
              <>
                <dt>Upstream</dt>
                <dd>
                  <a href={pkg.upstream_url} rel="noreferrer noopener" target="_blank">
                    {pkg.upstream_url}
                  </a>
                </dd>
              </>
            )}
            <dt>Added</dt>
            <dd>{localTime(pkg.added)}</dd>
            <dt>Builds</dt>
            <dd>{pkg.builds}</dd>
            <dt>Schedule</dt>
            <dd class="mono">
              {pkg.schedule}
              {!pkg.schedule_changed && <span class="muted"> (default)</span>}
            </dd>
          </dl>
        </div>
        <Settings pkg={pkg} editable={user !== undefined} set={set} />
      </div>

      <div class="card">
        <h2>Build history</h2>
        <HistoryChart builds={builds} />
        {builds.length > 0 ? (
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Started</th>
                  <th scope="col">State</th>
                  <th scope="col">Version</th>
                  <th scope="col">Reason</th>
                  {placed && (
                    <>
                      <th scope="col">Engine</th>
                      <th scope="col">Arch</th>
                    </>
                  )}
                  <th scope="col">Took</th>
                  <th scope="col">Peak memory</th>
                </tr>
              </thead>
              <tbody>
                {builds.map((build) => (
                  <tr key={build.started}>
                    <td>
                      <a href={href.build(base, build.started)}>{localTime(build.started)}</a>
                    </td>
                    <td>
                      <StateBadge state={build.state} />
                      {(build.state.state === 'cancelled' || build.state.state === 'fatal') && (
                        <span class="muted small-text">
                          {' '}
                          {describeState(build.state).replace(/^[a-z]+( \([a-z]+\))?: /, '')}
                        </span>
                      )}
                    </td>
                    <td class="mono">{build.version ?? '–'}</td>
                    <td>{build.reason}</td>
                    {placed && <PlacementCells of={build} />}
                    <td>{duration(took(build, now))}</td>
                    <td>{bytes(build.mem_peak)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : (
          <p class="muted">Never built.</p>
        )}
      </div>

      <details class="card">
        <summary>
          <h2>PKGBUILD</h2>
        </summary>
        {pkgbuild ? (
          <pre class="code">{pkgbuild}</pre>
        ) : (
          <p class="muted">Not built yet: the PKGBUILD shows once a build is published.</p>
        )}
      </details>
    </section>
  );
}

function Settings({
  pkg,
  editable,
  set,
}: {
  pkg: PackageInfo;
  editable: boolean;
  set: (key: string, value: unknown, what: string) => Promise<void>;
}) {
  const [schedule, setSchedule] = useState(pkg.schedule_changed ? pkg.schedule : '');
  const [prepare, setPrepare] = useState(pkg.prepare_commands ?? '');
  const [flags, setFlags] = useState<string[]>(pkg.makepkg_flags);
  useEffect(() => {
    setSchedule(pkg.schedule_changed ? pkg.schedule : '');
    setPrepare(pkg.prepare_commands ?? '');
    setFlags(pkg.makepkg_flags);
  }, [pkg]);
  const toggles: [key: string, label: string, value: boolean, hint: string][] = [
    ['clean', 'Clean builds', pkg.clean, 'a new container for every build'],
    ['private', 'Private', pkg.private, 'hide the prepare commands from readers'],
    ['dependency', 'Dependency', pkg.dependency, 'added as a dependency of another package'],
    ['devel', 'Development package', pkg.devel, 'rebuilt when its VCS sources change'],
    [
      'srcinfooverride',
      'Override .SRCINFO',
      pkg.srcinfo_override,
      'generate the .SRCINFO instead of using the one in the source',
    ],
  ];
  return (
    <form class="card settings" onSubmit={(event) => event.preventDefault()}>
      <h2>Settings</h2>
      <fieldset disabled={!editable}>
        <legend class="sr-only">Switches</legend>
        {toggles.map(([key, label, value, hint]) => (
          <label class="check" key={key} title={hint}>
            <input
              type="checkbox"
              checked={value}
              onChange={(event) =>
                void set(
                  key,
                  (event.target as HTMLInputElement).checked,
                  `${label}: ${(event.target as HTMLInputElement).checked ? 'on' : 'off'}`,
                )
              }
            />
            {label} <small class="muted">{hint}</small>
          </label>
        ))}
      </fieldset>
      <fieldset disabled={!editable}>
        <label for="schedule">Schedule (cron with seconds, UTC; empty for the default)</label>
        <div class="inline">
          <input
            id="schedule"
            class="mono"
            value={schedule}
            placeholder={pkg.schedule}
            onInput={(event) => setSchedule((event.target as HTMLInputElement).value)}
          />
          <button
            type="button"
            onClick={() =>
              void set('schedule', schedule.trim() === '' ? null : schedule.trim(), 'schedule saved')
            }
          >
            Save
          </button>
        </div>
        <label for="prepare">Prepare commands (run before makepkg)</label>
        <textarea
          id="prepare"
          class="mono"
          rows={3}
          value={prepare}
          onInput={(event) => setPrepare((event.target as HTMLTextAreaElement).value)}
        />
        <button
          type="button"
          onClick={() =>
            void set('prepare', prepare.trim() === '' ? null : prepare, 'prepare commands saved')
          }
        >
          Save prepare commands
        </button>
      </fieldset>
      <fieldset disabled={!editable} class="flags">
        <legend>makepkg flags</legend>
        {MAKEPKG_FLAGS.map((flag) => (
          <label class="check" key={flag}>
            <input
              type="checkbox"
              checked={flags.includes(flag)}
              onChange={(event) => {
                const next = (event.target as HTMLInputElement).checked
                  ? [...flags, flag]
                  : flags.filter((f) => f !== flag);
                setFlags(next);
                void set('flags', next, 'makepkg flags saved');
              }}
            />
            <span class="mono">--{flag}</span>
          </label>
        ))}
      </fieldset>
      {!editable && <p class="muted">Sign in to change settings.</p>}
    </form>
  );
}
