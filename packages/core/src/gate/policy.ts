/**
 * Gate policies: the server-wide default, per-package overrides (inherited by the dependencies added
 * with a package), and the durations they are written in.
 */
import {
  type GatePolicy,
  type GatePolicyOverrides,
  REVIEW_MODES,
  type ReviewMode,
} from '../contracts/gate.js';
import { InputError } from '../errors.js';

/** The policy of a server that configures nothing: no update is held (the original's behaviour). */
export const OPEN_GATE_POLICY: GatePolicy = Object.freeze({ coolOffMs: 0, trust: false, review: 'off' });

/** The policy docs/update-gate.md recommends for new installs. */
export const RECOMMENDED_GATE_POLICY: GatePolicy = Object.freeze({
  coolOffMs: 2 * 86_400_000,
  trust: true,
  review: 'diff',
});

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;

/** Longest cool-off: a year. */
export const MAX_COOL_OFF_MS = 366 * 86_400_000;

/**
 * Reads a cool-off: `0` (off), seconds, or a number with `ms`, `s`, `m`, `h`, `d` or `w` (`36h`,
 * `2d`); `InputError` for anything else or more than a year.
 */
export function parseCoolOff(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(text.trim());
  const ms = match ? Number(match[1]) * UNITS[(match[2] ?? 's') as keyof typeof UNITS] : Number.NaN;
  if (!Number.isFinite(ms) || ms > MAX_COOL_OFF_MS) {
    throw new InputError(
      `invalid cool-off '${text}': expected 0, seconds, or a number with ms, s, m, h, d or w (e.g. 2d), at most 366d`,
    );
  }
  return Math.round(ms);
}

/** A duration in the largest unit that divides it (`2d`, `36h`, `90s`, `0`). */
export function formatCoolOff(ms: number): string {
  if (ms === 0) return '0';
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const)
    if (ms % UNITS[unit] === 0) return `${ms / UNITS[unit]}${unit}`;
  return `${ms}ms`;
}

/** Reads a review mode (`off`, `diff`, `all`). */
export function parseReviewMode(text: string): ReviewMode {
  if ((REVIEW_MODES as readonly string[]).includes(text)) return text as ReviewMode;
  throw new InputError(`invalid review mode '${text}': expected one of ${REVIEW_MODES.join(', ')}`);
}

/**
 * The effective policy: each field from the package's overrides, else from the overrides of the
 * packages it inherits from (nearest first), else the server default.
 */
export function effectivePolicy(defaults: GatePolicy, chain: readonly GatePolicyOverrides[]): GatePolicy {
  const pick = <K extends keyof GatePolicy>(key: K): GatePolicy[K] => {
    for (const overrides of chain) {
      const value = overrides[key];
      if (value !== undefined) return value as GatePolicy[K];
    }
    return defaults[key];
  };
  return { coolOffMs: pick('coolOffMs'), trust: pick('trust'), review: pick('review') };
}

/** Whether a policy can hold anything (blocked accounts and packages aside). */
export function policyHolds(policy: GatePolicy): boolean {
  return policy.coolOffMs > 0 || policy.trust || policy.review !== 'off';
}
