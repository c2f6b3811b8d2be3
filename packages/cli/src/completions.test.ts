// biome-ignore-all lint/suspicious/noTemplateCurlyInString: shell script text, where ${...} is the shell's
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { hasProgram, run } from '@serene/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The scripts `serene completions` prints, loaded into real shells: bash completes through
// `complete -p`/`_serene` as it does on Tab, fish through `complete -C` (its own completion engine),
// zsh through its bashcompinit.
const ROOT = path.resolve(import.meta.dirname, '../../..');
const MAIN = path.join(ROOT, 'packages/cli/dist/main.js');

let dir: string;
let env: NodeJS.ProcessEnv;
const scripts: Record<string, string> = {};

beforeAll(async () => {
  const build = await run('npx', ['tsc', '-b', 'packages/cli'], { cwd: ROOT });
  expect(build.code, build.stdout + build.stderr).toBe(0);
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-cli-completions-'));
  // the package names `serene list` leaves for the completions
  await fs.mkdir(path.join(dir, 'cache'));
  await fs.writeFile(path.join(dir, 'cache/serene-package-completions.txt'), 'alpha beta gamma-git');
  await fs.mkdir(path.join(dir, 'work'));
  await fs.writeFile(path.join(dir, 'work/foo-1.0-1-x86_64.pkg.tar.zst'), '');
  env = { ...process.env, XDG_CACHE_HOME: path.join(dir, 'cache'), HOME: dir, LC_ALL: 'C' };
  for (const shell of ['bash', 'zsh', 'fish']) {
    const output = await run(process.execPath, [MAIN, 'completions', shell], { env });
    expect(output.code, output.stderr).toBe(0);
    scripts[shell] = path.join(dir, `serene.${shell}`);
    await fs.writeFile(scripts[shell]!, output.stdout);
  }
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('serene completions', () => {
  it('refuses an unknown shell with exit 2', async () => {
    const output = await run(process.execPath, [MAIN, 'completions', 'tcsh'], { env });
    expect(output.code).toBe(2);
    expect(output.stderr).toMatch(/unknown shell 'tcsh'; known are bash, zsh, fish/);
  });

  describe('bash', () => {
    /** What bash offers for `line` with the cursor at its end (the last word may be empty). */
    async function complete(line: string): Promise<string[]> {
      const words = line.split(' ');
      const script = [
        `source ${scripts.bash}`,
        // the function `complete -p` names is the one Tab runs
        'fn=$(complete -p serene | sed -E "s/.* -F ([^ ]+) .*/\\1/")',
        `COMP_WORDS=(${words.map((word) => `'${word}'`).join(' ')})`,
        `COMP_CWORD=${words.length - 1}`,
        'COMP_LINE="${COMP_WORDS[*]}"',
        '"$fn"',
        'printf "%s\\n" "${COMPREPLY[@]}"',
      ].join('\n');
      const output = await run('bash', ['-c', script], { env, cwd: path.join(dir, 'work') });
      expect(output.code, output.stderr).toBe(0);
      return output.stdout.split('\n').filter(Boolean).sort();
    }

    it('registers itself for serene', async () => {
      const output = await run('bash', ['-c', `source ${scripts.bash} && complete -p serene`], { env });
      expect(output.stdout.trim()).toBe('complete -F _serene serene');
    });

    it('completes commands, subcommands, options, package names and files', async () => {
      expect(await complete('serene re')).toEqual(['reject', 'remove', 'repo', 'review']);
      expect(await complete('serene ')).toEqual(
        expect.arrayContaining(['add', 'build', 'completions', 'host', 'info', 'list', 'repo', 'server']),
      );
      expect(await complete('serene repo ')).toEqual(['add', 'remove', 'sign']);
      expect(await complete('serene repo add --s')).toEqual(['--sign']);
      expect(await complete('serene repo add --in')).toEqual(['--include-sigs']);
      expect(await complete('serene repo add -k KEY foo')).toEqual(['foo-1.0-1-x86_64.pkg.tar.zst']);
      expect(await complete('serene host ')).toEqual(['secret', 'signatures']);
      expect(await complete('serene server ')).toEqual(['engines', 'info', 'key', 'webhook']);
      expect(await complete('serene build ')).toEqual(['alpha', 'beta', 'gamma-git']);
      expect(await complete('serene build alpha g')).toEqual(['gamma-git']);
      expect(await complete('serene info a')).toEqual(['alpha']);
      expect(await complete('serene info alpha ')).toEqual(['build', 'logs', 'pkgbuild', 'set']);
      expect(await complete('serene info alpha logs --')).toEqual(['--help', '--linger', '--subscribe']);
      expect(await complete('serene info alpha set s')).toEqual(['schedule', 'srcinfo-override']);
      expect(await complete('serene info alpha set clean ')).toEqual(['false', 'true']);
      // the global --server takes a value: the command after it still completes
      expect(await complete('serene --server http://127.0.0.1:1 li')).toEqual(['list']);
      // add -s is --skipbuild (no value): the argument after it is the package
      expect(await complete('serene add -s --')).toContain('--skipbuild');
      expect(await complete('serene completions ')).toEqual(['bash', 'fish', 'zsh']);
      expect(await complete('serene approve a')).toEqual(['alpha']);
      expect(await complete('serene info alpha set c')).toEqual(['clean', 'cooloff']);
    });
  });

  // reason: zsh and fish are not part of every machine (Debian's zsh and fish packages)
  describe.skipIf(!hasProgram('zsh') && process.env.CI !== 'true')('zsh', () => {
    it('parses, and completes through bashcompinit', async () => {
      expect((await run('zsh', ['-n', scripts.zsh!], { env })).code).toBe(0);
      const script = [
        'autoload -U +X compinit && compinit -u',
        `source ${scripts.zsh}`,
        // what bashcompinit's wrapper sets up before it calls the function
        'f() { emulate -L sh; setopt kshglob noshglob braceexpand; COMP_WORDS=(serene repo ""); COMP_CWORD=2; _serene; print -l "${COMPREPLY[@]}"; }',
        'f',
      ].join('\n');
      const output = await run('zsh', ['-f', '-c', script], { env });
      expect(output.code, output.stderr).toBe(0);
      expect(output.stdout.split('\n').filter(Boolean).sort()).toEqual(['add', 'remove', 'sign']);
    });
  });

  describe.skipIf(!hasProgram('fish') && process.env.CI !== 'true')('fish', () => {
    async function complete(line: string): Promise<string[]> {
      const output = await run(
        'fish',
        ['--no-config', '-c', `source ${scripts.fish}; complete -C'${line}'`],
        {
          env,
          cwd: path.join(dir, 'work'),
        },
      );
      expect(output.code, output.stderr).toBe(0);
      expect(output.stderr).toBe('');
      return output.stdout
        .split('\n')
        .filter(Boolean)
        .map((row) => row.split('\t')[0]!)
        .sort();
    }

    it('parses, and completes with fish itself', async () => {
      expect((await run('fish', ['--no-execute', scripts.fish!], { env })).code).toBe(0);
      expect(await complete('serene re')).toEqual(['reject', 'remove', 'repo', 'review']);
      expect(await complete('serene repo ')).toEqual(['add', 'remove', 'sign']);
      expect(await complete('serene server e')).toEqual(['engines']);
      // `add` under repo is not the top-level add: no --skipbuild there
      expect(await complete('serene repo add --s')).toEqual(['--sign']);
      expect(await complete('serene info ')).toEqual(['alpha', 'beta', 'gamma-git']);
      expect(await complete('serene info alpha ')).toEqual(['build', 'logs', 'pkgbuild', 'set']);
      expect(await complete('serene --server http://127.0.0.1:1 bu')).toEqual(['build']);
      expect(await complete('serene repo add x.db foo')).toEqual(['foo-1.0-1-x86_64.pkg.tar.zst']);
    });
  });
});
