/** Adding a package: from the AUR, a git repository, or a PKGBUILD. */
import { useState } from 'preact/hooks';
import { act, getState, loadPackages } from '../store';
import { href, navigate, useTitle } from '../util';

type Kind = 'aur' | 'git' | 'raw';

export function AddPage() {
  useTitle('Add a package');
  const [kind, setKind] = useState<Kind>('aur');
  const [value, setValue] = useState('');
  const [devel, setDevel] = useState(false);
  const [build, setBuild] = useState(true);
  const [replace, setReplace] = useState(false);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (value.trim() === '') return;
    const source =
      kind === 'aur'
        ? { type: 'aur', name: value.trim() }
        : kind === 'git'
          ? { type: 'git', url: value.trim(), devel }
          : { type: 'raw', pkgbuild: value, devel };
    setBusy(true);
    let added: { base: string }[] = [];
    const ok = await act('package added', async () => {
      added = await getState().api.add({ replace, resolve: true, build, source });
    });
    setBusy(false);
    if (ok && added[0]) {
      void loadPackages();
      navigate(href.package(added[0].base));
    }
  };
  return (
    <section class="narrow">
      <h1 tabIndex={-1}>Add a package</h1>
      <form class="card stack" onSubmit={submit}>
        <fieldset>
          <legend>From</legend>
          {(
            [
              ['aur', 'the AUR'],
              ['git', 'a git repository'],
              ['raw', 'a PKGBUILD'],
            ] as const
          ).map(([id, label]) => (
            <label class="check" key={id}>
              <input type="radio" name="kind" checked={kind === id} onChange={() => setKind(id)} />
              {label}
            </label>
          ))}
        </fieldset>
        <label for="what">
          {kind === 'aur' ? 'AUR package name' : kind === 'git' ? 'Repository URL' : 'PKGBUILD'}
        </label>
        {kind === 'raw' ? (
          <textarea
            id="what"
            class="mono"
            rows={12}
            value={value}
            onInput={(event) => setValue((event.target as HTMLTextAreaElement).value)}
            required
          />
        ) : (
          <input
            id="what"
            class={kind === 'git' ? 'mono' : undefined}
            value={value}
            onInput={(event) => setValue((event.target as HTMLInputElement).value)}
            required
            autoComplete="off"
          />
        )}
        {kind !== 'aur' && (
          <label class="check">
            <input
              type="checkbox"
              checked={devel}
              onChange={(event) => setDevel((event.target as HTMLInputElement).checked)}
            />
            Development (VCS) package
          </label>
        )}
        <label class="check">
          <input
            type="checkbox"
            checked={build}
            onChange={(event) => setBuild((event.target as HTMLInputElement).checked)}
          />
          Build it now
        </label>
        <label class="check">
          <input
            type="checkbox"
            checked={replace}
            onChange={(event) => setReplace((event.target as HTMLInputElement).checked)}
          />
          Replace the source of a package with the same base
        </label>
        <div>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Adding…' : 'Add'}
          </button>
          <a class="button ghost" href={href.list()}>
            Cancel
          </a>
        </div>
      </form>
    </section>
  );
}
