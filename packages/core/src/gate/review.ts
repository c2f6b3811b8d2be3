/**
 * The diff review of an update: which parts of a package changed beyond a version bump.
 *
 * A version bump changes `pkgver`, `pkgrel` and the checksum arrays of the PKGBUILD, and the
 * `.SRCINFO` to match (where the new version also appears inside source URLs and file names).
 * Everything else (another file of the repository, a changed function, a new source, a new
 * dependency, an install script) is a change a reviewer has to see.
 */

/** Checksum arrays of a PKGBUILD and keys of a `.SRCINFO`, with their `_<arch>` variants. */
const CHECKSUM = /^(?:md5|sha1|sha224|sha256|sha384|sha512|b2|ck)sums(?:_[A-Za-z0-9_]+)?$/;
/** Fields a version bump may change. */
const VERSION_FIELDS = new Set(['pkgver', 'pkgrel']);
/** The files of a package repository a version bump touches. */
const BUMP_FILES = new Set(['PKGBUILD', '.SRCINFO']);

/** The result of {@link reviewChanges}: empty lists when the update is only a version bump. */
export interface ReviewFindings {
  /** files other than PKGBUILD and `.SRCINFO` that were added, changed or removed (`A evil.install`) */
  files: string[];
  /** PKGBUILD parts that changed beyond the version: `build()`, `source`, `install`, `(top level)` */
  pkgbuild: string[];
  /** `.SRCINFO` keys that changed beyond the version: `depends`, `source`, `install` */
  srcinfo: string[];
}

/** What {@link reviewChanges} compares: the trees of the accepted and the new revision. */
export interface ReviewInput {
  /** paths that differ between the two revisions, with git's status letter */
  changed: readonly { status: string; path: string }[];
  oldPkgbuild: string | null;
  newPkgbuild: string | null;
  oldSrcinfo: string | null;
  newSrcinfo: string | null;
}

/** Compares two revisions of a package; see {@link ReviewFindings}. */
export function reviewChanges(input: ReviewInput): ReviewFindings {
  const files = input.changed
    .filter((file) => !BUMP_FILES.has(file.path) || file.status === 'A' || file.status === 'D')
    .map((file) => `${file.status} ${file.path}`);
  const pkgbuild =
    input.oldPkgbuild === input.newPkgbuild
      ? []
      : changedParts(pkgbuildParts(input.oldPkgbuild ?? ''), pkgbuildParts(input.newPkgbuild ?? ''));
  const srcinfo =
    input.oldSrcinfo === input.newSrcinfo
      ? []
      : changedParts(srcinfoParts(input.oldSrcinfo ?? ''), srcinfoParts(input.newSrcinfo ?? ''));
  return { files, pkgbuild, srcinfo };
}

/** Whether the findings are empty: the update is only a version bump. */
export function isVersionBump(findings: ReviewFindings): boolean {
  return findings.files.length === 0 && findings.pkgbuild.length === 0 && findings.srcinfo.length === 0;
}

// --- PKGBUILD ---

/**
 * The parts of a PKGBUILD by name, without the version and checksum assignments: each function
 * (`build()`), each top-level variable (`source`, `depends`), and `(top level)` for any other line.
 */
export function pkgbuildParts(text: string): Map<string, string> {
  const parts = new Map<string, string[]>();
  // a version written out in full (`source=(https://x/foo-1.2.tar.gz)`) compares as `<pkgver>`
  const version = /^\s*pkgver=["']?([^"'\s#]+)/m.exec(text)?.[1];
  const pattern = versionPattern(version);
  const add = (name: string, line: string) => {
    const value = pattern ? line.replace(pattern, '<pkgver>') : line;
    const list = parts.get(name);
    if (list) list.push(value);
    else parts.set(name, [value]);
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\s+$/, '');
    if (line.trim() === '' || /^\s*#/.test(line)) {
      // blank lines and comments outside functions carry no behaviour (the `# Maintainer:` line
      // changes with the packager, which the trust check looks at)
      continue;
    }
    const fn = /^\s*(?:function\s+)?([A-Za-z_][A-Za-z0-9_-]*)\s*\(\s*\)\s*\{?\s*$/.exec(line);
    if (fn) {
      // a function runs until a line that closes it at the start (`}`)
      const name = `${fn[1]}()`;
      add(name, line);
      while (i + 1 < lines.length) {
        i++;
        const body = lines[i]!.replace(/\s+$/, '');
        add(name, body);
        if (/^\}/.test(body)) break;
      }
      continue;
    }
    const assignment = /^\s*([A-Za-z_][A-Za-z0-9_]*)(\+?)=(.*)$/.exec(line);
    if (assignment) {
      const name = assignment[1]!;
      const value = assignment[3]!;
      const block = [line];
      // an array runs to its closing parenthesis (values of arrays have no unquoted `)`)
      if (value.startsWith('(') && !closesArray(value)) {
        while (i + 1 < lines.length) {
          i++;
          const next = lines[i]!.replace(/\s+$/, '');
          block.push(next);
          if (closesArray(next)) break;
        }
      }
      if (VERSION_FIELDS.has(name) || CHECKSUM.test(name)) continue;
      for (const blockLine of block) add(name, blockLine);
      continue;
    }
    add('(top level)', line);
  }
  return new Map([...parts].map(([name, list]) => [name, list.join('\n')]));
}

/** Whether a line of an array closes it: a `)` outside quotes. */
function closesArray(text: string): boolean {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '\\') i++;
    else if (c === '#') return false;
    else if (c === ')') return true;
  }
  return false;
}

// --- .SRCINFO ---

/**
 * The `.SRCINFO` by key (`depends`, `pkgname`, with the section they are in), without version and
 * checksum keys; the version inside values (`foo-1.2.tar.gz`) is replaced by a placeholder, so a
 * bump's new URLs compare equal.
 */
export function srcinfoParts(text: string): Map<string, string> {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const version = lines
    .map((line) => /^pkgver\s*=\s*(.*)$/.exec(line)?.[1])
    .find((value) => value !== undefined);
  const pattern = versionPattern(version);
  const parts = new Map<string, string[]>();
  let section = '';
  for (const line of lines) {
    const match = /^([^=\s]+)\s*=\s*(.*)$/.exec(line);
    if (!match) {
      push(parts, '(malformed)', line);
      continue;
    }
    const key = match[1]!;
    const value = match[2]!;
    if (key === 'pkgbase' || key === 'pkgname') {
      section = `${key} ${value}`;
      push(parts, key, value);
      continue;
    }
    if (VERSION_FIELDS.has(key) || CHECKSUM.test(key)) continue;
    push(parts, key, `${section}: ${pattern ? value.replace(pattern, '<pkgver>') : value}`);
  }
  return new Map([...parts].map(([key, list]) => [key, list.join('\n')]));
}

function push(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Matches a version inside a value, not inside a longer version (`1.2` in `foo-1.2.tar.gz`, not in `11.2`). */
function versionPattern(version: string | undefined): RegExp | undefined {
  if (version === undefined || version === '') return undefined;
  return new RegExp(`(?<![0-9.])${escapeRegExp(version)}(?![0-9])`, 'g');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The names whose text differs between two part maps, in the order of the new one, then removed ones. */
function changedParts(before: Map<string, string>, after: Map<string, string>): string[] {
  const changed: string[] = [];
  for (const [name, text] of after) if (before.get(name) !== text) changed.push(name);
  for (const name of before.keys()) if (!after.has(name)) changed.push(name);
  return changed;
}
