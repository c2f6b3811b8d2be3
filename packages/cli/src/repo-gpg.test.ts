import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createPacmanSandbox,
  createTestGpgHome,
  hasProgram,
  type RunOutput,
  run,
  type TestGpgHome,
  writeSyntheticPackage,
} from '@serene/core/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

// `serene repo add|remove -s -k -v --include-sigs --nocolor` side by side with repo-add, with the
// user's keyring (GNUPGHOME of a temp folder with a generated key) and real pacman.
const ROOT = path.resolve(import.meta.dirname, '../../..');
const MAIN = path.join(ROOT, 'packages/cli/dist/main.js');

let gpg: TestGpgHome;
let env: NodeJS.ProcessEnv;
let root: string;
let ours: string;
let theirs: string;
let pkgs: string;

// reason: needs gpg, repo-add and pacman (Debian's gnupg and pacman-package-manager)
const missing = ['gpg', 'repo-add', 'pacman', 'script'].filter((program) => !hasProgram(program));

describe.skipIf(missing.length > 0 && process.env.CI !== 'true')(
  `serene repo with the user's gpg${missing.length > 0 ? ` (skipped: no ${missing.join(', ')})` : ''}`,
  () => {
    beforeAll(async () => {
      const build = await run('npx', ['tsc', '-b', 'packages/cli'], { cwd: ROOT });
      expect(build.code, build.stdout + build.stderr).toBe(0);
      gpg = await createTestGpgHome();
      env = { ...process.env, LC_ALL: 'C', LANG: 'C', GNUPGHOME: gpg.homedir, SERENE_DEBUG: '' };
    });
    afterAll(async () => {
      await gpg?.cleanup();
    });
    beforeEach(async () => {
      root = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-cli-gpg-'));
      ours = path.join(root, 'ours');
      theirs = path.join(root, 'theirs');
      pkgs = path.join(root, 'pkgs');
      for (const dir of [ours, theirs, pkgs]) await fs.mkdir(dir);
    });
    afterEach(async () => {
      await fs.rm(root, { recursive: true, force: true });
    });

    const serene = (args: readonly string[], cwd = root): Promise<RunOutput> =>
      run(process.execPath, [MAIN, ...args], { cwd, env });
    const repoTool = (tool: string, args: readonly string[], cwd = root): Promise<RunOutput> =>
      run(tool, args, { cwd, env });
    const gpgRun = (args: readonly string[]) => run('gpg', ['--batch', ...args], { env });

    /** A package signed with the user's key (`FILE.sig`, binary, as makepkg --sign makes it). */
    async function signedPackage(name: string, version = '1.0-1'): Promise<string> {
      const file = await writeSyntheticPackage(pkgs, { name, version });
      const signed = await gpgRun(['--detach-sign', '--no-armor', file]);
      expect(signed.code, signed.stderr).toBe(0);
      return file;
    }

    /** A member of a database archive, as bsdtar reads it. */
    async function member(archive: string, name: string): Promise<string> {
      const output = await run('bsdtar', ['-xOf', archive, name]);
      expect(output.code, output.stderr).toBe(0);
      return output.stdout;
    }

    async function listing(dir: string): Promise<string[]> {
      return (await fs.readdir(dir)).sort();
    }

    it('-s -k signs both archives as repo-add -s -k does; --include-sigs decides %PGPSIG%', async () => {
      const alpha = await signedPackage('alpha');
      const oursAdd = await serene([
        'repo',
        'add',
        '-s',
        '-k',
        gpg.fingerprint,
        path.join(ours, 'test.db.tar.gz'),
        alpha,
      ]);
      expect(oursAdd.code, oursAdd.stderr).toBe(0);
      expect(oursAdd.stderr).toBe('');
      const theirsAdd = await repoTool('repo-add', [
        '-s',
        '-k',
        gpg.fingerprint,
        path.join(theirs, 'test.db.tar.gz'),
        alpha,
      ]);
      expect(theirsAdd.code, theirsAdd.stderr).toBe(0);
      // the same signing lines as repo-add, in its order
      const signingLines = (text: string) =>
        text.split('\n').filter((line) => /Signing database|Created signature file/.test(line));
      expect(signingLines(oursAdd.stdout)).toEqual(signingLines(theirsAdd.stdout));
      expect(signingLines(oursAdd.stdout)).toEqual([
        "==> Signing database 'test.db.tar.gz'...",
        "  -> Created signature file 'test.db.tar.gz.sig'",
        "==> Signing database 'test.files.tar.gz'...",
        "  -> Created signature file 'test.files.tar.gz.sig'",
      ]);
      // the same files, but repo-add's .old (it rotates even a first database) and our index
      const files = (list: string[]) =>
        list.filter((name) => !name.endsWith('.old') && !name.startsWith('.'));
      expect(files(await listing(ours))).toEqual(files(await listing(theirs)));
      for (const dir of [ours, theirs]) {
        for (const kind of ['db', 'files']) {
          const archive = path.join(dir, `test.${kind}.tar.gz`);
          expect(await gpg.verify(archive, `${archive}.sig`), `${dir} ${kind}`).toBe(true);
          expect(await gpg.verify(archive, path.join(dir, `test.${kind}.sig`))).toBe(true);
        }
      }
      // repo-add 6.0.2 here always embeds the package signature; pacman >= 6.1's repo-add (and
      // ours) only with --include-sigs
      const theirsDesc = await member(path.join(theirs, 'test.db.tar.gz'), 'alpha-1.0-1/desc');
      expect(theirsDesc).toContain('%PGPSIG%');
      const oursDesc = await member(path.join(ours, 'test.db.tar.gz'), 'alpha-1.0-1/desc');
      expect(oursDesc).toBe(theirsDesc.replace(/%PGPSIG%\n[^\n]+\n\n/, ''));
      const withSigs = await serene([
        'repo',
        'add',
        '-q',
        '--include-sigs',
        path.join(ours, 'test.db.tar.gz'),
        alpha,
      ]);
      expect(withSigs).toEqual({ code: 0, stdout: '', stderr: '' });
      expect(await member(path.join(ours, 'test.db.tar.gz'), 'alpha-1.0-1/desc')).toBe(theirsDesc);
      // an add without -s leaves no stale signature behind (as repo-add)
      await expect(fs.access(path.join(ours, 'test.db.tar.gz.sig'))).rejects.toThrow();
      await expect(fs.access(path.join(ours, 'test.db.sig'))).rejects.toThrow();
    });

    it('pacman with SigLevel = Required installs from a repository kept with repo add/remove -s', async () => {
      const repo = path.join(root, 'repo');
      await fs.mkdir(repo);
      const files = await Promise.all([signedPackage('alpha'), signedPackage('beta', '2.0-1')]);
      for (const file of files) {
        await fs.rename(file, path.join(repo, path.basename(file)));
        await fs.rename(`${file}.sig`, path.join(repo, `${path.basename(file)}.sig`));
      }
      const added = await serene(
        ['repo', 'add', '-s', 'test.db.tar.gz', ...files.map((file) => path.basename(file))],
        repo,
      );
      expect(added.code, added.stderr).toBe(0);
      const gamma = await signedPackage('gamma');
      expect(
        (await serene(['repo', 'add', '-s', '--include-sigs', path.join(repo, 'test.db.tar.gz'), gamma]))
          .code,
      ).toBe(0);
      await fs.rename(gamma, path.join(repo, path.basename(gamma)));
      await fs.rename(`${gamma}.sig`, path.join(repo, `${path.basename(gamma)}.sig`));
      const removed = await serene(
        ['repo', 'remove', '-s', '-k', gpg.fingerprint, 'test.db.tar.gz', 'beta'],
        repo,
      );
      expect(removed.code, removed.stderr).toBe(0);
      expect(removed.stdout).toContain("  -> Created signature file 'test.db.tar.gz.sig'");

      const sandbox = await createPacmanSandbox([
        { name: 'test', server: `file://${repo}`, sigLevel: 'Required DatabaseRequired' },
      ]);
      try {
        expect((await sandbox.pacmanKey(['--init'])).code).toBe(0);
        const exported = await gpgRun(['--armor', '--export', gpg.fingerprint]);
        await fs.writeFile(path.join(root, 'key.asc'), exported.stdout);
        expect((await sandbox.pacmanKey(['--add', path.join(root, 'key.asc')])).code).toBe(0);
        expect((await sandbox.pacmanKey(['--lsign-key', gpg.fingerprint])).code).toBe(0);
        const sync = await sandbox.pacman(['-Sy']);
        expect(sync.code, sync.stderr).toBe(0);
        expect((await sandbox.pacman(['-Sl', 'test'])).stdout.trim().split('\n')).toEqual([
          'test alpha 1.0-1',
          'test gamma 1.0-1',
        ]);
        // pacman 6 downloads FILE.sig beside each package; gamma's is in the database too
        const install = await sandbox.pacman(['-S', '--noscriptlet', 'alpha', 'gamma']);
        expect(install.code, install.stderr + install.stdout).toBe(0);

        // a database signed by nobody pacman trusts is refused
        const stranger = await createTestGpgHome({ uid: 'stranger <s@serene.invalid>' });
        try {
          const resigned = await run(
            process.execPath,
            [MAIN, 'repo', 'remove', '-s', 'test.db.tar.gz', 'gamma'],
            { cwd: repo, env: { ...env, GNUPGHOME: stranger.homedir } },
          );
          expect(resigned.code, resigned.stderr).toBe(0);
        } finally {
          await stranger.cleanup();
        }
        const refused = await sandbox.pacman(['-Sy']);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toMatch(/signature|unknown trust|invalid/i);
      } finally {
        await sandbox.cleanup();
      }
    });

    it('-v verifies before changing, as repo-add -v: a bad signature changes nothing', async () => {
      const db = path.join(ours, 'test.db.tar.gz');
      expect((await serene(['repo', 'add', '-s', db, await signedPackage('alpha')])).code).toBe(0);
      const good = await serene(['repo', 'add', '-v', '-s', db, await signedPackage('beta')]);
      expect(good.code, good.stderr).toBe(0);
      expect(good.stdout).toContain(
        '==> Verifying database signature...\n  -> Database signature file verified.',
      );
      expect(good.stderr).toMatch(/Good signature/);
      // repo-add -v accepts what we signed
      const theirsVerify = await repoTool('repo-remove', ['-v', db, 'beta']);
      expect(theirsVerify.code, theirsVerify.stderr).toBe(0);
      expect(theirsVerify.stdout).toContain('Database signature file verified.');

      // a signature of other data
      const other = path.join(root, 'other');
      await fs.writeFile(other, 'something else\n');
      expect(
        (await gpgRun(['--detach-sign', '--no-armor', '--output', `${db}.sig`, '--yes', other])).code,
      ).toBe(0);
      const before = await listing(ours);
      const snapshot = await fs.readFile(db);
      const bad = await serene(['repo', 'add', '-v', db, await signedPackage('gamma')]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('==> ERROR: Database signature was NOT valid!');
      expect(await fs.readFile(db)).toEqual(snapshot);
      expect(await listing(ours)).toEqual(before);
      const theirsBad = await repoTool('repo-add', [
        '-v',
        db,
        path.join(pkgs, 'gamma-1.0-1-x86_64.pkg.tar.gz'),
      ]);
      expect(theirsBad.code).toBe(1);
      expect(theirsBad.stderr).toContain('Database signature was NOT valid!');

      // no signature: a warning, and the change goes on (as repo-add)
      await fs.rm(`${db}.sig`);
      await fs.rm(path.join(ours, 'test.files.tar.gz.sig'));
      const unsigned = await serene(['repo', 'remove', '-v', db, 'alpha']);
      expect(unsigned.code, unsigned.stderr).toBe(0);
      expect(unsigned.stderr).toContain('==> WARNING: No existing signature found, skipping verification.');

      // -v with the database alone only verifies
      expect((await serene(['repo', 'add', '-s', db, await signedPackage('delta')])).code).toBe(0);
      const only = await serene(['repo', 'add', '-v', db]);
      expect(only.code, only.stderr).toBe(0);
      expect(only.stdout).not.toContain('Creating updated database file');
      const onlyRemove = await serene(['repo', 'remove', '-v', db]);
      expect(onlyRemove.code, onlyRemove.stderr).toBe(0);
      expect(onlyRemove.stdout).toContain('Verifying database signature');
      expect(onlyRemove.stdout).not.toContain('Creating updated database file');
      const theirsOnly = await repoTool('repo-remove', ['-v', db]);
      expect(theirsOnly.code, theirsOnly.stderr).toBe(0);
    });

    it('-s with a key the keyring lacks fails as repo-add and changes nothing', async () => {
      const db = path.join(ours, 'test.db.tar.gz');
      expect((await serene(['repo', 'add', db, await signedPackage('alpha')])).code).toBe(0);
      const before = await listing(ours);
      const snapshot = await fs.readFile(db);
      const beta = await signedPackage('beta');
      const output = await serene(['repo', 'add', '-s', '-k', 'nobody@nowhere.invalid', db, beta]);
      expect(output.code).toBe(1);
      expect(output.stderr).toBe(
        '==> ERROR: The key nobody@nowhere.invalid does not exist in your keyring.\n',
      );
      const theirsOutput = await repoTool('repo-add', ['-s', '-k', 'nobody@nowhere.invalid', db, beta]);
      expect(theirsOutput.code).toBe(1);
      expect(theirsOutput.stderr).toContain('The key nobody@nowhere.invalid does not exist in your keyring.');
      expect(await fs.readFile(db)).toEqual(snapshot);
      expect(await listing(ours)).toEqual(before);
      // an empty keyring
      const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-gpg-empty-'));
      try {
        await fs.chmod(empty, 0o700);
        const none = await run(process.execPath, [MAIN, 'repo', 'add', '-s', db, beta], {
          cwd: root,
          env: { ...env, GNUPGHOME: empty },
        });
        expect(none.code).toBe(1);
        expect(none.stderr).toBe('==> ERROR: There is no key in your keyring.\n');
        expect(await listing(ours)).toEqual(before);
      } finally {
        await run('gpgconf', ['--homedir', empty, '--kill', 'all']);
        await fs.rm(empty, { recursive: true, force: true });
      }
    });

    it("colours as repo-add's on a terminal, none with --nocolor or off a terminal", async () => {
      const db = path.join(ours, 'test.db.tar.gz');
      const alpha = await signedPackage('alpha');
      // `script` gives the command a pseudo-terminal, as a user's shell has
      const onTerminal = async (args: string) => {
        const command = `${process.execPath} ${MAIN} ${args}`;
        const output = await run('script', ['-qec', command, '/dev/null'], { cwd: root, env });
        expect(output.code, output.stdout).toBe(0);
        return output.stdout;
      };
      const coloured = await onTerminal(`repo add ${db} ${alpha}`);
      expect(coloured).toContain(`\x1b[1m\x1b[32m==>\x1b[0m\x1b[1m Adding package '${alpha}'\x1b[0m`);
      const warned = await onTerminal(`repo add -n ${db} ${alpha}`);
      expect(warned).toContain('\x1b[1m\x1b[33m==> WARNING:\x1b[0m\x1b[1m');
      const plain = await onTerminal(`repo add --nocolor ${db} ${alpha}`);
      expect(plain).toContain(`==> Adding package '${alpha}'`);
      expect(plain).not.toContain('\x1b[');
      const piped = await serene(['repo', 'add', db, alpha]);
      expect(piped.stdout).not.toContain('\x1b[');
    });

    it('the fast entry and the full command line parse the same flags', async () => {
      const help = await serene(['repo', 'add', '--help']);
      expect(help.code).toBe(0);
      for (const flag of ['--sign', '--key <key>', '--verify', '--include-sigs', '--nocolor', '--quiet']) {
        expect(help.stdout).toContain(flag);
      }
      const removeHelp = await serene(['repo', 'remove', '--help']);
      expect(removeHelp.stdout).toContain('--sign');
      expect(removeHelp.stdout).not.toContain('--include-sigs');
      // a flag repo-remove does not have is a usage error (exit 2), and nothing is created
      const wrong = await serene(['repo', 'remove', '--include-sigs', path.join(ours, 'x.db.tar.gz'), 'a']);
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toMatch(/include-sigs/);
      expect(wrong.stderr).toMatch(/Usage: serene repo remove/);
      const noValue = await serene(['repo', 'add', path.join(ours, 'x.db.tar.gz'), '-k']);
      expect(noValue.code).toBe(2);
      expect(await listing(ours)).toEqual([]);
      // -k without -s signs nothing, and says so
      const keyOnly = await serene(['repo', 'add', '-k', gpg.fingerprint, path.join(ours, 'x.db.tar.gz')]);
      expect(keyOnly.code).toBe(0);
      expect(keyOnly.stderr).toMatch(/WARNING: -k\/--key without -s\/--sign signs nothing/);
      await expect(fs.access(path.join(ours, 'x.db.tar.gz.sig'))).rejects.toThrow();
    });
  },
);
