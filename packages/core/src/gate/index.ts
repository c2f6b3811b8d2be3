/** The update gate: cool-off, maintainer trust, diff review and approval of updates (docs/update-gate.md). */
export * from './gate.js';
export * from './policy.js';
export * from './review.js';
