/**
 * Dependency strings as pacman reads them (`alpm_dep_from_string`) and matches them against packages
 * (`_alpm_depcmp`), from lib/libalpm/deps.c.
 */
import { InputError } from '../errors.js';
import { vercmp } from './vercmp.js';

/** A version constraint operator of a dependency string. */
export type DependencyOperator = '<' | '<=' | '=' | '>=' | '>';

/** A parsed dependency: `name[op version][: description]`. */
export interface Dependency {
  name: string;
  op?: DependencyOperator;
  version?: string;
  /** the text after `: ` in an optdepend */
  description?: string;
}

/** What can satisfy a dependency: a package's name, full version and `provides` entries. */
export interface Provider {
  name: string;
  /** full version `[epoch:]pkgver-pkgrel` */
  version: string;
  provides: readonly string[];
}

/** The operator starting at `index` (`<` or `>`, possibly followed by `=`). */
function angleOperator(s: string, index: number): { op: DependencyOperator; length: number } {
  const angle = s[index] === '<' ? '<' : '>';
  return s[index + 1] === '=' ? { op: angle === '<' ? '<=' : '>=', length: 2 } : { op: angle, length: 1 };
}

/** Splits a dependency string exactly as libalpm does, accepting anything (even an empty name). */
export function splitDependency(s: string): Dependency {
  // ": " (with the space) so an epoch's colon is not taken for a description
  const descAt = s.indexOf(': ');
  const head = descAt === -1 ? s : s.slice(0, descAt);
  const description = descAt === -1 ? undefined : s.slice(descAt + 2);
  // '<' is looked for first, then '>', then '=': libalpm's order, so `a=1<2` is `a=1` < `2`
  const lt = head.indexOf('<');
  const gt = head.indexOf('>');
  const at = lt !== -1 ? lt : gt !== -1 ? gt : head.indexOf('=');
  const dep: Dependency = { name: at === -1 ? head : head.slice(0, at) };
  if (at !== -1) {
    const { op, length } = head[at] === '=' ? { op: '=' as const, length: 1 } : angleOperator(head, at);
    dep.op = op;
    dep.version = head.slice(at + length);
  }
  if (description !== undefined) dep.description = description;
  return dep;
}

/**
 * Parses `name`, `name>=1:2.0-3`, `name=1.0` or the optdepend form `name: description`; throws
 * {@link InputError} on an empty name or an operator without a version.
 */
export function parseDependency(s: string): Dependency {
  const dep = splitDependency(s);
  if (dep.name === '') throw new InputError(`dependency '${s}' has no package name`);
  if (dep.op !== undefined && dep.version === '') {
    throw new InputError(`dependency '${s}' has '${dep.op}' but no version`);
  }
  return dep;
}

/** Formats a dependency back to its string, as `alpm_dep_compute_string` does. */
export function formatDependency(dep: Dependency): string {
  const constraint = dep.op !== undefined && dep.version !== undefined ? `${dep.op}${dep.version}` : '';
  const description = dep.description !== undefined ? `: ${dep.description}` : '';
  return `${dep.name}${constraint}${description}`;
}

/** Whether `version` meets the dependency's constraint (always, without an operator). */
export function versionSatisfies(dep: Dependency, version: string): boolean {
  if (dep.op === undefined) return true;
  const cmp = vercmp(version, dep.version ?? '');
  switch (dep.op) {
    case '<':
      return cmp < 0;
    case '<=':
      return cmp <= 0;
    case '=':
      return cmp === 0;
    case '>=':
      return cmp >= 0;
    case '>':
      return cmp > 0;
  }
}

/** Whether one `provides` entry satisfies the dependency (`_alpm_depcmp_provides` for one entry). */
function provisionSatisfies(dep: Dependency, provision: Dependency): boolean {
  if (provision.name !== dep.name) return false;
  // any provision of the name satisfies an unversioned dependency
  if (dep.op === undefined) return true;
  // only `name=version` provisions carry a version to compare; `foo` or `foo>=1` never satisfy `foo>=1`
  return provision.op === '=' && versionSatisfies(dep, provision.version ?? '');
}

/**
 * Whether a package satisfies a dependency, as libalpm's `_alpm_depcmp`: by its own name and version,
 * or by one of its `provides` (unversioned provides satisfy only unversioned dependencies).
 */
export function satisfies(dep: Dependency, pkg: Provider): boolean {
  if (pkg.name === dep.name && versionSatisfies(dep, pkg.version)) return true;
  return pkg.provides.some((provision) => provisionSatisfies(dep, splitDependency(provision)));
}

/** The first provider, in the given order, that satisfies the dependency (`alpm_find_satisfier`). */
export function findSatisfier<T extends Provider>(dep: Dependency, providers: Iterable<T>): T | undefined {
  for (const provider of providers) {
    if (satisfies(dep, provider)) return provider;
  }
  return undefined;
}
