// Signing through a gpg-agent, end to end, as the original's layout has it: the data folder holds
// only the public key (sign_key.asc) and the agent's socket (S.gpg-agent, here a link to a real
// gpg-agent of Debian's GnuPG, holding the key in its own GNUPGHOME, protected by a passphrase the
// server gives as SIGN_KEY_PASSWORD). Real pacman installs with SigLevel = Required DatabaseRequired.
// Builds are the instant runner's (packages made on the spot): signing is what is tested here.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import {
  createInstantRunner,
  createPacmanSandbox,
  createTestGpgHome,
  hasProgram,
} from '@serene/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { startAurEmulator } from '../../../test/fixtures/aur/index.js';
import { readConfig } from './config.js';
import { startServer } from './server.js';
import { api, createDataDir, testEnv } from './testing/host-harness.js';

const exec = promisify(execFile);
const tools = ['gpg', 'gpg-agent', 'gpgconf', 'gpg-connect-agent', 'pacman', 'pacman-key'];
const missing = tools.filter((tool) => !hasProgram(tool));
const STRICT = 'Required DatabaseRequired';

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

// reason: needs Debian's GnuPG (gpg-agent) and pacman; `npm test`'s set-up installs them
describe.skipIf(missing.length > 0)(
  `signing through a gpg-agent (missing: ${missing.join(', ') || 'none'})`,
  () => {
    it('signs packages and databases through the agent for pacman; without the agent builds fail saying so while serving goes on', {
      timeout: 300_000,
    }, async () => {
      const aur = await startAurEmulator({ packages: [{ base: 'hello', pkgver: '1.0' }] });
      cleanups.push(() => aur.close());
      const home = await createTestGpgHome({ passphrase: 'agent passphrase' });
      cleanups.push(() => home.cleanup());
      const data = await createDataDir();
      cleanups.push(data.cleanup);

      // the data folder: the public key only, and the agent's socket
      const { stdout: publicKey } = await exec('gpg', [
        '--homedir',
        home.homedir,
        '--armor',
        '--export',
        home.fingerprint,
      ]);
      await fs.writeFile(path.join(data.dataDir, 'sign_key.asc'), publicKey);
      const { stdout: socket } = await exec('gpgconf', [
        '--homedir',
        home.homedir,
        '--list-dirs',
        'agent-socket',
      ]);
      await exec('gpgconf', ['--homedir', home.homedir, '--launch', 'gpg-agent']);
      await fs.symlink(socket.trim(), path.join(data.dataDir, 'S.gpg-agent'));

      const server = await startServer({
        config: readConfig(
          testEnv(data.dataDir, { AUR_URL: aur.url, SIGN_KEY_PASSWORD: 'agent passphrase', ARCH: 'x86_64' }),
        ),
        parts: { runner: createInstantRunner() },
      });
      cleanups.push(() => server.close());
      expect(server.signer?.name).toBe('gpg-agent');
      expect(await server.signer?.fingerprint()).toBe(home.fingerprint);
      expect((await api(server.url, '/', { secret: null })).json).toMatchObject({ signed: true });

      const added = await api(server.url, '/package/add', {
        method: 'POST',
        body: { replace: false, source: { type: 'aur', name: 'hello' } },
      });
      expect(added.status, added.text).toBe(200);
      await server.orchestrator.idle();
      expect((await server.store.getLatestBuild('hello'))?.state).toEqual({ state: 'success' });
      const repository = path.join(data.dataDir, 'repository');
      const files = await fs.readdir(repository);
      const pkg = files.find((file) => /^hello-1\.0-1-.*\.pkg\.tar\.(gz|zst)$/.test(file))!;
      expect(files).toEqual(
        expect.arrayContaining([`${pkg}.sig`, 'serene.db.tar.gz.sig', 'serene.files.tar.gz.sig']),
      );
      expect(await home.verify(path.join(repository, pkg), path.join(repository, `${pkg}.sig`))).toBe(true);

      // pacman, trusting the key served at /key, installs with signatures required everywhere
      const sandbox = await createPacmanSandbox(
        [{ name: 'serene', server: `${server.url}/x86_64`, sigLevel: STRICT }],
        {
          sigLevel: STRICT,
        },
      );
      cleanups.push(() => sandbox.cleanup());
      expect((await sandbox.pacmanKey(['--init'])).code).toBe(0);
      const keyFile = path.join(sandbox.root, 'serene.asc');
      await fs.writeFile(keyFile, (await api(server.url, '/key')).text);
      expect((await sandbox.pacmanKey(['--add', keyFile])).code).toBe(0);
      expect((await sandbox.pacmanKey(['--lsign-key', home.fingerprint])).code).toBe(0);
      const synced = await sandbox.pacman(['-Sy']);
      expect(synced.code, synced.stderr).toBe(0);
      const installed = await sandbox.pacman(['-S', '--noscriptlet', 'hello']);
      expect(installed.code, installed.stderr + installed.stdout).toBe(0);
      expect((await sandbox.pacman(['-Q'])).stdout).toBe('hello 1.0-1\n');

      // the agent goes away: a build fails, naming it; the server keeps serving
      await exec('gpgconf', ['--homedir', home.homedir, '--kill', 'gpg-agent']);
      await (
        await server.orchestrator.start(['hello'], {
          reason: 'manual',
          resolve: false,
          clean: false,
          force: true,
        })
      ).done;
      const failed = await server.store.getLatestBuild('hello');
      expect(failed?.state.state).toBe('fatal');
      expect(JSON.stringify(failed?.state)).toMatch(
        /the gpg-agent at .*S\.gpg-agent is not reachable: its socket is gone/,
      );
      expect((await api(server.url, '/', { secret: null })).status).toBe(200);
      expect((await api(server.url, '/key')).text).toMatch(/BEGIN PGP PUBLIC KEY BLOCK/);
      expect((await sandbox.pacman(['-Syy'])).code).toBe(0);

      // the agent is back: builds sign again, without a restart (the passphrase given again)
      await exec('gpgconf', ['--homedir', home.homedir, '--launch', 'gpg-agent']);
      await (
        await server.orchestrator.start(['hello'], {
          reason: 'manual',
          resolve: false,
          clean: false,
          force: true,
        })
      ).done;
      expect((await server.store.getLatestBuild('hello'))?.state).toEqual({ state: 'success' });
      const again = await sandbox.pacman(['-Syy']);
      expect(again.code, again.stderr).toBe(0);
      expect(await home.verify(path.join(repository, pkg), path.join(repository, `${pkg}.sig`))).toBe(true);
      await server.close();

      // a start while the agent is away: the server serves; the key is chosen when the agent answers
      await exec('gpgconf', ['--homedir', home.homedir, '--kill', 'gpg-agent']);
      const later = await startServer({
        config: readConfig(
          testEnv(data.dataDir, { AUR_URL: aur.url, SIGN_KEY_PASSWORD: 'agent passphrase', ARCH: 'x86_64' }),
        ),
        parts: { runner: createInstantRunner() },
      });
      cleanups.push(() => later.close());
      expect((await api(later.url, '/', { secret: null })).json).toMatchObject({ signed: true });
      expect((await api(later.url, '/key')).text).toMatch(/BEGIN PGP PUBLIC KEY BLOCK/);
      expect((await fetch(`${later.url}/x86_64/serene.db.sig`)).status).toBe(200);
      const rebuild = async () =>
        (
          await later.orchestrator.start(['hello'], {
            reason: 'manual',
            resolve: false,
            clean: false,
            force: true,
          })
        ).done;
      await rebuild();
      expect(JSON.stringify((await later.store.getLatestBuild('hello'))?.state)).toMatch(
        /"fatal".*the gpg-agent at .*S\.gpg-agent is not reachable/,
      );
      await exec('gpgconf', ['--homedir', home.homedir, '--launch', 'gpg-agent']);
      await rebuild();
      expect((await later.store.getLatestBuild('hello'))?.state).toEqual({ state: 'success' });
    });

    it('refuses to start on a new data folder (its empty database must be signed) while no agent answers, naming it', async () => {
      const home = await createTestGpgHome();
      cleanups.push(() => home.cleanup());
      const data = await createDataDir();
      cleanups.push(data.cleanup);
      const { stdout: publicKey } = await exec('gpg', [
        '--homedir',
        home.homedir,
        '--armor',
        '--export',
        home.fingerprint,
      ]);
      await fs.writeFile(path.join(data.dataDir, 'sign_key.asc'), publicKey);
      await fs.symlink(path.join(data.root, 'nothing-here'), path.join(data.dataDir, 'S.gpg-agent'));
      const parts = { runner: createInstantRunner() };
      await expect(startServer({ config: readConfig(testEnv(data.dataDir)), parts })).rejects.toThrow(
        /the gpg-agent at .*S\.gpg-agent is not reachable: its socket is gone/,
      );
      // without the socket, a public key alone is refused as before, saying how to use an agent
      await fs.rm(path.join(data.dataDir, 'S.gpg-agent'));
      await expect(startServer({ config: readConfig(testEnv(data.dataDir)), parts })).rejects.toThrow(
        /holds only the public key .* or sign through a gpg-agent that holds it \(its socket as S\.gpg-agent/,
      );
    });
  },
);
