import { describe, expect, it } from 'vitest';
import { MAX_NAME_LENGTH, packageNameProblem, repositoryNameProblem } from './names.js';

describe('the package-name rule', () => {
  it('takes what makepkg takes as a pkgname', () => {
    for (const name of ['serene', 'lib32-glibc', 'python-foo_bar', 'gtk+', 'a@b', 'Upper.Case', '0ad']) {
      expect(packageNameProblem(name), name).toBeUndefined();
    }
  });

  it('names what is wrong with a bad one', () => {
    expect(packageNameProblem('')).toBe('it is empty');
    expect(packageNameProblem('a/b')).toMatch(/only letters, digits and @ \. _ \+ -/);
    expect(packageNameProblem('a b')).toMatch(/only letters/);
    expect(packageNameProblem('.hidden')).toBe('it may not start with . or -');
    expect(packageNameProblem('-rf')).toBe('it may not start with . or -');
    expect(packageNameProblem('x'.repeat(MAX_NAME_LENGTH))).toBeUndefined();
    expect(packageNameProblem('x'.repeat(MAX_NAME_LENGTH + 1))).toMatch(/the limit is 255/);
  });

  it('takes the same characters for a repository name, which may start with - but not with .', () => {
    for (const name of ['serene', 'my-repo', '-dash', 'core.testing']) {
      expect(repositoryNameProblem(name), name).toBeUndefined();
    }
    expect(repositoryNameProblem('')).toBe('it is empty');
    expect(repositoryNameProblem('../etc')).toMatch(/only letters/);
    expect(repositoryNameProblem('.db')).toBe('it may not start with .');
  });
});
