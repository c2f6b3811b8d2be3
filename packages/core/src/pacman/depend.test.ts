import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import {
  type Dependency,
  findSatisfier,
  formatDependency,
  type Provider,
  parseDependency,
  satisfies,
  versionSatisfies,
} from './depend.js';

describe('parseDependency', () => {
  it.each<[string, Dependency]>([
    ['glibc', { name: 'glibc' }],
    ['zlib>=1.2.13', { name: 'zlib', op: '>=', version: '1.2.13' }],
    ['python<=3.12', { name: 'python', op: '<=', version: '3.12' }],
    ['python<3.13', { name: 'python', op: '<', version: '3.13' }],
    ['openssl>3', { name: 'openssl', op: '>', version: '3' }],
    ['foo=1.0', { name: 'foo', op: '=', version: '1.0' }],
    ['foo>=1:2.0-3', { name: 'foo', op: '>=', version: '1:2.0-3' }],
    ['foo=2:1.0', { name: 'foo', op: '=', version: '2:1.0' }],
    ['libfoo.so=1-64', { name: 'libfoo.so', op: '=', version: '1-64' }],
    ['python-lxml: for the XML exporter', { name: 'python-lxml', description: 'for the XML exporter' }],
    [
      'python>=3.10: scripting: with plugins',
      { name: 'python', op: '>=', version: '3.10', description: 'scripting: with plugins' },
    ],
    ['foo: ', { name: 'foo', description: '' }],
    ['foo:bar', { name: 'foo:bar' }],
    ['foo: needs >= 2 GiB', { name: 'foo', description: 'needs >= 2 GiB' }],
    ['gtk4: GUI – für Menschen ✓', { name: 'gtk4', description: 'GUI – für Menschen ✓' }],
  ])('parses %j', (input, expected) => {
    expect(parseDependency(input)).toStrictEqual(expected);
  });

  it("takes '<' before '>' before '=', as libalpm does", () => {
    expect(parseDependency('a=1<2')).toStrictEqual({ name: 'a=1', op: '<', version: '2' });
    expect(parseDependency('a=1>=2')).toStrictEqual({ name: 'a=1', op: '>=', version: '2' });
    expect(parseDependency('a>1<=2')).toStrictEqual({ name: 'a>1', op: '<=', version: '2' });
  });

  it.each(['', '>=1.0', '=1', ': description', 'foo>=', 'foo=', 'foo<: text'])(
    'rejects %j with InputError',
    (input) => {
      expect(() => parseDependency(input)).toThrow(InputError);
    },
  );
});

describe('formatDependency', () => {
  it.each([
    'glibc',
    'zlib>=1.2.13',
    'foo<2',
    'foo<=2',
    'foo>2',
    'foo=1:2.0-3',
    'python: for scripts',
    'python>=3.10: for scripts',
  ])('round-trips %j', (input) => {
    expect(formatDependency(parseDependency(input))).toBe(input);
  });

  it('leaves out an operator without a version', () => {
    expect(formatDependency({ name: 'foo', op: '>=' })).toBe('foo');
    expect(formatDependency({ name: 'foo', version: '1' })).toBe('foo');
  });
});

describe('versionSatisfies', () => {
  it.each<[string, string, boolean]>([
    ['foo', '0.1-1', true],
    ['foo>=1.0', '1.0-1', true],
    ['foo>=1.0', '0.9-9', false],
    ['foo>1.0', '1.0-1', false],
    ['foo>1.0', '1.0.1-1', true],
    ['foo<1.0', '1.0rc1-1', true],
    ['foo<=1.0', '1.0-7', true],
    ['foo=1.0', '1.0-7', true],
    ['foo=1.0-1', '1.0-7', false],
    ['foo=1.0-7', '1.0-7', true],
    ['foo>=1.0-2', '1.0-1', false],
    ['foo>=2.0', '1:1.0-1', true],
    ['foo<2.0', '1:1.0-1', false],
    ['foo=1:2.0', '1:2.0-5', true],
    ['foo=1:2.0', '2.0-5', false],
    ['foo=0:2.0', '2.0-5', true],
  ])('%s by %s: %s', (dep, version, expected) => {
    expect(versionSatisfies(parseDependency(dep), version)).toBe(expected);
  });
});

