// Code comments cite what is in the repository: every `docs/compatibility.md#anchor` names a
// section of that page, and no comment cites the outside reference it was written from.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The source files of the repository (no builds, no dependencies). */
async function sources(): Promise<string[]> {
  const found: string[] = [];
  for (const top of ['packages', 'test', 'examples', 'bench', 'scripts']) {
    for (const entry of await fs.readdir(path.join(ROOT, top), { recursive: true })) {
      if (/(^|\/)(node_modules|dist)(\/|$)/.test(entry)) continue;
      if (/\.(ts|mjs|js|sh)$/.test(entry)) found.push(path.join(top, entry));
    }
  }
  return found;
}

/** GitHub's anchor of a markdown heading. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, '')
    .replace(/ /g, '-');

describe('citations in code comments', () => {
  it('name sections of docs/compatibility.md, and nothing outside the repository', async () => {
    const doc = await fs.readFile(path.join(ROOT, 'docs/compatibility.md'), 'utf8');
    const anchors = new Set([...doc.matchAll(/^#{2,3} (.+)$/gm)].map((m) => slug(m[1]!)));
    const missing: string[] = [];
    const outside: string[] = [];
    for (const file of await sources()) {
      if (file === 'test/docs/citations.test.ts') continue;
      const text = await fs.readFile(path.join(ROOT, file), 'utf8');
      for (const match of text.matchAll(/compatibility\.md#([a-z0-9-]+)/g)) {
        if (!anchors.has(match[1]!)) missing.push(`${file}: #${match[1]}`);
      }
      // the outside reference by section number, or the original's source files
      for (const match of text.matchAll(/\breference (section )?\d+(\.\d+)?|\bserver\/src\/[\w/.]+\.rs/g)) {
        outside.push(`${file}: ${match[0]}`);
      }
    }
    expect(missing).toEqual([]);
    expect(outside).toEqual([]);
    expect(anchors.size).toBeGreaterThan(15);
  });
});
