/** One build: its state, times and stats, and its log, live while it runs. */
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { ApiError, isDone, readEventStream, seg } from '../api';
import { act, getState, useStore } from '../store';
import type { BuildInfo, BuildState } from '../types';
import {
  bytes,
  describeState,
  duration,
  href,
  localTime,
  StateBadge,
  took,
  useTick,
  useTitle,
} from '../util';

/** The most log text kept on the page (the start is cut off past it, as a terminal would). */
const MAX_LOG = 2 * 1024 * 1024;

export function BuildPage({ base, started }: { base: string; started: string }) {
  useTitle(`${base} build`);
  const { api, user } = useStore();
  const [build, setBuild] = useState<BuildInfo | undefined>(undefined);
  const [state, setState] = useState<BuildState | undefined>(undefined);
  const [log, setLog] = useState('');
  const [cut, setCut] = useState(false);
  const [note, setNote] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [live, setLive] = useState(false);
  const [follow, setFollow] = useState(true);
  const [reload, setReload] = useState(0);
  const pre = useRef<HTMLPreElement>(null);
  const now = useTick(1000);

  useEffect(() => {
    const controller = new AbortController();
    let disposed = false;
    let text = '';
    const append = (chunk: string) => {
      text += chunk;
      if (text.length > MAX_LOG) {
        text = text.slice(text.length - MAX_LOG);
        setCut(true);
      }
      setLog(text);
    };
    const stored = async () => {
      try {
        setLog(await api.logs(base, started));
        setNote(undefined);
      } catch (e) {
        setNote(
          e instanceof ApiError && e.status === 404
            ? 'This build has no log (it did not run).'
            : (e as Error).message,
        );
      }
    };
    (async () => {
      let info: BuildInfo;
      try {
        info = await api.build(base, started);
      } catch (e) {
        setError((e as Error).message);
        return;
      }
      setBuild(info);
      setState(info.state);
      if (isDone(info.state)) return stored();
      // running or waiting: the package's live stream replays the log so far, then follows it
      try {
        const response = await api.request(
          'GET',
          `/package/${seg(base)}/build/logs/subscribe`,
          undefined,
          controller.signal,
        );
        setLive(true);
        await readEventStream(response, (message) => {
          if (message.event === 'log') append(JSON.parse(message.data) as string);
          else if (message.event === 'change') {
            const next = JSON.parse(message.data) as BuildState;
            setState(next);
            if (isDone(next)) controller.abort();
          }
        });
      } catch {
        // ended by us (the build is done) or cut: the stored log and the record say the rest
      }
      if (disposed) return;
      setLive(false);
      try {
        const final = await api.build(base, started);
        setBuild(final);
        setState(final.state);
        if (isDone(final.state)) await stored();
      } catch {
        // shown as it is
      }
    })();
    return () => {
      disposed = true;
      controller.abort();
    };
  }, [api, base, started, reload]);

  // keeps the end of the log in view while following
  useLayoutEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [log, follow]);

  if (error) {
    return (
      <section>
        <h1 tabIndex={-1}>Build of {base}</h1>
        <p class="error" role="alert">
          {error}
        </p>
        <a href={href.package(base)}>Back to {base}</a>
      </section>
    );
  }
  if (!build) return <p class="muted">Loading the build…</p>;
  const shown = state ?? build.state;
  const running = !isDone(shown);
  return (
    <section>
      <p class="crumbs">
        <a href={href.list()}>Packages</a> / <a href={href.package(base)}>{base}</a> /
      </p>
      <div class="heading">
        <h1 tabIndex={-1}>Build of {base}</h1>
        <StateBadge state={shown} />
      </div>
      <div class="card">
        <dl class="cols">
          <dt>State</dt>
          <dd data-testid="build-state">{describeState(shown)}</dd>
          <dt>Started</dt>
          <dd>{localTime(build.started)}</dd>
          <dt>{running ? 'Running for' : 'Took'}</dt>
          <dd>{duration(took(running ? { ...build, ended: null } : build, now))}</dd>
          <dt>Reason</dt>
          <dd>{build.reason}</dd>
          <dt>Version</dt>
          <dd class="mono">{build.version ?? '–'}</dd>
          <dt>Peak memory</dt>
          <dd>{bytes(build.mem_peak)}</dd>
          <dt>CPU</dt>
          <dd>
            {build.cpu_user !== null ? `${duration((build.cpu_user + (build.cpu_system ?? 0)) / 1000)}` : '–'}
          </dd>
          <dt>Disk read / written</dt>
          <dd>
            {bytes(build.io_tbr)} / {bytes(build.io_tbw)}
          </dd>
        </dl>
        {user && running && (
          <button
            type="button"
            class="danger"
            onClick={() =>
              void act(`cancelled the build of ${base}`, () => getState().api.cancel(base)).then(() =>
                setReload((n) => n + 1),
              )
            }
          >
            Cancel build
          </button>
        )}
      </div>
      <div class="card">
        <div class="heading">
          <h2>Log {live && <span class="badge s-working">live</span>}</h2>
          <label class="check">
            <input
              type="checkbox"
              checked={follow}
              onChange={(event) => setFollow((event.target as HTMLInputElement).checked)}
            />
            Follow the end
          </label>
        </div>
        {cut && <p class="muted">Only the last 2 MiB are shown.</p>}
        {note && <p class="muted">{note}</p>}
        {running && log === '' && <p class="muted">Waiting for output…</p>}
        {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must take the keyboard's focus to be scrolled by it */}
        <pre class="log" ref={pre} tabIndex={0} data-testid="log">
          {log}
        </pre>
      </div>
    </section>
  );
}
