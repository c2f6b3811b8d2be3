import { InvalidPackageError } from '../errors.js';
import { packageNameProblem } from './names.js';
import type { PkgInfo } from './types.js';

/*
 * `.PKGINFO` as repo-add reads it (`db_write_entry` in /usr/bin/repo-add):
 *
 *   while read -r line; do
 *     [[ ${line:0:1} = '#' ]] && continue
 *     IFS=' =' read -r var val < <(printf '%s\n' "$line")
 *     declare "$var=${val//+([[:space:]])/ }"
 *     case $var in group) _groups+=("$group") ;; ... esac
 *   done < <(bsdtar -xOqf "$pkgfile" .PKGINFO)
 *
 * Reproduced here step by step, including bash's quirks, so that database entries match repo-add's
 * byte for byte: the last line is dropped when it has no newline (`read` fails on it), NUL bytes are
 * dropped, the outer `read` trims spaces and tabs, the inner one splits at the first space or `=` run
 * (POSIX field splitting) and strips a trailing lone delimiter, and whitespace runs become one space.
 */

/** Keys whose values accumulate; everything else is single-valued (the last line wins). */
const LIST_KEYS = {
  group: 'group',
  license: 'license',
  replaces: 'replaces',
  depend: 'depend',
  conflict: 'conflict',
  provides: 'provides',
  optdepend: 'optdepend',
  makedepend: 'makedepend',
  checkdepend: 'checkdepend',
  backup: 'backup',
} as const satisfies Record<string, keyof PkgInfo>;

/**
 * repo-add's own array variables: `declare "_depends=x"` (a `.PKGINFO` key named like one of them)
 * assigns element 0 of that array, which then shows in the database. Reproduced for fidelity.
 */
const REPO_ADD_ARRAYS = {
  _groups: 'group',
  _licenses: 'license',
  _replaces: 'replaces',
  _depends: 'depend',
  _conflicts: 'conflict',
  _provides: 'provides',
  _optdepends: 'optdepend',
  _makedepends: 'makedepend',
  _checkdepends: 'checkdepend',
} as const satisfies Record<string, keyof PkgInfo>;

const SINGLE_KEYS = new Set([
  'pkgname',
  'pkgbase',
  'pkgver',
  'pkgdesc',
  'url',
  'builddate',
  'packager',
  'size',
  'arch',
] as const);

type SingleKey = typeof SINGLE_KEYS extends Set<infer K> ? K : never;
type ListKey = (typeof LIST_KEYS)[keyof typeof LIST_KEYS];

/**
 * `[[:space:]]` of glibc in a UTF-8 locale (which is what repo-add runs in on Arch): ASCII
 * whitespace plus the Unicode spaces glibc classifies as such (not the no-break ones).
 */
const SPACE_RUN = /[\t\n\v\f\r \u1680\u2000-\u2006\u2008-\u200a\u2028\u2029\u205f\u3000]+/g;

/** `IFS=' =' read -r var val` on one line: returns `[var, val]` as bash assigns them. */
export function splitPkginfoLine(line: string): [string, string] {
  let i = 0;
  while (line[i] === ' ') i++; // leading IFS whitespace
  const [word, rest] = nextField(line, i);
  if (rest >= line.length) return [word, ''];
  // The last variable gets the rest of the line, unless the rest is exactly one field followed by
  // delimiters, in which case it gets that field alone (bash >= 4.x read builtin).
  const [single, after] = nextField(line, rest);
  if (after >= line.length) return [word, single];
  let end = line.length;
  while (end > rest && line[end - 1] === ' ') end--; // trailing IFS whitespace
  return [word, line.slice(rest, end)];
}

/**
 * bash's `get_word_from_string` with IFS `' ='`: the field starting at `start` (up to the next space
 * or `=`), and where the next field starts after the delimiter (its spaces, and one `=` when the
 * delimiter began with a space).
 */
function nextField(s: string, start: number): [string, number] {
  let end = start;
  while (end < s.length && s[end] !== ' ' && s[end] !== '=') end++;
  const word = s.slice(start, end);
  let i = end;
  if (i >= s.length) return [word, i];
  const whitesep = s[i] === ' ';
  i++;
  while (s[i] === ' ') i++;
  if (whitesep && s[i] === '=') {
    i++;
    while (s[i] === ' ') i++;
  }
  return [word, i];
}

