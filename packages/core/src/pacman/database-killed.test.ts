// A writer process killed at four moments (some 8 s of waiting for it), so this runs with
// `npm test`, not in the fast set (vitest.fast.config.ts); the rest of RepoDatabase is in
// database.test.ts.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createPacmanSandbox, hasProgram, run } from '../testing/pacman.js';
import { writeSyntheticPackage } from '../testing/synthetic-package.js';
import { RepoDatabase } from './database.js';

describe('RepoDatabase', () => {
  it.skipIf(!hasProgram('pacman'))(
    'a writer killed at any moment leaves a database pacman reads, and the next writer carries on',
    async () => {
      const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-db-killed-'));
      onTestFinished(() => fs.rm(root, { recursive: true, force: true }));
      const dir = path.join(root, 'repo');
      const pkgs = path.join(root, 'pkgs');
      await fs.mkdir(dir);
      const dbFile = () => path.join(dir, 'test.db.tar.gz');
      const files = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          writeSyntheticPackage(pkgs, { name: `k${i}`, version: '1.0-1' }),
        ),
      );
      const script = path.join(root, 'writer.mts');
      await fs.writeFile(
        script,
        `import { RepoDatabase } from ${JSON.stringify(path.resolve(import.meta.dirname, 'database.ts'))};
const db = await RepoDatabase.open(${JSON.stringify(dbFile())});
for (const file of ${JSON.stringify(files)}) await db.add([file]);
`,
      );
      await (await RepoDatabase.open(dbFile())).init();
      // the writer needs a second or two to start (tsx); these land before, during and after its adds
      for (const delay of [300, 1500, 2500, 4000]) {
        const child = spawn(process.execPath, ['--import', 'tsx', script], {
          stdio: ['ignore', 'ignore', 'pipe'],
          cwd: path.resolve(import.meta.dirname, '../../../..'),
        });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
        await sleep(delay);
        child.kill('SIGKILL');
        const code = await exited;
        // killed (null), or it had finished every add already (0); anything else is a writer bug
        expect(code === null || code === 0, stderr).toBe(true);
        // whatever moment it died at, readers see a whole database
        const written = await fs.stat(dbFile()).then(
          () => true,
          () => false,
        );
        if (written) {
          const listing = await run('bsdtar', ['-tzf', dbFile()]);
          expect(listing.code, listing.stderr).toBe(0);
        }
      }
      const sandbox = await createPacmanSandbox([{ name: 'test', server: `file://${dir}` }]);
      try {
        expect((await sandbox.pacman(['-Sy'])).code).toBe(0);
        const db = await RepoDatabase.open(dbFile(), { lockTimeoutMs: 1000 });
        const listed = (await db.list()).map((entry) => entry.name);
        const more = await writeSyntheticPackage(pkgs, { name: 'after-crash', version: '1.0-1' });
        await db.add([more]);
        expect((await db.list()).length).toBe(listed.length + 1);
        expect((await sandbox.pacman(['-Sy'])).code).toBe(0);
        const synced = await sandbox.pacman(['-Sl', 'test']);
        expect(synced.stdout.trim().split('\n')).toHaveLength(listed.length + 1);
      } finally {
        await sandbox.cleanup();
      }
    },
    120_000,
  );
});
