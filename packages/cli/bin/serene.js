#!/usr/bin/env node
// The `serene` command as npm links it (node_modules/.bin/serene) and as `./serene` at the root of a
// clone (a link to this file). It is committed, unlike dist/, so that npm links it on `npm install`;
// it runs the compiled CLI, which `npm install` builds (the root `prepare` script: `tsc -b`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  const root = fileURLToPath(new URL('../../..', import.meta.url));
  process.stderr.write(
    `serene: the CLI is not built yet: run \`npm install\` (or \`npm run build\`) in ${root}\n`,
  );
  process.exit(1);
}
await import(main.href);
