/** What a user asks to add, as the original's `PackageAddRequest.source`. */
export type SourceSpec =
  | { type: 'aur'; name: string }
  | { type: 'git'; url: string; devel: boolean }
  | { type: 'raw'; pkgbuild: string; devel: boolean };

/**
 * A `Source` turns a package spec into a checkout and reports its state string, the value that
 * decides whether a package is up to date (reference 4.2).
 */
export interface Source {
  /** `aur`, `git`, `raw`, or a plugin's own kind */
  readonly kind: string;
  /** whether remote commits of `git+` sources count towards the state (reference 4.2) */
  devel: boolean;
  /** Label and URL as `PackageInfo.source` / `source_url` show them. */
  describe(): { label: string; url: string | null };
  /** First checkout into an empty folder. */
  initialize(dir: string, options?: { signal?: AbortSignal }): Promise<void>;
  /** Brings the checkout in `dir` up to date (pull, version check). */
  update(dir: string, options?: { signal?: AbortSignal }): Promise<void>;
  /** The state string: equal strings mean nothing to rebuild. */
  state(): string;
  /** Serialisable form kept in the store; `SourceFactory.restore` reads it back. */
  toJSON(): Record<string, unknown>;
}

/** Creates sources from specs and from what the store kept. */
export interface SourceFactory {
  create(spec: SourceSpec): Promise<Source>;
  restore(json: Record<string, unknown>): Source;
}
