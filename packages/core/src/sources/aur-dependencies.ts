/**
 * Which AUR packages adding a package brings along (docs/compatibility.md#endpoints, adding): the dependencies
 * (`Depends`, `MakeDepends`, `CheckDepends`) that nothing else satisfies, found in the AUR by name or by
 * `Provides`, transitively, as aur-depends resolves them with its default flags.
 */
import type { SourceOperationOptions } from '../contracts/source.js';
import { NotFoundError } from '../errors.js';
import { type Dependency, type Provider, parseDependency, satisfies } from '../pacman/depend.js';
import type { AurClient, AurPackage } from './aur-client.js';

/** Options of {@link resolveAurDependencies}. */
export interface AurDependencyOptions extends SourceOperationOptions {
  /**
   * Whether a dependency is satisfied without the AUR: by the sync databases (core, extra, multilib)
   * or by the packages of our own repository. Called at most once per dependency string.
   */
  isSatisfied(dependency: string, parsed: Dependency): boolean | Promise<boolean>;
  /**
   * Look for AUR packages that provide a dependency no AUR package is named after (RPC `search` by
   * provides), as aur-depends does for missing dependencies.
   * @default true
   */
  searchProviders?: boolean;
}

/** What a package brings along from the AUR. */
export interface AurDependencyResolution {
  /** AUR pkgbases to add: an AUR target's own first, then the dependencies' in the order found */
  bases: string[];
  /** the AUR packages chosen (an AUR target first), by which the bases were found */
  packages: AurPackage[];
  /** dependency strings that nothing satisfies, as written (`foo>=2`) */
  missing: string[];
}

/**
 * Resolves the AUR packages to add with the AUR package `target` (a pkgname); an unknown target is a
 * {@link NotFoundError}. The target's own name is never reported missing (split bases are not
 * pkgnames), as the original drops it.
 *
 * @remarks The walk goes breadth first, one batched `info` request per level. A dependency is settled
 * by, in this order: an AUR package already chosen (by name or `Provides`, version constraints
 * included), `isSatisfied`, the AUR package of that name, an AUR provider (one of an already chosen base
 * first, then the most voted, then by name).
 */
export async function resolveAurDependencies(
  aur: AurClient,
  target: string,
  options: AurDependencyOptions,
): Promise<AurDependencyResolution & { target: AurPackage }> {
  const [found] = await aur.info([target], { signal: options.signal });
  if (!found || found.Name !== target) throw new NotFoundError(`aur package '${target}' does not exist`);
  const result = await walk(aur, [found], [], options);
  return { ...result, missing: result.missing.filter((dep) => dep !== target), target: found };
}

/**
 * Resolves the AUR packages that a package from elsewhere (a git or raw source) needs: `dependencies`
 * are its `depends`, `makedepends` and `checkdepends` from its `.SRCINFO`.
 */
export function resolveAurDependenciesOf(
  aur: AurClient,
  dependencies: readonly string[],
  options: AurDependencyOptions,
): Promise<AurDependencyResolution> {
  return walk(aur, [], dependencies, options);
}

// --- Internal helpers ---

async function walk(
  aur: AurClient,
  roots: AurPackage[],
  rootDependencies: readonly string[],
  options: AurDependencyOptions,
): Promise<AurDependencyResolution> {
  const { signal } = options;
  const searchProviders = options.searchProviders ?? true;
  const chosen = new Map<string, AurPackage>();
  const bases: string[] = [];
  const missing = new Set<string>();
  const seen = new Set<string>();
  let level: AurPackage[] = [];
  let pending: string[] = [...rootDependencies];

  const choose = (pkg: AurPackage): void => {
    if (chosen.has(pkg.Name)) return;
    chosen.set(pkg.Name, pkg);
    if (!bases.includes(pkg.PackageBase)) bases.push(pkg.PackageBase);
    level.push(pkg);
  };
  const byChosen = (dep: Dependency): boolean =>
    [...chosen.values()].some((pkg) => satisfies(dep, provider(pkg)));

  for (const root of roots) choose(root);
  while (level.length > 0 || pending.length > 0) {
    const wanted = [...pending, ...level.flatMap(dependenciesOf)];
    level = [];
    pending = [];

    // 1. what the level needs that neither chosen packages nor the repositories satisfy
    const open: Array<{ raw: string; dep: Dependency }> = [];
    for (const raw of wanted) {
      if (seen.has(raw)) continue;
      seen.add(raw);
      let dep: Dependency;
      try {
        dep = parseDependency(raw);
      } catch {
        missing.add(raw);
        continue;
      }
      if (byChosen(dep)) continue;
      if (await options.isSatisfied(raw, dep)) continue;
      open.push({ raw, dep });
    }
    if (open.length === 0) break;

    // 2. AUR packages named after them, in one batched request
    const named = new Map(
      (await aur.info([...new Set(open.map((o) => o.dep.name))], { signal })).map((pkg) => [pkg.Name, pkg]),
    );
    const unnamed: typeof open = [];
    for (const item of open) {
      if (byChosen(item.dep)) continue;
      const pkg = named.get(item.dep.name);
      if (pkg && satisfies(item.dep, provider(pkg))) choose(pkg);
      else unnamed.push(item);
    }
    if (unnamed.length === 0) continue;

    // 3. providers of the rest: search by provides, then one request for the candidates' details
    if (!searchProviders) {
      for (const item of unnamed) missing.add(item.raw);
      continue;
    }
    const names = [...new Set(unnamed.map((item) => item.dep.name))];
    const searched = await Promise.all(names.map((name) => aur.searchProviders(name, { signal })));
    const candidates = new Map(
      (await aur.info([...new Set(searched.flat().map((pkg) => pkg.Name))], { signal })).map((pkg) => [
        pkg.Name,
        pkg,
      ]),
    );
    for (const item of unnamed) {
      if (byChosen(item.dep)) continue;
      const best = [...candidates.values()]
        .filter((pkg) => satisfies(item.dep, provider(pkg)))
        .sort(
          (a, b) =>
            Number(bases.includes(b.PackageBase)) - Number(bases.includes(a.PackageBase)) ||
            (b.NumVotes ?? 0) - (a.NumVotes ?? 0) ||
            (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0),
        )[0];
      if (best) choose(best);
      else missing.add(item.raw);
    }
  }

  return { bases, packages: [...chosen.values()], missing: [...missing] };
}

function dependenciesOf(pkg: AurPackage): string[] {
  return [...(pkg.Depends ?? []), ...(pkg.MakeDepends ?? []), ...(pkg.CheckDepends ?? [])];
}

function provider(pkg: AurPackage): Provider {
  return { name: pkg.Name, version: pkg.Version, provides: pkg.Provides ?? [] };
}
