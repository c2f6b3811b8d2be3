/** The server: version, engines, signing key and fingerprint, and the pacman.conf lines to add. */
import { useEffect, useState } from 'preact/hooks';
import { API_ROOT } from '../api';
import { toast, useStore } from '../store';
import type { ServerDetails } from '../types';
import { ago, localTime, useTitle } from '../util';

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
  useEffect(() => {
    api.server().then(setServer, (e: unknown) => setError((e as Error).message));
  }, [api, changes]);
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
  const repository = `${API_ROOT}/${server.architecture}`;
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
            <dt>Architecture</dt>
            <dd class="mono">{server.architecture}</dd>
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
          <h2>Engines</h2>
          <ul>
            {server.engines.map((engine) => (
              <li key={`${engine.name} ${engine.architecture}`}>
                <span class="mono">{engine.name}</span> builds for{' '}
                <span class="mono">{engine.architecture}</span>
              </li>
            ))}
          </ul>
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
