/**
 * The server: version, the engines with their state and load (and what runs on them), signing key
 * and fingerprint, and the pacman.conf lines to add.
 */
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { API_ROOT } from '../api';
import { toast, useStore } from '../store';
import type { Engine, ServerDetails } from '../types';
import { ago, href, localTime, useTick, useTitle } from '../util';

const STATE_CLASS: Record<Engine['state'], string> = {
  up: 's-passing',
  down: 's-failing',
  unknown: 's-none',
};

/** The engines: state (and why down), load, architecture, labels and the builds on each. */
function Engines({ engines }: { engines: Engine[] }) {
  return (
    <div class="scroll">
      <table class="queue engines" aria-label="Engines">
        <thead>
          <tr>
            <th scope="col">Engine</th>
            <th scope="col">State</th>
            <th scope="col">Load</th>
            <th scope="col">Architecture</th>
            <th scope="col">Labels</th>
            <th scope="col">Building</th>
          </tr>
        </thead>
        <tbody>
          {engines.map((engine) => (
            <tr key={engine.name} data-engine={engine.name}>
              <td class="name mono">{engine.name}</td>
              <td>
                <span class={`badge ${STATE_CLASS[engine.state]}`}>{engine.state}</span>{' '}
                <span class="muted small-text" title={localTime(engine.since)}>
                  for {ago(engine.since).replace(/ ago$/, '')}
                </span>
                {engine.reason && <div class="small-text error">{engine.reason}</div>}
              </td>
              <td>
                <meter
                  min={0}
                  max={engine.capacity}
                  value={engine.running}
                  aria-label={`Load of ${engine.name}`}
                />{' '}
                <span class="load">
                  {engine.running}/{engine.capacity}
                </span>
              </td>
              <td class="mono">{engine.architecture ?? '–'}</td>
              <td>{engine.labels.length > 0 ? engine.labels.join(', ') : '–'}</td>
              <td>
                {engine.builds.length === 0
                  ? '–'
                  : engine.builds.map((base, i) => (
                      <Fragment key={base}>
                        {i > 0 && ', '}
                        <a href={href.package(base)}>{base}</a>
                      </Fragment>
                    ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Copyable({ text, label }: { text: string; label: string }) {
  return (
    <div class="copyable">
      <pre class="code">{text}</pre>
      <button
        type="button"
        class="small"
        aria-label={`Copy ${label}`}
        onClick={() =>
          navigator.clipboard?.writeText(text).then(
            () => toast('ok', `${label} copied`),
            () => toast('error', 'the browser did not allow copying: select the text instead'),
          )
        }
      >
        Copy
      </button>
    </div>
  );
}

export function ServerPage() {
  useTitle('Server');
  const { api, changes } = useStore();
  const [server, setServer] = useState<ServerDetails | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  // the engines are pinged every 10 s: their state is read again as often, and with every change
  const tick = useTick(10_000);
  useEffect(() => {
    api.server().then(setServer, (e: unknown) => setError((e as Error).message));
  }, [api, changes, tick]);
  if (error) {
    return (
      <section>
        <h1 tabIndex={-1}>Server</h1>
        <p class="error" role="alert">
          {error}
        </p>
      </section>
    );
  }
  if (!server) return <p class="muted">Loading…</p>;
  // several architectures: one line serves every machine, pacman puts in its own for `$arch`
  const architectures = server.architectures?.length ? server.architectures : [server.architecture];
  const repository = `${API_ROOT}/${architectures.length > 1 ? '$arch' : server.architecture}`;
  const conf = [
    `[${server.name}]`,
    ...(server.signed ? [] : ['SigLevel = Never']),
    `Server = ${repository}`,
  ].join('\n');
  const key = server.fingerprint
    ? [
        `curl -fsSL ${API_ROOT}/key | sudo pacman-key --add -`,
        `sudo pacman-key --lsign-key ${server.fingerprint}`,
      ].join('\n')
    : undefined;
  return (
    <section>
      <h1 tabIndex={-1}>Server</h1>
      <div class="grid">
        <div class="card">
          <h2>{server.name}</h2>
          <dl>
            <dt>Version</dt>
            <dd class="mono">{server.version}</dd>
            <dt>Running since</dt>
            <dd>
              {localTime(server.started)} ({ago(server.started)})
            </dd>
            <dt>{architectures.length > 1 ? 'Architectures' : 'Architecture'}</dt>
            <dd class="mono">{architectures.join(', ')}</dd>
            <dt>Packages</dt>
            <dd>{server.packages}</dd>
            <dt>Queue</dt>
            <dd>
              {server.queue.running} running, {server.queue.queued} waiting
            </dd>
            <dt>Reads</dt>
            <dd>{server.readable ? 'open to anybody (ALLOW_READS)' : 'need a secret'}</dd>
          </dl>
        </div>
        <div class="card">
          <h2>Signing key</h2>
          {server.fingerprint ? (
            <p>
              Packages and the database are signed. Fingerprint:{' '}
              <code class="fingerprint">{server.fingerprint.replace(/(.{4})/g, '$1 ').trim()}</code>
            </p>
          ) : (
            <p>Packages are not signed (no key is configured).</p>
          )}
        </div>
      </div>
      <h2>Engines</h2>
      <Engines engines={server.engines} />
      <div class="card">
        <h2>Use this repository</h2>
        <p>
          Add to <code>/etc/pacman.conf</code>:
        </p>
        <Copyable text={conf} label="the pacman.conf lines" />
        {key && (
          <>
            <p>and trust its key:</p>
            <Copyable text={key} label="the key commands" />
          </>
        )}
      </div>
    </section>
  );
}
