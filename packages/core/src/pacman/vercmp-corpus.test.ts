// The generated corpus against pacman's own vercmp program: 10,000 forks of /usr/bin/vercmp, so
// it runs with `npm test`, not in the fast set (vitest.fast.config.ts). The hand-written table is
// in vercmp.test.ts.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../testing/random.js';
import { vercmp } from './vercmp.js';

const VERCMP = '/usr/bin/vercmp';

type Random = () => number;

function pick<T>(rand: Random, items: readonly T[]): T {
  const item = items[Math.floor(rand() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

const LETTERS = ['a', 'b', 'z', 'A', 'Z', 'alpha', 'beta', 'rc', 'pre', 'git', 'r', 'p'];
const SEPARATORS = ['.', '.', '.', '_', '+', '~', '..', '._', '-', ':', 'é', ''];

function numberSegment(rand: Random): string {
  const zeros = rand() < 0.2 ? '0'.repeat(1 + Math.floor(rand() * 2)) : '';
  const roll = rand();
  const n =
    roll < 0.6 ? Math.floor(rand() * 10) : roll < 0.9 ? Math.floor(rand() * 120) : Math.floor(rand() * 1e9);
  return zeros + String(n);
}

function segment(rand: Random): string {
  return rand() < 0.7 ? numberSegment(rand) : pick(rand, LETTERS);
}

/** A bare version: segments and separators, sometimes starting or ending with a separator. */
function bareVersion(rand: Random): string {
  const count = 1 + Math.floor(rand() * 5);
  let s = rand() < 0.05 ? pick(rand, SEPARATORS) : '';
  for (let i = 0; i < count; i++) {
    if (i > 0) s += pick(rand, SEPARATORS);
    s += segment(rand);
  }
  if (rand() < 0.05) s += pick(rand, SEPARATORS);
  return s;
}

function fullVersion(rand: Random): string {
  const epoch = rand() < 0.2 ? `${pick(rand, ['', '0', '1', '2', '01', '10'])}:` : '';
  const release = rand() < 0.5 ? `-${rand() < 0.8 ? numberSegment(rand) : bareVersion(rand)}` : '';
  return epoch + bareVersion(rand) + release;
}

/** Changes one thing in a version, so pairs share long prefixes and the later rules get exercised. */
function mutate(rand: Random, s: string): string {
  const roll = rand();
  if (roll < 0.1) return s;
  if (roll < 0.25) return s + pick(rand, SEPARATORS) + segment(rand);
  if (roll < 0.35) return s + pick(rand, LETTERS);
  if (roll < 0.45) return `${pick(rand, ['0', '1', '2', ''])}:${s}`;
  if (roll < 0.55) return `${s}-${numberSegment(rand)}`;
  if (roll < 0.65) return s.replace(/[._+~]/, pick(rand, SEPARATORS));
  if (roll < 0.75) return s.replace(/\d+/, (m) => (rand() < 0.5 ? `0${m}` : numberSegment(rand)));
  if (roll < 0.85) return s.slice(0, Math.max(0, s.length - 1 - Math.floor(rand() * 3)));
  return s.replace(/[a-zA-Z]+/, () => pick(rand, LETTERS));
}

/** `size` distinct pairs, a few of them a version compared with itself. */
function corpus(size: number, seed: number): Array<[string, string]> {
  const rand = seededRandom(seed);
  const pairs = new Map<string, [string, string]>();
  while (pairs.size < size) {
    const a = fullVersion(rand);
    const b = rand() < 0.7 ? mutate(rand, a) : fullVersion(rand);
    const pair: [string, string] = rand() < 0.5 ? [a, b] : [b, a];
    // vercmp reads these first arguments as options
    if (pair[0] === '-h' || pair[0] === '--help') continue;
    pairs.set(`${pair[0]}\0${pair[1]}`, pair);
  }
  return [...pairs.values()];
}

/**
 * Runs `vercmp a b` for each pair with `xargs -0 -n 2`: one fork per pair but no shell, and NUL-separated
 * arguments keep empty strings and whitespace intact.
 */
function runVercmp(pairs: ReadonlyArray<readonly [string, string]>): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('xargs', ['-0', '-n', '2', VERCMP], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`xargs vercmp exited with ${code}`));
      const results = out.split('\n').filter((line) => line !== '');
      if (results.length !== pairs.length) {
        return reject(new Error(`expected ${pairs.length} results, got ${results.length}`));
      }
      resolve(results.map(Number));
    });
    child.stdin.end(pairs.map(([a, b]) => `${a}\0${b}\0`).join(''));
  });
}

/** Splits the pairs over a few `xargs` processes running at once; results come back in order. */
async function runVercmpParallel(pairs: ReadonlyArray<readonly [string, string]>): Promise<number[]> {
  const workers = Math.max(1, Math.min(4, availableParallelism()));
  const size = Math.ceil(pairs.length / workers);
  const chunks: Array<ReadonlyArray<readonly [string, string]>> = [];
  for (let i = 0; i < pairs.length; i += size) chunks.push(pairs.slice(i, i + size));
  const results = await Promise.all(chunks.map(runVercmp));
  return results.flat();
}

// The corpus is checked against pacman's own vercmp program; without it there is nothing to compare to.
describe.skipIf(!existsSync(VERCMP))('vercmp (generated corpus against /usr/bin/vercmp)', () => {
  it('agrees with /usr/bin/vercmp on 10,000 distinct generated pairs', { timeout: 600_000 }, async () => {
    const pairs = corpus(10_000, 0x5e7e7e);
    expect(pairs.filter(([a, b]) => a === b).length).toBeGreaterThan(100);
    const expected = await runVercmpParallel(pairs);
    const disagreements: string[] = [];
    pairs.forEach(([a, b], i) => {
      const ours = vercmp(a, b);
      if (ours !== expected[i]) {
        disagreements.push(
          `vercmp ${JSON.stringify(a)} ${JSON.stringify(b)}: ours ${ours}, pacman ${expected[i]}`,
        );
      }
    });
    expect(disagreements.slice(0, 20), `${disagreements.length} disagreements`).toEqual([]);
    // the corpus exercises every outcome
    expect(new Set(expected)).toEqual(new Set([-1, 0, 1]));
  });
});
