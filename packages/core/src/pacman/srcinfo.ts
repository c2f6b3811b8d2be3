/**
 * A parser for `.SRCINFO` files as `makepkg --printsrcinfo` writes them: a `pkgbase = x` section with
 * the global keys, then one `pkgname = y` section per package holding what its `package_y()` overrides.
 */
import { InputError } from '../errors.js';

/** Keys that hold one value; a later line replaces an earlier one. */
export const SRCINFO_SINGLE_KEYS = [
  'pkgver',
  'pkgrel',
  'epoch',
  'pkgdesc',
  'url',
  'install',
  'changelog',
] as const;

/** The checksum arrays, one per algorithm makepkg knows. */
export const SRCINFO_CHECKSUM_KEYS = [
  'md5sums',
  'sha1sums',
  'sha224sums',
  'sha256sums',
  'sha384sums',
  'sha512sums',
  'b2sums',
  'cksums',
] as const;

/** Keys that may also appear with an architecture suffix (`depends_x86_64`), as makepkg allows. */
export const SRCINFO_ARCH_KEYS = [
  'source',
  'depends',
  'makedepends',
  'checkdepends',
  'optdepends',
  'provides',
  'conflicts',
  'replaces',
  ...SRCINFO_CHECKSUM_KEYS,
] as const;

/** Keys whose lines accumulate into a list. */
export const SRCINFO_MULTI_KEYS = [
  'arch',
  'groups',
  'license',
  'noextract',
  'options',
  'backup',
  'validpgpkeys',
  ...SRCINFO_ARCH_KEYS,
] as const;

/** A single-valued `.SRCINFO` key. */
export type SrcinfoSingleKey = (typeof SRCINFO_SINGLE_KEYS)[number];
/** A multi-valued `.SRCINFO` key. */
export type SrcinfoMultiKey = (typeof SRCINFO_MULTI_KEYS)[number];
/** A multi-valued key that may carry an architecture suffix. */
export type SrcinfoArchKey = (typeof SRCINFO_ARCH_KEYS)[number];
/** The dependency lists {@link dependsFor} can collect. */
export type SrcinfoDependKind = 'depends' | 'makedepends' | 'checkdepends';

/** Every key as written (architecture suffix included), each with its non-empty values in file order. */
export type SrcinfoRawFields = Record<string, string[]>;

/** The fields of a section, typed; multi-valued keys are always present (empty when absent). */
export interface SrcinfoFields extends Record<SrcinfoMultiKey, string[]> {
  pkgver: string;
  pkgrel: string;
  epoch?: string;
  pkgdesc?: string;
  url?: string;
  install?: string;
  changelog?: string;
  /** values of suffixed keys by architecture: `archSpecific.x86_64.depends` holds `depends_x86_64` */
  archSpecific: Record<string, Partial<Record<SrcinfoArchKey, string[]>>>;
  /**
   * All keys, including ones this parser does not know; a key with an empty list was cleared
   * (`depends = `).
   */
  fields: SrcinfoRawFields;
}

/** The `pkgbase` section: the global keys of the PKGBUILD. */
export interface SrcinfoBase extends SrcinfoFields {
  pkgbase: string;
}

/** One package of a `.SRCINFO`: the base's fields with its own section's overrides applied. */
export interface SrcinfoPackage extends SrcinfoFields {
  pkgname: string;
  pkgbase: string;
  /** keys its own section set, in order of first appearance */
  overrides: string[];
}

/** A parsed `.SRCINFO`. */
export interface Srcinfo {
  base: SrcinfoBase;
  packages: SrcinfoPackage[];
}

interface Section {
  kind: 'pkgbase' | 'pkgname';
  name: string;
  line: number;
  fields: SrcinfoRawFields;
}

const KEY_PATTERN = /^[A-Za-z0-9_]+$/;

/** An object without a prototype, so keys from the file such as `__proto__` stay plain keys. */
function emptyRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function lineError(line: number, message: string): InputError {
  return new InputError(`.SRCINFO line ${line}: ${message}`);
}

/** Splits `key = value` (the first `=` ends the key; values may hold `=`), or throws. */
function splitLine(text: string, line: number): { key: string; value: string } {
  const eq = text.indexOf('=');
  if (eq === -1) throw lineError(line, `expected 'key = value', got '${text.trim()}'`);
  const key = text.slice(0, eq).trim();
  if (!KEY_PATTERN.test(key)) throw lineError(line, `invalid key '${key}'`);
  return { key, value: text.slice(eq + 1).trim() };
}

