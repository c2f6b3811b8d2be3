/**
 * Named errors of serene. Domain code throws these; the HTTP edge maps `name` to a status once.
 *
 * @remarks A `code` is set only on errors that users match on; the codes are listed in docs/errors.md.
 */
export class SereneError extends Error {
  /** Stable machine-readable code, when users are expected to match on it. */
  readonly code?: string;

  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.code) this.code = options.code;
  }
}

/** The input (a request, a file, an argument) is malformed or not acceptable. Maps to 400. */
export class InputError extends SereneError {}

/** The thing asked for does not exist. Maps to 404. */
export class NotFoundError extends SereneError {}

/** The request conflicts with the current state (already added, locked in a session). */
export class ConflictError extends SereneError {}

/** A build was to be cancelled, but the package has none queued or running. Maps to 409. */
export class NotRunningError extends ConflictError {}

/** No credentials were given. Maps to 401. */
export class AuthenticationError extends SereneError {}

/** Credentials were given but are not allowed. Maps to 403. */
export class NotAllowedError extends SereneError {}

/** A feature is switched off on this server (webhooks without a secret). Maps to 503. */
export class UnavailableError extends SereneError {}

/** An operation took longer than it was allowed to. */
export class TimeoutError extends SereneError {}

/** A plugin failed; `pluginId` names it. */
export class PluginError extends SereneError {
  readonly pluginId: string;

  constructor(pluginId: string, message: string, options?: { cause?: unknown; code?: string }) {
    super(`plugin '${pluginId}': ${message}`, options);
    this.pluginId = pluginId;
  }
}

/** A file claimed to be a pacman package is not one (no .PKGINFO, corrupt archive, bad fields). */
export class InvalidPackageError extends InputError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_INVALID_PACKAGE' });
  }
}

/**
 * A package's `.SRCINFO` lists none of the architectures the server builds for (and the package has
 * no `ignorearch` flag): docs/engines.md#architectures.
 */
export class UnsupportedArchitectureError extends InputError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_UNSUPPORTED_ARCH' });
  }
}

/** A file claimed to be a pacman repository database is not one. */
export class InvalidDatabaseError extends InputError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_INVALID_DATABASE' });
  }
}

/** Another process holds the repository database lock file. */
export class LockedError extends ConflictError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_LOCKED' });
  }
}

/**
 * A write found no room: the filesystem is full (`ENOSPC`) or the user's quota is used up (`EDQUOT`).
 * Whatever was being written was not put in place; the previous state is kept. Maps to 507.
 */
export class DiskFullError extends SereneError {
  /** the file that could not be written */
  readonly path: string;

  constructor(path: string, options?: { cause?: unknown }) {
    super(`no space left on the disk to write '${path}' (the disk is full)`, {
      ...options,
      code: 'SERENE_ERR_DISK_FULL',
    });
    this.path = path;
  }
}

/**
 * A build's output broke a limit (a `.SRCINFO` or stats file too large, too many files, too many
 * bytes): a build is untrusted input, its PKGBUILD decides what it leaves. The build ends `fatal`
 * with this message; nothing of it is published.
 */
export class BuildOutputError extends SereneError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_BUILD_OUTPUT' });
  }
}

/** Formats an error with its causes as `outer: inner: ...`, as the original's 500 bodies do. */
export function formatErrorChain(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  const seen = new Set<unknown>();
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current);
    parts.push(current instanceof Error ? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ');
}

/**
 * The innermost message of an error's cause chain: what a failed `fetch` says beyond `fetch failed`
 * (`connect ECONNREFUSED 127.0.0.1:1`, `getaddrinfo ENOTFOUND host`).
 */
export function innermostMessage(error: unknown): string {
  let message = error instanceof Error ? error.message : String(error);
  let current: unknown = error;
  const seen = new Set<unknown>();
  while (current instanceof Error && current.cause !== undefined && !seen.has(current)) {
    seen.add(current);
    current = current.cause;
    if (!(current instanceof Error)) message = String(current);
    else if (current.message) message = current.message;
  }
  return message;
}

/**
 * An approval or rejection names a revision that is no longer the held one: the package moved on (or
 * was approved, rejected or built) since the reviewer looked. Maps to 409.
 */
export class StaleRevisionError extends ConflictError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_STALE_REVISION' });
  }
}

/** A package or an account of it is on the server's block list (`GATE_BLOCKED_*`). Maps to 403. */
export class BlockedError extends SereneError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'SERENE_ERR_BLOCKED' });
  }
}