describe('satisfies', () => {
  const pkg = (name: string, version: string, provides: string[] = []): Provider => ({
    name,
    version,
    provides,
  });

  it('matches the package by its own name and full version', () => {
    const zlib = pkg('zlib', '1:1.3.1-2');
    expect(satisfies(parseDependency('zlib'), zlib)).toBe(true);
    expect(satisfies(parseDependency('zlib>=1.3'), zlib)).toBe(true);
    expect(satisfies(parseDependency('zlib>=1:1.3.1-2'), zlib)).toBe(true);
    expect(satisfies(parseDependency('zlib>1:1.3.1-2'), zlib)).toBe(false);
    // the epoch makes 1:1.3.1 newer than any epoch-less version
    expect(satisfies(parseDependency('zlib>=9.9'), zlib)).toBe(true);
    expect(satisfies(parseDependency('zlib<2.0'), zlib)).toBe(false);
    expect(satisfies(parseDependency('zlib-ng'), zlib)).toBe(false);
  });

  it('ignores the provider pkgrel when the dependency has none', () => {
    const foo = pkg('foo', '2.0-3');
    expect(satisfies(parseDependency('foo=2.0'), foo)).toBe(true);
    expect(satisfies(parseDependency('foo=2.0-3'), foo)).toBe(true);
    expect(satisfies(parseDependency('foo=2.0-4'), foo)).toBe(false);
    expect(satisfies(parseDependency('foo<2.0'), foo)).toBe(false);
    expect(satisfies(parseDependency('foo>2.0'), foo)).toBe(false);
  });

  it('lets an unversioned provide satisfy only unversioned dependencies', () => {
    const ng = pkg('zlib-ng-compat', '2.2.2-1', ['zlib']);
    expect(satisfies(parseDependency('zlib'), ng)).toBe(true);
    expect(satisfies(parseDependency('zlib>=1.0'), ng)).toBe(false);
    expect(satisfies(parseDependency('zlib=2.2.2'), ng)).toBe(false);
  });

  it('compares a versioned provide with vercmp', () => {
    const ng = pkg('zlib-ng-compat', '2.2.2-1', ['zlib=1:1.3.1']);
    expect(satisfies(parseDependency('zlib'), ng)).toBe(true);
    expect(satisfies(parseDependency('zlib>=1.3'), ng)).toBe(true);
    expect(satisfies(parseDependency('zlib>=1:1.3'), ng)).toBe(true);
    expect(satisfies(parseDependency('zlib>=1:1.4'), ng)).toBe(false);
    expect(satisfies(parseDependency('zlib=1:1.3.1'), ng)).toBe(true);
    // the provide has no pkgrel, so a dependency's pkgrel is not compared
    expect(satisfies(parseDependency('zlib=1:1.3.1-5'), ng)).toBe(true);
    expect(satisfies(parseDependency('zlib<1:1.3.1'), ng)).toBe(false);
    // the provide's epoch makes it newer than any epoch-less version
    expect(satisfies(parseDependency('zlib>=9.9'), ng)).toBe(true);
    // the provider's own version does not count for a provided name
    const plain = pkg('zlib-ng-compat', '2.2.2-1', ['zlib=1.3.1']);
    expect(satisfies(parseDependency('zlib>=2.2'), plain)).toBe(false);
    expect(satisfies(parseDependency('zlib>=1.3'), plain)).toBe(true);
  });

  it('compares soname provides', () => {
    const libfoo = pkg('libfoo', '3.1-1', ['libfoo.so=3-64']);
    expect(satisfies(parseDependency('libfoo.so=3-64'), libfoo)).toBe(true);
    expect(satisfies(parseDependency('libfoo.so=2-64'), libfoo)).toBe(false);
    expect(satisfies(parseDependency('libfoo.so'), libfoo)).toBe(true);
  });

  it('does not compare provides written with other operators', () => {
    const odd = pkg('odd', '1-1', ['bar>=2']);
    expect(satisfies(parseDependency('bar'), odd)).toBe(true);
    expect(satisfies(parseDependency('bar>=1'), odd)).toBe(false);
  });

  it('checks every provide, not just the first of the name', () => {
    const multi = pkg('java-runtime-openjdk', '21.0.1-1', ['java-runtime=17', 'java-runtime=21']);
    expect(satisfies(parseDependency('java-runtime>=21'), multi)).toBe(true);
    expect(satisfies(parseDependency('java-runtime<18'), multi)).toBe(true);
    expect(satisfies(parseDependency('java-runtime>21'), multi)).toBe(false);
  });

  it('ignores a description on the dependency', () => {
    expect(satisfies(parseDependency('foo>=1: optional'), pkg('foo', '1.0-1'))).toBe(true);
  });
});

describe('findSatisfier', () => {
  const providers: Provider[] = [
    { name: 'jre17-openjdk', version: '17.0.9-1', provides: ['java-runtime=17', 'java-environment=17'] },
    { name: 'jre-openjdk', version: '21.0.1-1', provides: ['java-runtime=21', 'java-environment=21'] },
    { name: 'zlib', version: '1:1.3.1-2', provides: [] },
  ];

  it('returns the first provider that satisfies, in order', () => {
    expect(findSatisfier(parseDependency('java-runtime'), providers)?.name).toBe('jre17-openjdk');
    expect(findSatisfier(parseDependency('java-runtime>=21'), providers)?.name).toBe('jre-openjdk');
    expect(findSatisfier(parseDependency('zlib>=1.3'), providers)?.name).toBe('zlib');
  });

  it('returns undefined when nothing satisfies', () => {
    expect(findSatisfier(parseDependency('java-runtime>=22'), providers)).toBeUndefined();
    expect(findSatisfier(parseDependency('glibc'), providers)).toBeUndefined();
    expect(findSatisfier(parseDependency('glibc'), [])).toBeUndefined();
  });

  it('returns the provider object itself', () => {
    const extended = providers.map((p) => ({ ...p, repo: 'core' }));
    expect(findSatisfier(parseDependency('zlib'), extended)?.repo).toBe('core');
  });
});
