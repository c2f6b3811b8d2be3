#!/usr/bin/env node
// Bundles the dashboard's single-page app (app/) into dist/public/: index.html, app.js and app.css,
// every dependency inside (no CDN, works offline). `npm run build` (and so `npm start` and
// `npm test`) runs it after `tsc -b`, which has type-checked app/ (app/tsconfig.json).
//
//   node packages/plugin-dashboard/scripts/bundle.mjs [--out <dir>] [--dev]
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Bundles the app into `outDir` (default dist/public); resolves with the files written and their sizes. */
export async function bundleDashboard({ outDir = path.join(ROOT, 'dist', 'public'), minify = true } = {}) {
  const esbuild = await import('esbuild');
  await fs.mkdir(outDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: path.join(ROOT, 'app', 'main.tsx') },
    bundle: true,
    outdir: outDir,
    format: 'esm',
    target: ['es2022', 'chrome111', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify,
    sourcemap: false,
    legalComments: 'none',
    metafile: true,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': minify ? '"production"' : '"development"' },
  });
  await fs.copyFile(path.join(ROOT, 'app', 'index.html'), path.join(outDir, 'index.html'));
  await fs.copyFile(path.join(ROOT, 'app', 'icon.svg'), path.join(outDir, 'icon.svg'));
  const files = {};
  for (const name of await fs.readdir(outDir)) files[name] = (await fs.stat(path.join(outDir, name))).size;
  return { outDir, files, warnings: result.warnings };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const out = args.includes('--out') ? path.resolve(args[args.indexOf('--out') + 1]) : undefined;
  const { outDir, files } = await bundleDashboard({ outDir: out, minify: !args.includes('--dev') });
  const summary = Object.entries(files)
    .map(([name, size]) => `${name} ${(size / 1024).toFixed(1)} KiB`)
    .join(', ');
  console.log(`dashboard bundled into ${path.relative(process.cwd(), outDir) || '.'}: ${summary}`);
}
