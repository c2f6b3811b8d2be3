import { createGpgSigner } from '../signing/gpg-signer.js';
import { createTestGpgHome, type TestGpgHome } from '../testing/gpg.js';
import { testPublisher } from '../testing/publisher-suite.js';
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
