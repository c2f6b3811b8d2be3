import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createGpgSigner } from '../signing/gpg-signer.js';
import { createTestGpgHome, type TestGpgHome } from '../testing/gpg.js';
import { testPublisher } from '../testing/publisher-suite.js';
import { writeSyntheticPackage } from '../testing/synthetic-package.js';
import { createFilesystemRepository } from './filesystem-repository.js';

const homes: TestGpgHome[] = [];

testPublisher('filesystem', {
  create: ({ dir, name, signer }) => createFilesystemRepository({ dir, name, signer }),
  async signer() {
    const home = await createTestGpgHome();
    homes.push(home);
    return { ...createGpgSigner({ homedir: home.homedir, key: home.fingerprint }), dispose: () => home.cleanup() };
  },
});

describe('filesystem repository: start-up janitor', () => {
  it('removes signatures without their package and leftovers of a crash, nothing else', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-janitor-'));
    try {
      const dir = path.join(root, 'repository');
      const repo = createFilesystemRepository({ dir });
      await repo.init();
      const pkg = await writeSyntheticPackage(path.join(root, 'in'), { name: 'kept', version: '1.0-1' });
      await repo.publish([pkg]);
      const keptFile = path.basename(pkg);
      await fs.writeFile(path.join(dir, `${keptFile}.sig`), 'signature of a package that is there');
      await fs.writeFile(path.join(dir, 'gone-1.0-1-x86_64.pkg.tar.zst.sig'), 'orphan');
      await fs.writeFile(path.join(dir, '.tmp.half-1.0-1-x86_64.pkg.tar.zst'), 'half a copy');
      await fs.writeFile(path.join(dir, 'notes.txt.sig'), 'not a package signature: left alone');
      const removed = await repo.removeOrphans();
      expect(removed.sort()).toEqual(['.tmp.half-1.0-1-x86_64.pkg.tar.zst', 'gone-1.0-1-x86_64.pkg.tar.zst.sig']);
      const left = await fs.readdir(dir);
      expect(left).toContain(keptFile);
      expect(left).toContain(`${keptFile}.sig`);
      expect(left).toContain('notes.txt.sig');
      expect(left).toContain('serene.db.tar.gz');
      expect((await repo.list()).map((entry) => entry.name)).toEqual(['kept']);
      expect(await repo.removeOrphans()).toEqual([]);
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
