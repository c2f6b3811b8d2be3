// Whether a program is installed: on the PATH. The one check of the set-up scripts and the
// benchmarks (plain JavaScript, run before the build); the tests ask `hasProgram` of
// @serene/core/testing.
import { existsSync } from 'node:fs';
import * as path from 'node:path';

/** Whether `program` is in one of the folders of `searchPath` (the PATH by default). */
export function hasProgram(program, searchPath = process.env.PATH ?? '/usr/bin:/bin') {
  return searchPath.split(path.delimiter).some((dir) => dir !== '' && existsSync(path.join(dir, program)));
}
