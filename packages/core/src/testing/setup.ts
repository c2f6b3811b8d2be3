import { describe, it } from 'vitest';

/**
 * Whether this run must have everything the tests need: `CI=true` (or `CI=1`), as CI services set
 * it. There the test set-up (scripts/setup-test-env.mjs) must have provided every part, so a missing
 * part is a failure, never a skip.
 */
export function setupRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' || env.CI === '1';
}

/**
 * For a suite that needs parts the test set-up provides: true when the suite must not run because
 * `missing` (each item says what is missing and why) is not empty. The caller skips the suite then,
 * with the reason in its name. Under `CI=true` this also registers a failing test named after the
 * suite, whose error lists what the set-up failed to provide: a failed set-up never passes as a skip.
 */
export function setupMissing(suite: string, missing: readonly string[]): boolean {
  if (missing.length === 0) return false;
  if (setupRequired()) {
    describe(`${suite}: set-up`, () => {
      it('has what the suite needs (CI=true: a missing part fails)', () => {
        throw new Error(`the test set-up did not provide: ${missing.join('; ')}`);
      });
    });
  }
  return true;
}

/**
 * Inside a test whose set-up turned out to be missing: skips it with `reason`, or under `CI=true`
 * fails it with `reason` (see {@link setupRequired}).
 */
export function skipOrFail(ctx: { skip: (note?: string) => void }, reason: string): never {
  if (setupRequired()) throw new Error(`the test set-up did not provide: ${reason}`);
  ctx.skip(reason);
  throw new Error('unreachable: ctx.skip returned');
}
