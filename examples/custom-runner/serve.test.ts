// The host with its runner swapped for the local one (examples/custom-runner/serve.ts) as its own
// process: a raw PKGBUILD added through the API is built by makepkg on this machine, published, and
// installed by pacman from the server.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createPacmanSandbox, hasProgram } from '@serene/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  api,
  createDataDir,
  freePort,
  testEnv,
  until,
} from '../../packages/host/src/testing/host-harness.js';

const missing = ['makepkg', 'pacman'].filter((tool) => !hasProgram(tool));
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const PKGBUILD = `pkgname=swapped-runner-demo
pkgver=1.2
pkgrel=1
pkgdesc='built by the local runner'
arch=('any')
license=('MIT')
package() {
  install -d "$pkgdir/usr/share/demo"
  echo "built by makepkg on the host" > "$pkgdir/usr/share/demo/README"
}
`;

describe.skipIf(missing.length > 0)(
  `the host with the local runner (missing: ${missing.join(', ') || 'none'})`,
  () => {
    it('builds a raw PKGBUILD with makepkg on this machine and serves it to pacman', async () => {
      const data = await createDataDir();
      cleanups.push(data.cleanup);
      // makepkg runs as the unprivileged build user: it must reach the work folder
      await fs.chmod(data.root, 0o755);
      await fs.chmod(data.dataDir, 0o755);
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const child = spawn(
        process.execPath,
        ['--conditions=@serene/source', '--import', 'tsx', path.join(import.meta.dirname, 'serve.ts')],
        {
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? '/root',
            ...testEnv(data.dataDir, { PORT: String(port), LOG_LEVEL: 'info' }),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      child.stdout.on('data', (chunk) => (output += chunk));
      child.stderr.on('data', (chunk) => (output += chunk));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      cleanups.push(async () => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      await until(
        () => output.includes('serene is serving') || child.exitCode !== null,
        60_000,
        'the server',
      );
      expect(output).toMatch(/"runner":"local"/);

      const added = await api(url, '/package/add', {
        method: 'POST',
        body: { replace: false, source: { type: 'raw', pkgbuild: PKGBUILD, devel: false } },
      });
      expect(added.status, added.text).toBe(200);
      let state = '';
      await until(
        async () => {
          const build = await api(url, '/package/swapped-runner-demo/build/latest');
          state = (build.json as { state?: { state: string } } | undefined)?.state?.state ?? '';
          return ['success', 'failure', 'fatal', 'cancelled'].includes(state);
        },
        300_000,
        'the build',
      );
      expect(
        state,
        `${(await api(url, '/package/swapped-runner-demo/build/latest/logs')).text}\n${output}`,
      ).toBe('success');

      const sandbox = await createPacmanSandbox([{ name: 'serene', server: `${url}/x86_64` }]);
      cleanups.push(() => sandbox.cleanup());
      expect((await sandbox.pacman(['-Sy'])).code).toBe(0);
      const install = await sandbox.pacman(['-S', '--noconfirm', 'swapped-runner-demo']);
      expect(install.code, install.stderr).toBe(0);
      expect(await fs.readFile(path.join(sandbox.root, 'usr/share/demo/README'), 'utf8')).toBe(
        'built by makepkg on the host\n',
      );

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }, 600_000);
  },
);
