#!/usr/bin/env node
// Writes docs/api.md from the OpenAPI document the server serves at GET /openapi.json
// (packages/plugin-repo-http/src/openapi.ts). Run after `npm run build`:
//   node scripts/gen-api-doc.mjs
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { openApiDocument } from '@serene/plugin-repo-http';

/** The Markdown of the API reference. */
export function renderApiDoc() {
  const doc = openApiDocument('v0.4.3', 'x86_64');
  const lines = [
    '# HTTP API',
    '',
    'The wire protocol of the original serene-aur server (JSON shapes, status codes, SSE framing,',
    'secrets), served by `@serene/plugin-repo-http`. The running server describes itself at',
    '`GET /openapi.json` (OpenAPI 3.1); this page is generated from the same document',
    '(`node scripts/gen-api-doc.mjs`).',
    '',
    'Authentication: the `Authorization` header carries the CLI secret; its SHA-256 (standard Base64) must be a',
    'line of `authorized_secrets`. *read* routes need it unless `ALLOW_READS=true`; *write* routes always do.',
    "Errors are plain text bodies with the status code (the original's), e.g. `404 package not found`.",
    '',
    '| method | path | summary |',
    '| --- | --- | --- |',
  ];
  for (const [route, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (typeof operation !== 'object' || operation === null || !('responses' in operation)) continue;
      const summary = String(operation.summary ?? operation.description ?? '')
        .replace(/\|/g, '\\|')
        .replace(/\n/g, ' ');
      lines.push(`| ${method.toUpperCase()} | \`${route}\` | ${summary} |`);
    }
  }
  lines.push(
    '| GET | `/metrics` | Prometheus metrics, added by the host (`METRICS`; see configuration.md) |',
    '',
    '## Schemas',
    '',
  );
  for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
    lines.push(`### ${name}`, '', '```json', JSON.stringify(schema, null, 2), '```', '');
  }
  return `${lines.join('\n')}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = path.resolve(import.meta.dirname, '..', 'docs', 'api.md');
  writeFileSync(target, renderApiDoc());
  process.stdout.write(`wrote ${target}\n`);
}
