/**
 * `bases.json`: the repository's record of what each package base published, as the original keeps
 * it beside its database (and serves it with the repository):
 * `{"<pkgbase>": [{"name": "<pkgname>", "file": "<file name>"}, …], …}`.
 *
 * @remarks A publish of a base replaces its whole record, so members a new version no longer has
 * can be found and removed; removing a base uses it too.
 */
import * as fs from 'node:fs/promises';
import { writeFileDurable } from '../durable.js';

/** One published member of a base. */
export interface BaseMember {
  name: string;
  file: string;
}

/** The whole record: pkgbase → its published members, in the order they were published. */
export type BasesRecord = Record<string, BaseMember[]>;

/** The record's file name in the repository folder. */
export const BASES_FILE = 'bases.json';

/**
 * Reads a record; undefined when the file does not exist. Throws a `SyntaxError`/`TypeError` naming
 * the problem when it is not a record.
 */
export async function readBases(file: string): Promise<BasesRecord | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const json: unknown = JSON.parse(text);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TypeError(`${file} is not a JSON object`);
  }
  const record: BasesRecord = {};
  for (const [base, members] of Object.entries(json)) {
    if (
      !Array.isArray(members) ||
      !members.every(
        (member) =>
          typeof member === 'object' &&
          member !== null &&
          typeof (member as BaseMember).name === 'string' &&
          typeof (member as BaseMember).file === 'string',
      )
    ) {
      throw new TypeError(`${file}: the entry of '${base}' is not a list of {name, file}`);
    }
    record[base] = members.map((member: BaseMember) => ({ name: member.name, file: member.file }));
  }
  return record;
}

/** Writes a record whole and durably (beside it, flushed, renamed into place). */
export async function writeBases(file: string, record: BasesRecord): Promise<void> {
  await writeFileDurable(file, JSON.stringify(record));
}
