/**
 * `serene review`, `serene review <name>`, `serene approve <name> <revision>` and `serene reject
 * <name> <revision>`: the held updates of the update gate (docs/update-gate.md).
 */
import type { Command } from 'commander';
import { segment } from './api.js';
import { apiAction, type ClientContext } from './client.js';
import { localTime, styleFor, table } from './format.js';
import { type CliIo, EXIT_OK } from './io.js';
import type { HeldUpdateJson, HeldUpdateReview } from './wire.js';

const REVIEW_HELP = `
Updates are held when the server's update gate (cool-off, maintainer trust, diff review, block
lists) does not let them through. Approving builds exactly the revision you reviewed, never a newer
one; rejecting keeps the package at its built state until a newer revision comes.`;

/** The short form of a revision shown in lists and to type. */
const short = (revision: string) => revision.slice(0, 12);

/** `serene review`: the held updates as a table. */
export async function listHeld(context: ClientContext): Promise<number> {
  const { io, api } = context;
  const held = await api.json<HeldUpdateJson[]>('GET', '/review');
  if (held.length === 0) {
    io.stderr('no updates are held\n');
    return EXIT_OK;
  }
  const rows = held.map((item) => [
    item.base,
    item.version,
    short(item.revision),
    [...new Set(item.reasons.map((reason) => reason.kind))].join(', '),
    localTime(item.detected),
  ]);
  io.stdout(table(['name', 'version', 'revision', 'held for', 'since'], rows, styleFor(io)));
  return EXIT_OK;
}

/** `serene review <name>`: the reasons, who is responsible, the changed files and the diff. */
export async function showHeld(context: ClientContext, name: string): Promise<number> {
  const { io, api } = context;
  const review = await api.json<HeldUpdateReview>('GET', `/review/${segment(name)}`);
  const style = styleFor(io);
  const lines: string[] = [
    `${style.bold(review.base)} ${review.version} at ${review.revision}`,
    `  held since ${localTime(review.detected)}, changed upstream ${localTime(review.modified)}`,
    `  compared with ${review.base_revision ?? '(nothing accepted yet)'}`,
    '',
    'held for:',
    ...review.reasons.map((reason) => `  ${reason.kind}: ${reason.message}`),
    '',
    'responsible:',
  ];
  if (review.trust.maintainer !== undefined) {
    lines.push(`  maintainer     ${review.trust.maintainer ?? '(orphaned)'}`);
  }
  if (review.trust.co_maintainers.length > 0) {
    lines.push(`  co-maintainers ${review.trust.co_maintainers.join(', ')}`);
  }
  lines.push(`  packagers      ${review.trust.packagers.join(', ') || '-'}`);
  if (review.files.length > 0) {
    lines.push('', 'changed files:', ...review.files.map((file) => `  ${file.status} ${file.path}`));
  }
  lines.push(
    '',
    `approve: serene approve ${review.base} ${short(review.revision)}`,
    `reject:  serene reject ${review.base} ${short(review.revision)}`,
    '',
  );
  io.stdout(`${lines.join('\n')}\n`);
  if (review.diff !== '') io.stdout(review.diff.endsWith('\n') ? review.diff : `${review.diff}\n`);
  return EXIT_OK;
}

/** `serene approve|reject <name> <revision>`. */
export async function decide(
  context: ClientContext,
  decision: 'approve' | 'reject',
  name: string,
  revision: string,
): Promise<number> {
  const answer = await context.api.json<{ base: string; revision: string }>(
    'POST',
    `/review/${segment(name)}/${decision}`,
    { revision },
  );
  context.io.stdout(
    decision === 'approve'
      ? `approved ${answer.base} at ${answer.revision}; its build has started\n`
      : `rejected ${answer.base} at ${answer.revision}; it stays at its built state until a newer revision\n`,
  );
  return EXIT_OK;
}

/** Registers `review`, `approve` and `reject` on `program`. */
export function registerReviewCommands(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
): void {
  program
    .command('review')
    .description('list the updates the server holds, or show one with its diff')
    .argument('[name]', 'package base: show its held update')
    .addHelpText('after', REVIEW_HELP)
    .action(
      apiAction(io, setExitCode, (context, name: string | undefined) =>
        name === undefined ? listHeld(context) : showHeld(context, name),
      ),
    );
  program
    .command('approve')
    .description('approve a held update and build exactly that revision')
    .argument('<name>', 'package base')
    .argument('<revision>', 'the held revision, as `serene review <name>` shows it')
    .action(
      apiAction(io, setExitCode, (context, name: string, revision: string) =>
        decide(context, 'approve', name, revision),
      ),
    );
  program
    .command('reject')
    .description('reject a held update: nothing is built until a newer revision')
    .argument('<name>', 'package base')
    .argument('<revision>', 'the held revision, as `serene review <name>` shows it')
    .action(
      apiAction(io, setExitCode, (context, name: string, revision: string) =>
        decide(context, 'reject', name, revision),
      ),
    );
}
