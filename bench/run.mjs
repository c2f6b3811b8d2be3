#!/usr/bin/env node
// Runs every benchmark in this folder (each `*.mjs` but this one), one after the other, passing the
// arguments on: `npm run bench -- --count 1000`. Exits non-zero when one fails.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';

const dir = import.meta.dirname;
const benches = readdirSync(dir)
  .filter((name) => name.endsWith('.mjs') && name !== path.basename(import.meta.filename))
  .sort();
let failed = 0;
for (const bench of benches) {
  console.log(`\n### ${bench}\n`);
  const result = spawnSync(process.execPath, [path.join(dir, bench), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    console.error(`bench ${bench} failed (${result.status ?? result.signal})`);
    failed++;
  }
}
process.exitCode = failed > 0 ? 1 : 0;