/** Reads the lines into sections, checking the structure: `pkgbase` first and once, unique `pkgname`s. */
function readSections(text: string): Section[] {
  const sections: Section[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const { key, value } = splitLine(raw, line);
    const current = sections.at(-1);
    if (key === 'pkgbase') {
      if (current) throw lineError(line, `a second pkgbase line (the first is on line ${sections[0]?.line})`);
      if (value === '') throw lineError(line, 'pkgbase has no value');
      sections.push({ kind: 'pkgbase', name: value, line, fields: emptyRecord() });
    } else if (!current) {
      throw lineError(line, `'${key}' before the pkgbase line`);
    } else if (key === 'pkgname') {
      if (value === '') throw lineError(line, 'pkgname has no value');
      if (sections.some((s) => s.kind === 'pkgname' && s.name === value)) {
        throw lineError(line, `package '${value}' appears twice`);
      }
      sections.push({ kind: 'pkgname', name: value, line, fields: emptyRecord() });
    } else {
      const values = current.fields[key] ?? [];
      current.fields[key] = values;
      // an empty value adds nothing: in a pkgname section it clears the base's list
      if (value !== '') values.push(value);
    }
  });
  return sections;
}

/** Each key that may have an architecture suffix, with the prefix of its suffixed form. */
const ARCH_KEY_PREFIXES = SRCINFO_ARCH_KEYS.map((key) => [key, `${key}_`] as const);

/** The key and architecture of a suffixed key (`depends_x86_64`), if it is one. */
function splitArchKey(key: string): { key: SrcinfoArchKey; arch: string } | undefined {
  if (!key.includes('_')) return undefined;
  for (const [archKey, prefix] of ARCH_KEY_PREFIXES) {
    if (key.length > prefix.length && key.startsWith(prefix)) {
      return { key: archKey, arch: key.slice(prefix.length) };
    }
  }
  return undefined;
}

function archSpecificOf(fields: SrcinfoRawFields): SrcinfoFields['archSpecific'] {
  const result: SrcinfoFields['archSpecific'] = emptyRecord();
  // `for in` over these prototype-less records: no array of entries per call
  for (const key in fields) {
    const values = fields[key]!;
    const split = splitArchKey(key);
    if (!split) continue;
    const forArch = result[split.arch] ?? emptyRecord();
    forArch[split.key] = [...values];
    result[split.arch] = forArch;
  }
  return result;
}

function copyFields(fields: SrcinfoRawFields): SrcinfoRawFields {
  const copy: SrcinfoRawFields = emptyRecord();
  for (const key in fields) copy[key] = [...fields[key]!];
  return copy;
}

/** The last value of a single-valued key; a cleared or absent key has none. */
function single(fields: SrcinfoRawFields, key: SrcinfoSingleKey): string | undefined {
  return fields[key]?.at(-1);
}

/** The optional single-valued keys, copied over only when set. */
const OPTIONAL_SINGLE_KEYS = ['epoch', 'pkgdesc', 'url', 'install', 'changelog'] as const;

/**
 * Types a section's raw fields; `pkgver` and `pkgrel` must be there. `owned`: `fields` was made for
 * this call (a package's merged fields) and becomes its `fields` as it is, not copied again.
 *
 * @remarks Built key by key, not with `Object.fromEntries` and a spread: a server parses a
 * `.SRCINFO` several times per build, and the intermediate arrays were most of what the parse
 * allocated (docs/benchmarks.md, issue 16).
 */
function typedFields(fields: SrcinfoRawFields, where: string, line: number, owned = false): SrcinfoFields {
  const pkgver = single(fields, 'pkgver');
  const pkgrel = single(fields, 'pkgrel');
  if (pkgver === undefined) throw lineError(line, `${where} has no pkgver`);
  if (pkgrel === undefined) throw lineError(line, `${where} has no pkgrel`);
  const typed = { pkgver, pkgrel } as SrcinfoFields;
  for (const key of SRCINFO_MULTI_KEYS) {
    const values = fields[key];
    typed[key] = values ? [...values] : [];
  }
  typed.archSpecific = archSpecificOf(fields);
  typed.fields = owned ? fields : copyFields(fields);
  for (const key of OPTIONAL_SINGLE_KEYS) {
    const value = single(fields, key);
    if (value !== undefined) typed[key] = value;
  }
  return typed;
}

/** The base's fields with a package section's keys replacing them, key by key (makepkg's override). */
function mergeFields(base: SrcinfoRawFields, own: SrcinfoRawFields): SrcinfoRawFields {
  const merged = copyFields(base);
  for (const key in own) merged[key] = [...own[key]!];
  return merged;
}

