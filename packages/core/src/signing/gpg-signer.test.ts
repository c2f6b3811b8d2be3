import { expect, it } from 'vitest';
import { createTestGpgHome, type TestGpgHome } from '../testing/gpg.js';
import { testSigner } from '../testing/signer-suite.js';
import { createGpgSigner } from './gpg-signer.js';

let home: TestGpgHome | undefined;

testSigner('gpg (unprotected key)', {
  async create() {
    home = await createTestGpgHome();
    return createGpgSigner({ homedir: home.homedir, key: home.fingerprint });
  },
  cleanup: async () => home?.cleanup(),
});

let protectedHome: TestGpgHome | undefined;

testSigner('gpg (passphrase)', {
  largeBytes: 32 * 1024 * 1024,
  async create() {
    protectedHome = await createTestGpgHome({ passphrase: 'correct horse' });
    return createGpgSigner({
      homedir: protectedHome.homedir,
      key: protectedHome.fingerprint,
      passphrase: 'correct horse',
    });
  },
  cleanup: async () => protectedHome?.cleanup(),
  additionalTests({ signer }) {
    it('fails with a clear error for a wrong passphrase', async () => {
      // a fresh home: gpg-agent caches a passphrase once it was given right
      const fresh = await createTestGpgHome({ passphrase: 'correct horse' });
      try {
        const wrong = createGpgSigner({
          homedir: fresh.homedir,
          key: fresh.fingerprint,
          passphrase: 'wrong',
        });
        const data = (async function* () {
          yield Buffer.from('x');
        })();
        await expect(wrong.sign(data)).rejects.toThrow(/gpg --detach-sign failed/);
        expect(await signer().fingerprint()).toMatch(/^[0-9A-F]{40}$/);
      } finally {
        await fresh.cleanup();
      }
    });
  },
});
