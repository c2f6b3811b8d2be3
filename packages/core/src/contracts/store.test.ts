// packagePages over a stand-in for `listPackages` that records what it is asked: the conformance
// suite (testing/store-suite.ts) checks the pages of real stores; this checks the queries the helper
// makes and that it stops on a store that does not move on.
import { describe, expect, it } from 'vitest';
import { samplePackage } from '../testing/store-suite.js';
import { type PackagePage, type PackageRecord, packagePages } from './store.js';

const BASES = ['a', 'b', 'c', 'd', 'e'];

/** A `listPackages` over {@link BASES}, pages as the contract says unless `ignoreAfter`. */
function listing(ignoreAfter = false) {
  const asked: PackagePage[] = [];
  const listPackages = async (page?: PackagePage): Promise<PackageRecord[]> => {
    asked.push(page!);
    const after = ignoreAfter ? undefined : page!.after;
    return BASES.filter((base) => after === undefined || base > after)
      .slice(0, page!.limit)
      .map((base) => samplePackage(base));
  };
  return { asked, store: { listPackages } };
}

async function collect(pages: AsyncIterable<PackageRecord[]>): Promise<string[][]> {
  const all: string[][] = [];
  for await (const page of pages) all.push(page.map((record) => record.base));
  return all;
}

describe('packagePages', () => {
  it('asks for each page after the last base of the one before, and stops at a short page', async () => {
    const { asked, store } = listing();
    expect(await collect(packagePages(store, 2))).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(asked).toEqual([{ limit: 2 }, { after: 'b', limit: 2 }, { after: 'd', limit: 2 }]);
  });

  it('asks once more after a full last page, and gives no empty page', async () => {
    const { asked, store } = listing();
    expect(await collect(packagePages(store, 5))).toEqual([BASES]);
    expect(asked).toEqual([{ limit: 5 }, { after: 'e', limit: 5 }]);
    expect(await collect(packagePages(store))).toEqual([BASES]);
    expect(asked.at(-1)).toEqual({ limit: 500 });
  });

  it('rejects a store that reads the same page again instead of looping for ever', async () => {
    const { store } = listing(true);
    await expect(collect(packagePages(store, 1))).rejects.toThrow("the store read the page after 'a' again");
  });

  it('refuses a page size that is not a positive integer', async () => {
    const { store } = listing();
    for (const size of [0, -1, 1.5, Number.NaN]) {
      await expect(packagePages(store, size).next()).rejects.toThrow(RangeError);
    }
  });
});
