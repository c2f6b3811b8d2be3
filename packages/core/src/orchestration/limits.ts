/**
 * Limits on what serene reads back from a build. A build is untrusted: its PKGBUILD decides what it
 * leaves in its output folder, so whatever is read into memory is bounded, and so are the number of
 * files and the bytes of package files taken in (docs/durability.md). A build over a limit ends
 * `fatal` with a {@link BuildOutputError} naming it.
 */
import { BuildOutputError } from '../errors.js';

/** The limits on a build's output. */
export interface BuildOutputLimits {
  /** bytes of `.SRCINFO` (a large split package's is some tens of KiB) */
  srcinfoBytes: number;
  /** bytes of each stats file (`.stats-before.json`, `.stats-after.json`: a few hundred bytes) */
  statsBytes: number;
  /** entries (files, folders, links) in the output folder */
  entries: number;
  /** bytes of package files, all together */
  packageBytes: number;
}

/** The limits serene applies (a runner may apply the same when it reads its output). */
export const BUILD_OUTPUT_LIMITS: Readonly<BuildOutputLimits> = Object.freeze({
  srcinfoBytes: 4 * 1024 * 1024,
  statsBytes: 64 * 1024,
  entries: 1000,
  packageBytes: 32 * 1024 * 1024 * 1024,
});

/** Formats a byte count for a limit's message (`4 MiB`). */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

/**
 * Checks what a runner reported against the limits (for runners that do not apply them
 * themselves).
 *
 * @throws BuildOutputError naming the limit broken
 */
export function checkBuildOutput(
  result: { srcinfo: string | null; packages: readonly string[] },
  limits: Readonly<BuildOutputLimits> = BUILD_OUTPUT_LIMITS,
): void {
  if (result.srcinfo !== null && Buffer.byteLength(result.srcinfo) > limits.srcinfoBytes) {
    throw new BuildOutputError(
      `the build's .SRCINFO is larger than ${formatBytes(limits.srcinfoBytes)}; nothing was published`,
    );
  }
  if (result.packages.length > limits.entries) {
    throw new BuildOutputError(
      `the build left more than ${limits.entries} files in its output; nothing was published`,
    );
  }
}
