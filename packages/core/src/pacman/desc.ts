import type { PackageFile } from './types.js';

/** A desc file as an ordered map of `%FIELD%` to its lines. */
export type DescFields = Map<string, string[]>;

/**
 * Formats one field as repo-add's `format_entry` does: written only when the first value is not
 * empty, then every value on its own line, then an empty line.
 */
function field(name: string, values: readonly (string | undefined)[]): string {
  const first = values[0];
  if (first === undefined || first === '') return '';
  return `%${name}%\n${values.join('\n')}\n\n`;
}

/**
 * The `desc` entry repo-add writes for a package, byte for byte.
 *
 * @param pgpsig base64 of the package's detached signature, when one lies beside it
 */
export function formatDesc(pkg: PackageFile, pgpsig?: string): string {
  const info = pkg.pkginfo;
  return [
    field('FILENAME', [pkg.filename]),
    field('NAME', [info.pkgname]),
    field('BASE', [info.pkgbase]),
    field('VERSION', [info.pkgver]),
    field('DESC', [info.pkgdesc]),
    field('GROUPS', info.group),
    field('CSIZE', [String(pkg.csize)]),
    field('ISIZE', [info.size]),
    field('MD5SUM', [pkg.md5]),
    field('SHA256SUM', [pkg.sha256]),
    field('PGPSIG', [pgpsig]),
    field('URL', [info.url]),
    field('LICENSE', info.license),
    field('ARCH', [info.arch]),
    field('BUILDDATE', [info.builddate]),
    field('PACKAGER', [info.packager]),
    field('REPLACES', info.replaces),
    field('CONFLICTS', info.conflict),
    field('PROVIDES', info.provides),
    field('DEPENDS', info.depend),
    field('OPTDEPENDS', info.optdepend),
    field('MAKEDEPENDS', info.makedepend),
    field('CHECKDEPENDS', info.checkdepend),
  ].join('');
}

/** The `files` entry of the files database: `%FILES%` and one path per line. */
export function formatFiles(files: readonly string[]): string {
  return `%FILES%\n${files.map((file) => `${file}\n`).join('')}`;
}

/** Parses a desc (or files) entry into its fields; lines before the first `%FIELD%` are ignored. */
export function parseDesc(text: string): DescFields {
  const fields: DescFields = new Map();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const match = /^%([A-Z0-9]+)%$/.exec(line);
    if (match) {
      current = [];
      fields.set(match[1]!, current);
    } else if (line === '') {
      current = undefined;
    } else if (current) {
      current.push(line);
    }
  }
  return fields;
}
