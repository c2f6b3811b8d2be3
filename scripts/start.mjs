#!/usr/bin/env node
// `npm start`: runs the server (packages/host/dist/main.js), compiling first only when a source of the
// server's workspaces is newer than that workspace's last build. `npm install` builds everything once
// (the root `prepare` script); this check keeps a changed or pulled source from running stale code.
//
// Why not `tsc -b packages/host` at every start: its own up-to-date check loads the compiler and
// takes 1 to 5 s on a busy machine; comparing file times here takes a few milliseconds. A rebuild is
// still tsc's (`tsc -b packages/host`), so what is compiled and how is decided in one place.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(import.meta.dirname, '..');
/** The server's workspaces: packages/host and the ones its tsconfig references. */
const WORKSPACES = ['core', 'plugin-signing', 'plugin-docker', 'plugin-repo-http', 'host'];

/** The newest modification time of the files that compile into `dir`'s dist/ (tests excluded). */
function newestSource(dir) {
  let newest = 0;
  const walk = (folder) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.isFile() && !entry.name.endsWith('.test.ts'))
        newest = Math.max(newest, statSync(file).mtimeMs);
    }
  };
  walk(path.join(dir, 'src'));
  for (const file of ['package.json', 'tsconfig.json', '../../tsconfig.base.json']) {
    newest = Math.max(newest, statSync(path.join(dir, file)).mtimeMs);
  }
  return newest;
}

function builtAt(dir) {
  try {
    return statSync(path.join(dir, 'dist', '.tsbuildinfo')).mtimeMs;
  } catch {
    return 0;
  }
}

const stale = WORKSPACES.filter((ws) => {
  const dir = path.join(REPO, 'packages', ws);
  return newestSource(dir) > builtAt(dir);
});
if (stale.length > 0) {
  process.stderr.write(`serene: compiling (changed since the last build: ${stale.join(', ')})\n`);
  const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  const build = spawnSync(process.execPath, [tsc, '-b', path.join(REPO, 'packages', 'host')], {
    stdio: 'inherit',
  });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
await import(new URL('../packages/host/dist/main.js', import.meta.url).href);
