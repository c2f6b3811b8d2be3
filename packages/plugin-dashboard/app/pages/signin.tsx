import { useEffect, useRef, useState } from 'preact/hooks';
import { signIn, useStore } from '../store';
import { href, navigate, useTitle } from '../util';

export function SignInPage() {
  useTitle('Sign in');
  const { info, signInError, needsSignIn } = useStore();
  const [secret, setSecret] = useState('');
  const [remember, setRemember] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  // the field is what this page is for: the cursor starts there
  useEffect(() => input.current?.focus(), []);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (secret.trim() === '') {
      setError('enter the secret');
      return;
    }
    setBusy(true);
    const problem = await signIn(secret.trim(), remember);
    setBusy(false);
    setError(problem);
    if (!problem) navigate(href.list());
  };
  const shown = error ?? signInError;
  return (
    <section class="narrow">
      <h1 tabIndex={-1}>Sign in to {info?.name ?? 'serene'}</h1>
      <p>
        {needsSignIn
          ? 'This server shows its packages only to authorized users.'
          : 'Signing in lets you build, cancel, change and add packages.'}{' '}
        Use the secret of a machine whose hash is in the server’s <code>authorized_secrets</code> (the content
        of <code>~/.local/share/serene/secret.txt</code>; <code>serene host secret</code> prints its line).
      </p>
      <form class="card stack" onSubmit={submit}>
        <label for="secret">API secret</label>
        <input
          id="secret"
          ref={input}
          type="password"
          autoComplete="current-password"
          value={secret}
          onInput={(event) => setSecret((event.target as HTMLInputElement).value)}
          aria-invalid={shown ? 'true' : undefined}
          aria-describedby={shown ? 'secret-error' : 'secret-hint'}
        />
        <small id="secret-hint" class="muted">
          Kept only in this browser and sent to this server only, as the <code>Authorization</code> header.
        </small>
        <label class="check">
          <input
            type="checkbox"
            checked={remember}
            onChange={(event) => setRemember((event.target as HTMLInputElement).checked)}
          />
          Remember on this device (otherwise until this tab closes)
        </label>
        {shown && (
          <p id="secret-error" class="error" role="alert">
            {shown}
          </p>
        )}
        <div>
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Checking…' : 'Sign in'}
          </button>
          {!needsSignIn && (
            <a class="button ghost" href={href.list()}>
              Cancel
            </a>
          )}
        </div>
      </form>
    </section>
  );
}
