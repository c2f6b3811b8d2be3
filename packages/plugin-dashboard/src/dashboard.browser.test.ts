/**
 * The dashboard in a real browser: Debian's Chromium (/usr/bin/chromium) driven by playwright-core,
 * against a real serene HTTP server (the repo-http test harness: Koa, SQLite store, orchestrator,
 * a runner whose builds wait until the test lets them go and log what the test writes). Screenshots
 * of every page go to test-artifacts/dashboard/ (git-ignored).
 */
import { existsSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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
        packages: ['alpha', 'beta', 'broken', 'gamma', 'zeta', 'omega'].map((base) => ({
          base,
          pkgver: '1.0',
        })),
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
      await shot('5-queue-drained');
    });

    it('shows a package with its history chart, settings and PKGBUILD, and changes a setting', async () => {
      await page.goto(`${h.url}/dashboard/#/package/gamma`);
      await page.getByRole('heading', { name: /^gamma/ }).waitFor();
      await page.locator('figure.chart svg rect').first().waitFor();
      expect(await page.locator('figure.chart svg rect.bar.s-passing').count()).toBe(2);
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

    it('shows the server: engines and the pacman.conf lines', async () => {
      await page.getByRole('link', { name: 'Server' }).click();
      await page.getByRole('heading', { name: 'Server' }).waitFor();
      await page.getByText(`Server = ${h.url}/x86_64`).waitFor();
      await page.getByText('sudo pacman-key --lsign-key ABCDEF').waitFor();
      await page.getByText('gated', { exact: true }).waitFor();
      await shot('8-server');
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
      expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
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
      expect(await page.locator('table.list td.name a', { hasText: 'omega' }).count()).toBe(0);
    });

    it('signs out, and the page asks for the secret again', async () => {
      await page.getByRole('button', { name: /^Sign out/ }).click();
      await page.getByRole('heading', { name: 'Sign in to serene' }).waitFor();
      expect(await page.evaluate(() => sessionStorage.getItem('serene.secret'))).toBeNull();
    });
  },
);
