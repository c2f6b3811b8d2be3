/**
 * The update gate (beyond the original): what holds an update of a package before it is built, and
 * what the store keeps of it. See docs/update-gate.md.
 */

// --- POLICY ---

/** How the changes of an update are reviewed. */
export type ReviewMode =
  /** no review: every change may pass */
  | 'off'
  /** a change of only `pkgver`, `pkgrel` and checksums (and the `.SRCINFO` to match) passes; anything else is held */
  | 'diff'
  /** every update is held for approval */
  | 'all';

/** The review modes, in order of strictness. */
export const REVIEW_MODES: readonly ReviewMode[] = ['off', 'diff', 'all'];

/** The policy an update of one package is checked against. */
export interface GatePolicy {
  /** milliseconds the package must have been unchanged upstream before an update is built (0: off) */
  coolOffMs: number;
  /** hold an update when the maintainer, a co-maintainer or the packager changed */
  trust: boolean;
  review: ReviewMode;
}

/** Per-package overrides of the server-wide {@link GatePolicy}; a missing field is inherited. */
export type GatePolicyOverrides = Partial<GatePolicy>;

// --- RECORDS ---

/** Who is responsible for a package upstream, as recorded when it was added (or last approved). */
export interface TrustRecord {
  /**
   * the AUR maintainer; null when the package is orphaned; undefined when unknown (no AUR RPC: git
   * sources, the GitHub mirror)
   */
  maintainer?: string | null;
  /** the AUR co-maintainers (empty when unknown) */
  coMaintainers: string[];
  /** the AUR submitter (first uploader), when known */
  submitter?: string | null;
  /** `Name <email>` of the authors of the package's git commits accepted so far (the last packager first) */
  packagers: string[];
}

/** Why an update is held. */
export type HoldKind =
  /** the package changed upstream less than the cool-off ago */
  | 'cool-off'
  /** the AUR maintainer changed */
  | 'maintainer'
  /** the package was orphaned */
  | 'orphaned'
  /** an orphaned package was adopted */
  | 'adopted'
  /** a co-maintainer was added */
  | 'co-maintainer'
  /** a commit of the update was written by a packager not seen before */
  | 'packager'
  /** an account or the package is on the server's block list */
  | 'blocked'
  /** the change is more than a version bump */
  | 'diff'
  /** every update of the package is held (review `all`) */
  | 'review'
  /** the update could not be checked (the gate fails closed) */
  | 'error';

/** One reason of a held update. */
export interface HoldReason {
  kind: HoldKind;
  /** what a reviewer reads, e.g. `maintainer changed from alice to mallory` */
  message: string;
  /** for `cool-off`: when the cool-off ends */
  until?: Date;
}

/** An update that was not built, waiting for its cool-off or a reviewer. */
export interface HeldUpdate {
  /** the commit of the package's git repository that was checked (the revision to approve) */
  revision: string;
  /** the source state string at that revision */
  state: string;
  /** the full version of that revision's `.SRCINFO` (`[epoch:]pkgver-pkgrel`) */
  version: string;
  /** the last accepted (built or approved) revision the update is compared against */
  baseRevision: string | null;
  reasons: HoldReason[];
  /** when serene first held this revision */
  detected: Date;
  /** when the package last changed upstream (AUR `LastModified`, else the commit time) */
  modified: Date;
  /** who is responsible for the package at this revision */
  trust: TrustRecord;
  /** the paths that changed since the base revision, with git's status letter */
  files: { status: string; path: string }[];
}

/** What serene keeps of the gate of one package (table `package_gate`). */
export interface GateRecord {
  /** pkgbase of the package */
  base: string;
  /** the package's own overrides of the server-wide policy */
  policy: GatePolicyOverrides;
  /** the package this one was added as a dependency of: its overrides apply where this one has none */
  inheritsFrom: string | null;
  /** who was responsible when the package was added or its last update was approved */
  trust: TrustRecord | null;
  /** the package's last accepted revision: built, approved, or seen at add */
  accepted: string | null;
  /** the update waiting, if any */
  held: HeldUpdate | null;
  /** a revision approved by a reviewer, to be built by the next session of the package */
  approved: string | null;
  /** a revision a reviewer rejected: not built, not held again, until the package moves on */
  rejected: string | null;
}

/** A gate record with nothing recorded, for a package that has none yet. */
export function emptyGateRecord(base: string): GateRecord {
  return {
    base,
    policy: {},
    inheritsFrom: null,
    trust: null,
    accepted: null,
    held: null,
    approved: null,
    rejected: null,
  };
}
