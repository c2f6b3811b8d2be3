// This clone's test resources: what the test set-up (scripts/setup-*.mjs, build-host-image.mjs) makes
// and the tests use, named after the clone so that two clones on one machine never reset each
// other's database password or remove each other's images and containers. The id is derived from
// the clone's absolute path: the same clone always gets the same names, another clone other ones.
//
//   node scripts/clone.mjs        # prints them
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The clone's root folder. */
export const REPO = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
/** 8 hex digits of the SHA-256 of the clone's absolute path. */
export const CLONE_ID = createHash('sha256').update(REPO).digest('hex').slice(0, 8);
/** Set-up state and caches (debootstrap roots, the PostgreSQL URL, logs). */
export const CACHE = path.join(REPO, '.cache');
/** Where the set-up scripts write what they run (compiler, apt, image builds). */
export const SETUP_LOG = path.join(CACHE, 'setup.log');

/** The runner image the tests build with. */
export const TEST_RUNNER_IMAGE = `serene-runner:test-${CLONE_ID}`;
/** The server image test/e2e/host-image.test.ts runs. */
export const TEST_HOST_IMAGE = `serene:test-${CLONE_ID}`;
/** Prefix of every container and image tag the tests and the set-up make. */
export const TEST_PREFIX = `serene-test-${CLONE_ID}-`;
/** The PostgreSQL cluster of the store tests (SERENE_TEST_POSTGRES_DIR overrides it). */
export const TEST_POSTGRES_DIR =
  process.env.SERENE_TEST_POSTGRES_DIR ?? path.join(os.tmpdir(), `serene-test-postgres-${CLONE_ID}`);

/**
 * Why the set-up could not provide a part (`docker`, `postgres`, `host-image`), as it wrote it to
 * .cache/<part>-unavailable; undefined when it did not record a reason.
 */
export function setupReason(part) {
  try {
    return readFileSync(path.join(CACHE, `${part}-unavailable`), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // `node scripts/clone.mjs | head -1` closes the pipe early: that is no error
  process.stdout.on('error', (error) => {
    if (error.code !== 'EPIPE') throw error;
  });
  for (const [name, value] of Object.entries({
    REPO,
    CLONE_ID,
    SETUP_LOG,
    TEST_RUNNER_IMAGE,
    TEST_HOST_IMAGE,
    TEST_PREFIX,
    TEST_POSTGRES_DIR,
  })) {
    process.stdout.write(`${name}=${value}\n`);
  }
}
