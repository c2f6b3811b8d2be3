import { createPause } from '../concurrency.js';
import {
  findSatisfier,
  type Provider,
  parseDependency,
  satisfies,
  splitDependency,
} from '../pacman/depend.js';
import { dependsFor, type Srcinfo, srcinfoVersion } from '../pacman/srcinfo.js';

/**
 * A package of a build session, as its `.SRCINFO` tells the resolver: what it provides and what it
 * depends on, for each architecture it is resolved for. Only this is kept while a session of
 * thousands resolves, not every parsed `.SRCINFO` (docs/benchmarks.md, issue 16).
 */
export interface SessionPackage {
  base: string;
  /** one per member, as {@link providersOf} */
  providers: readonly Provider[];
  /** depends, makedepends and checkdepends of every member, by architecture */
  depends: Readonly<Record<string, readonly string[]>>;
}

/** What the resolver needs of a package's `.SRCINFO`, for the architectures `arches`. */
export function sessionPackageOf(base: string, srcinfo: Srcinfo, arches: readonly string[]): SessionPackage {
  const depends: Record<string, string[]> = {};
  for (const arch of arches) {
    depends[arch] = [...new Set(srcinfo.packages.flatMap((member) => dependsFor(member, arch)))];
  }
  return { base, providers: providersOf(srcinfo), depends };
}

/** What the resolver decided for one package. */
export type Resolution =
  | { base: string; cancelled: false; dependsOn: Set<string> }
  | { base: string; cancelled: true; message: string };

/** What dependencies are checked against. */
export interface ResolveContext {
  /** the build architecture (`ARCH`) */
  arch: string;
  /** packages of the configured sync databases (core, extra, multilib) */
  sync: readonly Provider[];
  /** packages published in our own repository by packages outside the session */
  repository: readonly Provider[];
  /** bases of every added package (to tell "added but never built" from "missing") */
  added: ReadonlySet<string>;
}

/** The providers a `.SRCINFO` declares: one per member, with its own version and provides. */
export function providersOf(srcinfo: Srcinfo): Provider[] {
  const version = srcinfoVersion(srcinfo);
  return srcinfo.packages.map((member) => ({
    name: member.pkgname,
    version,
    provides: member.provides,
  }));
}

/**
 * Orders a session by dependencies, as the original's resolve step: every depends, makedepends and
 * checkdepends of a package must be satisfied (vercmp-aware, provides included) by another package
 * of the session, by our own repository, or by a sync database. A package with unsatisfied
 * dependencies, or one that needs a cancelled package, or one in a dependency cycle, is cancelled
 * with the original's messages; the others get the set of session bases they wait for. Yields to
 * the event loop every few hundred packages.
 */
export async function resolveSession(
  packages: readonly SessionPackage[],
  context: ResolveContext,
): Promise<Resolution[]> {
  // every provider by the names it answers to: a session of thousands looks each dependency up
  // among its few candidates, not among every package of the session and the sync databases
  const inSessionByName = byName(
    packages.flatMap((pkg) => pkg.providers.map((provider) => ({ ...provider, base: pkg.base }))),
  );
  const repositoryByName = byName(context.repository);
  const syncByName = byName(context.sync);
  const results = new Map<string, Resolution>();

  const pause = createPause();
  for (const pkg of packages) {
    // a session of thousands takes a while: requests are answered in between
    await pause();
    const own = pkg.providers;
    const wanted = pkg.depends[context.arch] ?? [];
    const dependsOn = new Set<string>();
    const missing: string[] = [];
    for (const text of wanted) {
      const dep = parseDependency(text);
      // members of a split package may depend on each other
      if (findSatisfier(dep, own)) continue;
      // the first package of the session (in its order) with a member that satisfies it
      const inSession = inSessionByName
        .get(dep.name)
        ?.find((other) => other.base !== pkg.base && satisfies(dep, other));
      if (inSession) {
        dependsOn.add(inSession.base);
        continue;
      }
      if (
        findSatisfier(dep, repositoryByName.get(dep.name) ?? []) ||
        findSatisfier(dep, syncByName.get(dep.name) ?? [])
      )
        continue;
      missing.push(dep.name);
    }
    if (missing.length > 0) {
      const neverBuilt = missing.find((name) => context.added.has(name));
      results.set(pkg.base, {
        base: pkg.base,
        cancelled: true,
        message: neverBuilt
          ? `dependency ${neverBuilt} is added but has never built successfully`
          : `missing dependencies: ${missing.join(', ')}`,
      });
    } else {
      results.set(pkg.base, { base: pkg.base, cancelled: false, dependsOn });
    }
  }

  propagateCancellation(results);

  for (const cycle of findCycles(results)) {
    const message = `dependencies form a cycle: ${[...cycle, cycle[0]].join(' -> ')}`;
    for (const base of cycle) results.set(base, { base, cancelled: true, message });
  }
  propagateCancellation(results);

  return packages.map((pkg) => results.get(pkg.base)!);
}

/**
 * Providers under each name that can satisfy a dependency on it (their own and their `provides`'),
 * in the given order: only those are candidates for a dependency of that name.
 */
function byName<T extends Provider>(providers: Iterable<T>): Map<string, T[]> {
  const index = new Map<string, T[]>();
  for (const provider of providers) {
    const names = new Set([provider.name, ...provider.provides.map((entry) => splitDependency(entry).name)]);
    for (const name of names) {
      const list = index.get(name);
      if (list) list.push(provider);
      else index.set(name, [provider]);
    }
  }
  return index;
}

/** A package that needs a cancelled one is cancelled too, until nothing changes. */
function propagateCancellation(results: Map<string, Resolution>): void {
  for (let changed = true; changed; ) {
    changed = false;
    for (const result of results.values()) {
      if (result.cancelled || result.dependsOn.size === 0) continue;
      let gone: string[] | undefined;
      for (const base of result.dependsOn) if (results.get(base)?.cancelled) (gone ??= []).push(base);
      if (gone) {
        results.set(result.base, {
          base: result.base,
          cancelled: true,
          message: `dependencies are added but have been cancelled: ${gone.join(', ')}`,
        });
        changed = true;
      }
    }
  }
}

/**
 * Strongly connected components of more than one package (or a package needing itself). Only
 * packages that need another and are needed by another can be on a cycle: the others (in a large
 * session most of them: the ones nothing waits for, and those that wait for nothing) are left out
 * of the search before it starts.
 */
function findCycles(results: Map<string, Resolution>): string[][] {
  const needed = new Set<string>();
  for (const result of results.values()) {
    if (result.cancelled) continue;
    for (const base of result.dependsOn) if (!results.get(base)?.cancelled) needed.add(base);
  }
  const graph = new Map<string, string[]>();
  for (const result of results.values()) {
    if (result.cancelled || !needed.has(result.base)) continue;
    const edges: string[] = [];
    for (const base of result.dependsOn)
      if (needed.has(base) && !results.get(base)?.cancelled) edges.push(base);
    if (edges.length > 0) graph.set(result.base, edges);
  }
  // Tarjan's algorithm
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || graph.get(node)?.includes(node)) cycles.push(component.reverse());
    }
  };
  // in the order of the whole graph, as if the packages left out were searched too (a cycle is
  // then named from the same package): a package left out with dependencies leads to them
  for (const result of results.values()) {
    if (result.cancelled) continue;
    if (graph.has(result.base)) {
      if (!index.has(result.base)) visit(result.base);
      continue;
    }
    for (const base of result.dependsOn) {
      if (graph.has(base) && !index.has(base) && !results.get(base)?.cancelled) visit(base);
    }
  }
  return cycles;
}