/**
 * Parses a `.SRCINFO`; throws {@link InputError} naming the line when there is no `pkgbase` line first,
 * a line is not `key = value`, a package repeats, or `pkgver`/`pkgrel` are missing.
 */
export function parseSrcinfo(text: string): Srcinfo {
  const sections = readSections(text);
  const [head, ...rest] = sections;
  if (!head) throw new InputError('.SRCINFO has no pkgbase line');
  if (rest.length === 0) throw lineError(head.line, `pkgbase '${head.name}' has no pkgname section`);
  const base: SrcinfoBase = { pkgbase: head.name, ...typedFields(head.fields, 'pkgbase', head.line) };
  const packages = rest.map(
    (section): SrcinfoPackage => ({
      pkgname: section.name,
      pkgbase: head.name,
      ...typedFields(
        mergeFields(head.fields, section.fields),
        `package '${section.name}'`,
        section.line,
        true,
      ),
      overrides: Object.keys(section.fields),
    }),
  );
  return { base, packages };
}

/**
 * Checks that a `.SRCINFO` parses, throwing as {@link parseSrcinfo} does, without building what it
 * returns: for the checks of a text that is kept as text (a source's stored or generated `.SRCINFO`).
 */
export function checkSrcinfo(text: string): void {
  const [head, ...rest] = readSections(text);
  if (!head) throw new InputError('.SRCINFO has no pkgbase line');
  if (rest.length === 0) throw lineError(head.line, `pkgbase '${head.name}' has no pkgname section`);
  for (const key of ['pkgver', 'pkgrel'] as const) {
    if (single(head.fields, key) === undefined) throw lineError(head.line, `pkgbase has no ${key}`);
  }
  for (const section of rest) {
    for (const key of ['pkgver', 'pkgrel'] as const) {
      // a package's own line replaces the base's, as in mergeFields
      if ((section.fields[key] ?? head.fields[key])?.at(-1) === undefined) {
        throw lineError(section.line, `package '${section.name}' has no ${key}`);
      }
    }
  }
}

/**
 * The names and version of a `.SRCINFO` without typing every field (a list of thousands of packages
 * shows only these): the base's `pkgver` (as {@link parseSrcinfo} gives it) and the `pkgname`s in
 * order. Throws as {@link parseSrcinfo} does for a broken structure or a missing `pkgver`.
 */
export function srcinfoNames(text: string): { pkgbase: string; pkgver: string; pkgnames: string[] } {
  const [head, ...rest] = readSections(text);
  if (!head) throw new InputError('.SRCINFO has no pkgbase line');
  if (rest.length === 0) throw lineError(head.line, `pkgbase '${head.name}' has no pkgname section`);
  const pkgver = single(head.fields, 'pkgver');
  if (pkgver === undefined) throw lineError(head.line, 'pkgbase has no pkgver');
  return { pkgbase: head.name, pkgver, pkgnames: rest.map((section) => section.name) };
}

/** The full version `[epoch:]pkgver-pkgrel` of a `.SRCINFO` (or one package); epoch 0 is left out as makepkg does. */
export function srcinfoVersion(s: Srcinfo | Pick<SrcinfoFields, 'pkgver' | 'pkgrel' | 'epoch'>): string {
  const fields = 'base' in s ? s.base : s;
  const epoch = fields.epoch !== undefined && !/^0*$/.test(fields.epoch) ? `${fields.epoch}:` : '';
  return `${epoch}${fields.pkgver}-${fields.pkgrel}`;
}

/** The architecture a package is built as on `arch`: `arch` if its `arch` list names it, else `any`. */
export function memberArch(pkg: Pick<SrcinfoFields, 'arch'>, arch: string): string {
  return pkg.arch.includes(arch) ? arch : 'any';
}

/** A multi-valued key's values followed by those of its `_<arch>` variant, as makepkg merges them. */
export function archValues(
  fields: Pick<SrcinfoFields, SrcinfoArchKey | 'archSpecific'>,
  key: SrcinfoArchKey,
  arch: string,
): string[] {
  return [...fields[key], ...(fields.archSpecific[arch]?.[key] ?? [])];
}

/**
 * The dependencies of the given kinds (all three by default) for a build on `arch`, each kind followed
 * by its `_<arch>` variant; pass the build machine's CARCH, since makepkg adds `depends_$CARCH` even
 * to `arch=any` members.
 */
export function dependsFor(
  pkg: Pick<SrcinfoFields, SrcinfoArchKey | 'archSpecific'>,
  arch: string,
  kinds: readonly SrcinfoDependKind[] = ['depends', 'makedepends', 'checkdepends'],
): string[] {
  return kinds.flatMap((kind) => archValues(pkg, kind, arch));
}
