/**
 * The serene dashboard: a single-page app on hash routes (`#/`, `#/package/<name>`,
 * `#/package/<name>/build/<started>`, `#/queue`, `#/server`, `#/add`, `#/signin`).
 */
import './styles.css';
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { AddPage } from './pages/add';
import { BuildPage } from './pages/build';
import { ListPage } from './pages/list';
import { PackagePage } from './pages/package';
import { QueuePage } from './pages/queue';
import { HeldPage, ReviewPage } from './pages/review';
import { ServerPage } from './pages/server';
import { SignInPage } from './pages/signin';
import { boot, signOut, useStore } from './store';
import { href, type Route, useRoute } from './util';

type Theme = 'auto' | 'light' | 'dark';
const THEME_KEY = 'serene.theme';

function applyTheme(theme: Theme): void {
  if (theme === 'auto') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
}

function ThemeSwitch() {
  const [theme, setTheme] = useState<Theme>(
    () => (localStorage.getItem(THEME_KEY) as Theme | null) ?? 'auto',
  );
  useEffect(() => {
    applyTheme(theme);
    localStorage.setItem(THEME_KEY, theme);
  }, [theme]);
  const next: Record<Theme, Theme> = { auto: 'light', light: 'dark', dark: 'auto' };
  return (
    <button
      type="button"
      class="ghost"
      onClick={() => setTheme(next[theme])}
      title="Switch between light, dark and the system's theme"
      aria-label={`Theme: ${theme}`}
    >
      {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'} <span class="wide">{theme}</span>
    </button>
  );
}

function Page({ route }: { route: Route }) {
  const { ready, needsSignIn } = useStore();
  if (!ready) return <p class="muted">Connecting…</p>;
  if (needsSignIn || route.page === 'signin') return <SignInPage />;
  switch (route.page) {
    case 'list':
      return <ListPage />;
    case 'package':
      return <PackagePage base={route.base} />;
    case 'build':
      return <BuildPage base={route.base} started={route.started} />;
    case 'queue':
      return <QueuePage />;
    case 'server':
      return <ServerPage />;
    case 'add':
      return <AddPage />;
    case 'review':
      return <ReviewPage />;
    case 'held':
      return <HeldPage base={route.base} />;
    case 'missing':
      return (
        <section>
          <h1 tabIndex={-1}>Not found</h1>
          <p>
            There is no page at <code>{route.path}</code>. <a href={href.list()}>Back to the packages</a>
          </p>
        </section>
      );
  }
}

function App() {
  const route = useRoute();
  const { info, user, live, queue, toasts, needsSignIn, held } = useStore();
  const main = useRef<HTMLElement>(null);
  // after a page change, focus goes to its heading (keyboard and screen reader users start there)
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const heading = main.current?.querySelector<HTMLElement>('h1');
    heading?.focus({ preventScroll: true });
    scrollTo(0, 0);
  }, [route.page, (route as { base?: string }).base]);
  const running = queue.filter((entry) => entry.phase === 'running').length;
  const current = (page: Route['page'] | Route['page'][]) =>
    (Array.isArray(page) ? page.includes(route.page) : route.page === page) ? 'page' : undefined;
  return (
    <>
      <button
        type="button"
        class="skip"
        onClick={() => main.current?.querySelector<HTMLElement>('h1')?.focus()}
      >
        Skip to content
      </button>
      <header class="top">
        <a class="brand" href={href.list()}>
          <img src="icon.svg" alt="" width="24" height="24" />
          <span>{info?.name ?? 'serene'}</span>
        </a>
        {!needsSignIn && (
          <nav aria-label="Main">
            <a href={href.list()} aria-current={current(['list', 'package', 'build'])}>
              Packages
            </a>
            <a href={href.queue()} aria-current={current('queue')}>
              Queue
              {queue.length > 0 && (
                <span class="count">
                  {queue.length}
                  <span class="sr-only">
                    {' '}
                    builds: {running} running, {queue.length - running} waiting
                  </span>
                </span>
              )}
            </a>
            {held && (
              <a href={href.review()} aria-current={current(['review', 'held'])}>
                Review
                {held.length > 0 && (
                  <span class="count">
                    {held.length}
                    <span class="sr-only"> held updates</span>
                  </span>
                )}
              </a>
            )}
            <a href={href.server()} aria-current={current('server')}>
              Server
            </a>
            {user && (
              <a href={href.add()} aria-current={current('add')}>
                Add
              </a>
            )}
          </nav>
        )}
        <div class="tools">
          {!needsSignIn && (
            <span
              class={live ? 'live on' : 'live'}
              role="status"
              title={live ? 'Live: changes appear as they happen' : 'Not connected: retrying'}
            >
              <span class="dot" aria-hidden="true" />
              <span class="wide">{live ? 'live' : 'offline'}</span>
            </span>
          )}
          <ThemeSwitch />
          {user ? (
            <button type="button" class="ghost" onClick={signOut} title={`Signed in as ${user}`}>
              Sign out <span class="wide muted">({user})</span>
            </button>
          ) : (
            route.page !== 'signin' &&
            !needsSignIn && (
              <a class="button ghost" href={href.signin()}>
                Sign in
              </a>
            )
          )}
        </div>
      </header>
      <main id="main" ref={main}>
        <Page route={route} />
      </main>
      <div class="toasts" role="status" aria-live="polite">
        {toasts.map((entry) => (
          <div key={entry.id} class={`toast ${entry.kind}`}>
            {entry.text}
          </div>
        ))}
      </div>
    </>
  );
}

render(<App />, document.getElementById('app')!);
void boot();
