import { describe, expect, it } from 'vitest';
import type { InnerSource, InnerSourceJson, SrcinfoGenerator } from '../contracts/source.js';
import { InputError } from '../errors.js';
import type { Git } from './git.js';
import { createSourceFactory } from './source-factory.js';

const srcinfo = (pkgver: string, sources: string[] = []) =>
  [
    'pkgbase = fake',
    `\tpkgver = ${pkgver}`,
    '\tpkgrel = 1',
    '\tarch = any',
    ...sources.map((s) => `\tsource = ${s}`),
    '',
    'pkgname = fake',
    '',
  ].join('\n');

/** An inner source whose state and .SRCINFO the test sets. */
class FakeInner implements InnerSource {
  readonly type = 'FakeSource';
  current = 'state-1';
  next = 'state-1';
  own: string | null = null;
  describe() {
    return { label: 'fake', url: null };
  }
  async initialize() {
    this.current = this.next;
  }
  async update() {
    this.current = this.next;
  }
  state() {
    return this.current;
  }
  async pkgbuild() {
    return 'pkgname=fake\n';
  }
  async srcinfo() {
    return this.own;
  }
  toJSON(): InnerSourceJson {
    return { type: 'FakeSource', state: this.current };
  }
}

/** A generator that counts its calls and prints `.SRCINFO` for the pkgver it is told. */
function fakeGenerator(sources: string[] = []) {
  const calls: string[] = [];
  let pkgver = 'generated-1';
  const generate: SrcinfoGenerator = async (dir) => {
    calls.push(dir);
    return srcinfo(pkgver, sources);
  };
  return { generate, calls, setVersion: (v: string) => (pkgver = v) };
}

/** A git whose remotes answer from a table of `url ref -> commit`. */
function fakeGit(refs: Record<string, string>): Git & { asked: string[] } {
  const asked: string[] = [];
  const fail = () => Promise.reject(new Error('not in this test'));
  return {
    asked,
    clone: fail,
    pull: fail,
    headCommit: fail,
    lsRemote: fail,
    resolveCommit: fail,
    resetHard: fail,
    commitInfo: fail,
    log: fail,
    changedFiles: fail,
    diff: fail,
    showFile: fail,
    async findRemoteRef(url, ref) {
      asked.push(`${url} ${ref}`);
      return refs[`${url} ${ref}`];
    },
  };
}

function setup(options: { sources?: string[]; refs?: Record<string, string> } = {}) {
  const generator = fakeGenerator(options.sources);
  const git = fakeGit(options.refs ?? {});
  const inner = new FakeInner();
  const factory = createSourceFactory({
    generateSrcinfo: generator.generate,
    git,
    innerKinds: { FakeSource: () => new FakeInner() },
  });
  const source = factory.wrap(inner, false);
  return { generator, git, inner, factory, source };
}