/** The bytes `while read -r line` gives each loop iteration, trimmed as the default IFS trims. */
function readLines(text: string): string[] {
  const clean = text.includes('\0') ? text.replaceAll('\0', '') : text;
  const parts = clean.split('\n');
  parts.pop(); // text after the last newline: `read` returns non-zero and the loop body never runs
  return parts.map((line) => line.replace(/^[ \t]+|[ \t]+$/g, ''));
}

function emptyPkginfo(): PkgInfo {
  return {
    pkgname: '',
    pkgbase: undefined,
    pkgver: '',
    pkgdesc: undefined,
    url: undefined,
    builddate: undefined,
    packager: undefined,
    size: undefined,
    arch: undefined,
    license: [],
    group: [],
    replaces: [],
    depend: [],
    conflict: [],
    provides: [],
    optdepend: [],
    makedepend: [],
    checkdepend: [],
    backup: [],
  };
}

/**
 * The fields of a `.PKGINFO` exactly as repo-add reads them, without validation. Single-valued
 * fields that are missing or empty are `undefined` (`pkgname`/`pkgver`: `''`); repo-add writes
 * neither.
 */
export function readPkginfoFields(text: string): PkgInfo {
  const info = emptyPkginfo();
  const single = new Map<SingleKey, string>();
  for (const line of readLines(text)) {
    if (line.startsWith('#')) continue;
    const [key, raw] = splitPkginfoLine(line);
    const value = raw.replace(SPACE_RUN, ' ');
    if (SINGLE_KEYS.has(key as SingleKey)) {
      single.set(key as SingleKey, value);
    } else if (Object.hasOwn(LIST_KEYS, key)) {
      info[LIST_KEYS[key as keyof typeof LIST_KEYS] as ListKey].push(value);
    } else if (Object.hasOwn(REPO_ADD_ARRAYS, key)) {
      const list = info[REPO_ADD_ARRAYS[key as keyof typeof REPO_ADD_ARRAYS] as ListKey];
      if (list.length === 0) list.push(value);
      else list[0] = value;
    }
  }
  info.pkgname = single.get('pkgname') ?? '';
  info.pkgver = single.get('pkgver') ?? '';
  const optional = (key: SingleKey) => {
    const value = single.get(key);
    return value === undefined || value === '' ? undefined : value;
  };
  info.pkgbase = optional('pkgbase');
  info.pkgdesc = optional('pkgdesc');
  info.url = optional('url');
  info.builddate = optional('builddate');
  info.packager = optional('packager');
  info.size = optional('size');
  info.arch = optional('arch');
  return info;
}

const PKGVER = /^(?:[0-9]+:)?[^\s/:\-\p{C}]+-[^\s/:\-\p{C}]+$/u;

/**
 * Whether a pkgname is safe as (part of) a file or database entry name: pacman's characters
 * `[a-z0-9@._+-]` (upper case accepted, as pacman does in practice), not starting with `-` or `.`,
 * and no `..`.
 */
export function isValidPkgname(name: string): boolean {
  return packageNameProblem(name) === undefined && !name.includes('..');
}

/**
 * Whether a full version `[epoch:]pkgver-pkgrel` is well formed: a numeric epoch if any, then a
 * pkgver and a pkgrel without `:`, `-`, `/`, whitespace or control characters.
 */
export function isValidPkgver(version: string): boolean {
  return PKGVER.test(version);
}

/**
 * Parses a `.PKGINFO` as repo-add does and checks that the name and version are usable.
 *
 * @throws InvalidPackageError when pkgname or pkgver is missing or not well formed
 */
export function parsePkginfo(text: string): PkgInfo {
  const info = readPkginfoFields(text);
  if (info.pkgname === '') throw new InvalidPackageError('.PKGINFO has no pkgname');
  if (info.pkgver === '') throw new InvalidPackageError('.PKGINFO has no pkgver');
  if (!isValidPkgname(info.pkgname)) {
    throw new InvalidPackageError(`.PKGINFO has an invalid pkgname ${JSON.stringify(info.pkgname)}`);
  }
  if (!isValidPkgver(info.pkgver)) {
    throw new InvalidPackageError(
      `.PKGINFO has an invalid pkgver ${JSON.stringify(info.pkgver)} (expected [epoch:]pkgver-pkgrel)`,
    );
  }
  return info;
}
