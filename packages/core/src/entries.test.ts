// What each entry of @serene/core loads: the contracts entry and the main entry load no store
// driver (knex, sqlite3, pg) until a knex store opens, so a contract author installs and loads
// nothing native.
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../..');

/** The CommonJS packages loaded by a node process that runs `script` (an ES module), by name. */
async function loadedPackages(script: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--conditions=@serene/source', '--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: ROOT },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as string[];
}

const REPORT = `
import { createRequire } from 'node:module';
const cache = createRequire(import.meta.url).cache;
const names = new Set(Object.keys(cache).map((file) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(file)?.[1]).filter(Boolean));
console.log(JSON.stringify([...names].sort()));`;

describe('the entries of @serene/core', () => {
  it('@serene/core/contracts and @serene/core load no store driver; a knex store loads them when it opens', async () => {
    const heavy = ['knex', 'pg', 'sqlite3', 'reflect-metadata', 'tsyringe'];
    const contracts = await loadedPackages(`import '@serene/core/contracts';${REPORT}`);
    expect(contracts.filter((name) => heavy.includes(name))).toEqual([]);
    const main = await loadedPackages(
      `import { createKnexStore } from '@serene/core'; createKnexStore({ filename: ':memory:' });${REPORT}`,
    );
    expect(main.filter((name) => heavy.includes(name))).toEqual([]);
    const opened = await loadedPackages(
      `import { createKnexStore } from '@serene/core'; const store = createKnexStore({ filename: ':memory:' }); await store.open(); await store.close();${REPORT}`,
    );
    expect(opened).toEqual(expect.arrayContaining(['knex', 'sqlite3']));
  });
});