describe('.SRCINFO generation (docs/compatibility.md#sources)', () => {
  it('never generates when the checkout has a .SRCINFO', async () => {
    const { generator, inner, source } = setup();
    inner.own = srcinfo('1.0');
    await source.initialize('/src');
    inner.next = 'state-2';
    await source.update('/src');
    expect(generator.calls).toEqual([]);
    expect(await source.srcinfo('/src')).toBe(srcinfo('1.0'));
    expect(source.generatedSrcinfo).toBeNull();
  });

  it('generates without a .SRCINFO: first time, then only when the inner state changed', async () => {
    const { generator, inner, source } = setup();
    await source.initialize('/src');
    expect(generator.calls).toEqual(['/src']);
    await source.update('/src');
    expect(generator.calls).toHaveLength(1);
    inner.next = 'state-2';
    generator.setVersion('generated-2');
    await source.update('/src');
    expect(generator.calls).toHaveLength(2);
    expect(await source.srcinfo('/src')).toBe(srcinfo('generated-2'));
  });

  it('generates with the override even when the checkout has a .SRCINFO, and uses the generated one', async () => {
    const { generator, inner, source } = setup();
    inner.own = srcinfo('1.0');
    await source.initialize('/src');
    expect(generator.calls).toHaveLength(0);
    source.srcinfoOverride = true;
    // no generated .SRCINFO stored yet: generated although the inner state did not change
    await source.update('/src');
    expect(generator.calls).toHaveLength(1);
    expect(await source.srcinfo('/src')).toBe(srcinfo('generated-1'));
    await source.update('/src');
    expect(generator.calls).toHaveLength(1);
    inner.next = 'state-2';
    await source.update('/src');
    expect(generator.calls).toHaveLength(2);
  });

  it('falls back to the generated .SRCINFO when the checkout lost its own', async () => {
    const { inner, source } = setup();
    await source.initialize('/src');
    inner.own = srcinfo('own');
    expect(await source.srcinfo('/src')).toBe(srcinfo('own'));
    inner.own = null;
    expect(await source.srcinfo('/src')).toBe(srcinfo('generated-1'));
  });

  it('fails when the generator fails or prints no .SRCINFO', async () => {
    const factory = createSourceFactory({ generateSrcinfo: async () => 'not a srcinfo' });
    const source = factory.wrap(new FakeInner(), false);
    await expect(source.initialize('/src')).rejects.toThrow('failed to generate srcinfo for package');
    await expect(source.srcinfo('/src')).rejects.toThrow(/failed to get a srcinfo/);
  });

  it('rejects a checkout .SRCINFO that does not parse', async () => {
    const { inner, source } = setup();
    inner.own = 'garbage';
    await expect(source.initialize('/src')).rejects.toThrow('failed to parse .SRCINFO');
  });
});

describe('devel revisions and the state string (docs/compatibility.md#sources)', () => {
  const A = 'https://a.example/a.git';
  const B = 'https://b.example/b.git#branch=dev';
  const refs = { [`${A} HEAD`]: 'aaaaaaa', 'https://b.example/b.git refs/heads/dev': 'bbbbbbb' };

  it('looks up the git+ sources of the effective .SRCINFO and appends them in URL order', async () => {
    const { inner, source, git } = setup({ refs });
    inner.own = srcinfo('1.0', [`b::git+${B}`, `git+${A}`, 'https://c.example/file.tar.gz']);
    source.devel = true;
    await source.initialize('/src');
    expect(git.asked.sort()).toEqual([`${A} HEAD`, 'https://b.example/b.git refs/heads/dev']);
    expect(source.develRevisions).toEqual({ [A]: 'aaaaaaa', [B]: 'bbbbbbb' });
    expect(source.state()).toBe('state-1aaaaaaabbbbbbb');
    source.devel = false;
    expect(source.state()).toBe('state-1');
  });

  it('keeps the revisions of a non-devel source untouched', async () => {
    const { factory, git } = setup({ refs });
    const source = factory.restore({
      devel: false,
      srcinfo_override: false,
      srcinfo: srcinfo('1.0', [`git+${A}`]),
      devel_revisions: { old: 'c0ffee' },
      inner: { type: 'FakeSource', state: 'x' },
    });
    await source.update('/src');
    expect(git.asked).toEqual([]);
    expect(source.develRevisions).toEqual({ old: 'c0ffee' });
  });

  it('fails the update when a remote has no such ref', async () => {
    const { inner, source } = setup({ refs: {} });
    inner.own = srcinfo('1.0', [`git+${A}`]);
    source.devel = true;
    await expect(source.initialize('/src')).rejects.toThrow(`failed to find ref 'HEAD' of remote '${A}'`);
  });
});

describe('the original JSON (package.source)', () => {
  const { factory } = setup();
  // as the original writes it: devel_revisions from a HashMap, in any order
  const original =
    '{"devel":true,"srcinfo_override":false,"srcinfo":null,"devel_revisions":{"https://z.example/z.git":"zzz","https://a.example/a.git#tag=v1":"aaa"},"inner":{"type":"AurSource","base":"foo-git","version":"r10.abc-1","mirror":false}}';

  it('reads the original JSON and computes the original state string', () => {
    const source = factory.restore(original);
    expect(source.inner.type).toBe('AurSource');
    expect(source.inner.base).toBe('foo-git');
    expect(source.devel).toBe(true);
    expect(source.state()).toBe('r10.abc-1aaazzz');
    expect(source.describe().label).toBe('aur package');
  });

  it('writes the original keys in the original order, revisions sorted', () => {
    const source = factory.restore(original);
    expect(JSON.stringify(source.toJSON())).toBe(
      '{"devel":true,"srcinfo_override":false,"srcinfo":null,"devel_revisions":{"https://a.example/a.git#tag=v1":"aaa","https://z.example/z.git":"zzz"},"inner":{"type":"AurSource","base":"foo-git","version":"r10.abc-1","mirror":false}}',
    );
  });

  it('round-trips every inner kind', () => {
    const kinds: InnerSourceJson[] = [
      { type: 'AurSource', base: 'hello', version: '1:2.0-3', mirror: true },
      { type: 'GitSource', repository: 'https://example.org/pkg.git', last_commit: 'abc' },
      { type: 'RawSource', pkgbuild: 'pkgname=x\npkgver=1\n' },
    ];
    for (const inner of kinds) {
      const json = {
        devel: false,
        srcinfo_override: true,
        srcinfo: srcinfo('1'),
        devel_revisions: {},
        inner,
      };
      expect(factory.restore(JSON.stringify(json)).toJSON()).toEqual(json);
    }
  });

  it('computes the states of the original', () => {
    const state = (inner: InnerSourceJson) =>
      factory
        .restore({ devel: false, srcinfo_override: false, srcinfo: null, devel_revisions: {}, inner })
        .state();
    expect(state({ type: 'AurSource', base: 'hello', version: '1:2.0-3', mirror: false })).toBe('1:2.0-3');
    expect(state({ type: 'GitSource', repository: 'https://example.org/pkg.git', last_commit: 'abc' })).toBe(
      'abc',
    );
    // base64(sha256("pkgname=x\npkgver=1\n")), computed with openssl
    expect(state({ type: 'RawSource', pkgbuild: 'pkgname=x\npkgver=1\n' })).toBe(
      'Yo8GQuoPvp6BOIRSj0LyL1o2x3aJov/sVaiDGvLnSvo=',
    );
  });

  it('reads an AurSource without mirror (before the mirror existed) as not mirrored', () => {
    const source = factory.restore({
      devel: false,
      srcinfo_override: false,
      srcinfo: null,
      devel_revisions: {},
      inner: { type: 'AurSource', base: 'hello', version: '1-1' },
    });
    expect(source.toJSON().inner).toEqual({
      type: 'AurSource',
      base: 'hello',
      version: '1-1',
      mirror: false,
    });
  });

  it('refuses malformed, legacy and unknown JSON with an InputError', () => {
    const bad: Array<Record<string, unknown> | string> = [
      '{',
      '[]',
      { type: 'NormalSource', repository: 'x', last_commit: 'y' },
      {
        devel: 'yes',
        srcinfo_override: false,
        srcinfo: null,
        devel_revisions: {},
        inner: { type: 'RawSource' },
      },
      { devel: false, srcinfo_override: false, srcinfo: null, devel_revisions: {}, inner: { type: 'Nope' } },
      {
        devel: false,
        srcinfo_override: false,
        srcinfo: null,
        devel_revisions: {},
        inner: { type: 'RawSource' },
      },
      {
        devel: false,
        srcinfo_override: false,
        srcinfo: 'garbage',
        devel_revisions: {},
        inner: { type: 'CliSource' },
      },
      {
        devel: false,
        srcinfo_override: false,
        srcinfo: null,
        devel_revisions: { a: 1 },
        inner: { type: 'RawSource' },
      },
    ];
    for (const json of bad) expect(() => factory.restore(json), JSON.stringify(json)).toThrow(InputError);
    expect(() => factory.restore(bad[2] ?? '')).toThrow(/legacy/);
  });
});
