import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  configurationTable,
  levelFromRustLog,
  machineArch,
  readConfig,
  SERVER_VERSION,
  SETTINGS,
  VARIABLES,
} from './config.js';

const errorOf = (env: Record<string, string>): Error => {
  try {
    readConfig(env, '/srv');
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the configuration to be refused');
};

describe('readConfig', () => {
  it('has the embedded defaults: ./data, port 8080, the original defaults for the rest', () => {
    const config = readConfig({}, '/srv');
    expect(config.dataDir).toBe('/srv/data');
    expect(config.databaseUrl).toBe('/srv/data/serene.db');
    expect(config.authorizedSecretsFile).toBe('/srv/data/authorized_secrets');
    expect(config.signKeyFile).toBe('/srv/data/sign_key.asc');
    expect(config.repositoryDir).toBe('/srv/data/repository');
    expect(config.sourcesDir).toBe('/srv/data/sources');
    expect(config.logsDir).toBe('/srv/data/logs');
    expect(config.port).toBe(8080);
    expect(config.allowReads).toBe(false);
    expect(config.arch).toBe(machineArch());
    expect(config.name).toBe('serene');
    expect(config.aurUrl).toBe('https://aur.archlinux.org');
    expect(config.aurRequestTimeoutMs).toBe(5000);
    expect(config.aurRequestRetries).toBe(1);
    expect(config.aurResolveAdding).toBe(true);
    expect(config.schedule).toBe('0 0 0 * * *');
    expect(config.scheduleDevel).toBe('0 0 0 * * *');
    expect(config.scheduleImage).toBe('0 0 0 * * *');
    expect(config.runnerImage).toBe(`ghcr.io/virtcode/serene-aur-runner:edge-${SERVER_VERSION}`);
    expect(config.runnerPrefix).toBe('serene-aur-runner-');
    expect(config.runnerSrcinfoName).toBe('serene-aur-srcinfo-generation');
    expect(config.pruneImages).toBe(true);
    expect(config.concurrentBuilds).toBe(5);
    expect(config.resolveBuildSequence).toBe(true);
    expect(config.resolveIgnoreFailed).toBe(false);
    expect(config.buildTimeoutMs).toBeUndefined();
    expect(config.syncMirror).toBe('https://mirror.init7.net/archlinux/{repo}/os/{arch}');
    expect(config.webhookSecret).toBeUndefined();
    expect(config.ownRepositoryUrl).toBeUndefined();
    expect(config.logLevel).toBe('info');
    expect(config.metrics).toBe(true);
    expect(config.buildCli).toBe(true);
  });

  it('reads every variable', () => {
    const config = readConfig(
      {
        DATA_DIR: '/app',
        DATABASE_URL: 'postgres://serene@127.0.0.1/serene',
        AUTHORIZED_SECRETS: 'secrets',
        SIGN_KEY: '/keys/k.asc',
        PORT: '80',
        HOST: '127.0.0.1',
        ALLOW_READS: 'true',
        WEBHOOK_SECRET: 'hook',
        METRICS: 'false',
        ARCH: 'aarch64',
        NAME: 'my-repo',
        SIGN_KEY_PASSWORD: 'pw',
        OWN_REPOSITORY_URL: 'http://serene/x86_64',
        AUR_URL: 'http://127.0.0.1:9000',
        AUR_GITHUB_MIRROR: 'true',
        AUR_RESOLVE_ADDING: 'false',
        AUR_REQUEST_TIMEOUT: '100',
        AUR_REQUEST_RETRIES: '0',
        SYNC_MIRROR: 'http://127.0.0.1:9001/{repo}/os/{arch}',
        RESOLVE_BUILD_SEQUENCE: 'false',
        RESOLVE_IGNORE_FAILED: 'true',
        CONCURRENT_BUILDS: '2',
        FORCE_CLEAN: 'true',
        BUILD_TIMEOUT: '90m',
        BUILD_CLI: 'false',
        EDGE_CLI: 'true',
        SCHEDULING_DISABLED: 'true',
        SCHEDULING_DEFAULT: 'false',
        SCHEDULE: '0 30 4 * * *',
        SCHEDULE_IMAGE: '0 0 3 * * Sun',
        DOCKER_URL: 'tcp://127.0.0.1:2375',
        RUNNER_IMAGE: 'my/runner:{version}',
        RUNNER_PREFIX: 'r-',
        RUNNER_SRCINFO_NAME: 'srcinfo',
        PRUNE_IMAGES: 'false',
        PULL_IMAGE: 'false',
        PACKAGER: 'Me <me@example.org>',
        RUNNER_NETWORK: 'host',
        RUNNER_MEMORY: '4g',
        RUNNER_CPUS: '1.5',
        RUNNER_PIDS: '100',
        LOG_LEVEL: 'debug',
        LOG_FORMAT: 'pretty',
      },
      '/srv',
    );
    expect(config).toMatchObject({
      dataDir: '/app',
      databaseUrl: 'postgres://serene@127.0.0.1/serene',
      authorizedSecretsFile: '/srv/secrets',
      signKeyFile: '/keys/k.asc',
      repositoryDir: path.join('/app', 'repository'),
      port: 80,
      host: '127.0.0.1',
      allowReads: true,
      webhookSecret: 'hook',
      metrics: false,
      arch: 'aarch64',
      name: 'my-repo',
      signKeyPassword: 'pw',
      ownRepositoryUrl: 'http://serene/x86_64',
      aurUrl: 'http://127.0.0.1:9000',
      aurGithubMirror: true,
      aurResolveAdding: false,
      aurRequestTimeoutMs: 100,
      aurRequestRetries: 0,
      resolveBuildSequence: false,
      resolveIgnoreFailed: true,
      concurrentBuilds: 2,
      forceClean: true,
      buildTimeoutMs: 5_400_000,
      buildCli: false,
      edgeCli: true,
      schedulingDisabled: true,
      schedulingDefault: false,
      schedule: '0 30 4 * * *',
      // SCHEDULE_DEVEL follows SCHEDULE when unset, as the original
      scheduleDevel: '0 30 4 * * *',
      scheduleImage: '0 0 3 * * Sun',
      dockerUrl: 'tcp://127.0.0.1:2375',
      runnerImage: `my/runner:${SERVER_VERSION}`,
      runnerPrefix: 'r-',
      runnerSrcinfoName: 'srcinfo',
      pruneImages: false,
      pullImage: false,
      packager: 'Me <me@example.org>',
      runnerNetwork: 'host',
      runnerMemoryBytes: 4 * 1024 ** 3,
      runnerCpus: 1.5,
      runnerPids: 100,
      logLevel: 'debug',
      logFormat: 'pretty',
    });
  });

  it('takes HEAP_GROWTH as a percent from 0 (V8 decides) to 1000, 100 by default', () => {
    expect(readConfig({}).heapGrowthPercent).toBe(100);
    expect(readConfig({ HEAP_GROWTH: '0' }).heapGrowthPercent).toBe(0);
    expect(readConfig({ HEAP_GROWTH: '250' }).heapGrowthPercent).toBe(250);
    for (const bad of ['-1', '1001', 'half', '1.5'])
      expect(errorOf({ HEAP_GROWTH: bad }).message).toContain('HEAP_GROWTH');
  });

  it('takes BUILD_TIMEOUT as seconds or with a unit', () => {
    expect(readConfig({ BUILD_TIMEOUT: '3600' }).buildTimeoutMs).toBe(3_600_000);
    expect(readConfig({ BUILD_TIMEOUT: '45s' }).buildTimeoutMs).toBe(45_000);
    expect(readConfig({ BUILD_TIMEOUT: '2h' }).buildTimeoutMs).toBe(7_200_000);
    expect(readConfig({ BUILD_TIMEOUT: '1d' }).buildTimeoutMs).toBe(86_400_000);
    expect(readConfig({}).buildRetentionMs).toBeUndefined();
    expect(readConfig({ BUILD_RETENTION: '90d' }).buildRetentionMs).toBe(90 * 86_400_000);
    expect(errorOf({ BUILD_RETENTION: 'a while' }).message).toMatch(/BUILD_RETENTION="a while" is not valid/);
  });

  it('refuses an invalid value, naming the variable and the accepted form', () => {
    expect(errorOf({ PORT: 'eighty' }).message).toMatch(
      /PORT="eighty" is not valid: expected a whole number from 0 to 65535/,
    );
    expect(errorOf({ ALLOW_READS: 'yes' }).message).toMatch(
      /ALLOW_READS="yes" is not valid: expected `true` or `false`/,
    );
    expect(errorOf({ SCHEDULE: '0 0 * * *' }).message).toMatch(
      /SCHEDULE="0 0 \* \* \*" is not valid: expected a cron expression with seconds first/,
    );
    expect(errorOf({ BUILD_TIMEOUT: 'forever' }).message).toMatch(
      /BUILD_TIMEOUT="forever" is not valid: expected seconds, or a number with/,
    );
    expect(errorOf({ BUILD_TIMEOUT: '0' }).message).toMatch(/BUILD_TIMEOUT/);
    expect(errorOf({ CONCURRENT_BUILDS: '-1' }).message).toMatch(
      /CONCURRENT_BUILDS="-1" is not valid: expected a whole number from 0/,
    );
    expect(errorOf({ NAME: '../etc' }).message).toMatch(/NAME="..\/etc" is not valid/);
    expect(errorOf({ AUR_URL: 'aur.archlinux.org' }).message).toMatch(
      /AUR_URL="aur.archlinux.org" is not valid: expected a URL/,
    );
    expect(errorOf({ RUNNER_MEMORY: 'lots' }).message).toMatch(/RUNNER_MEMORY="lots"/);
    expect(errorOf({ LOG_LEVEL: 'verbose' }).message).toMatch(
      /LOG_LEVEL="verbose" is not valid: expected `error`, `warn`, `info`, `debug`/,
    );
    expect(errorOf({ DATABASE_URL: 'mysql://x/y' }).message).toMatch(/DATABASE_URL/);
    expect(errorOf({ RUNNER_PREFIX: 'bad name/' }).message).toMatch(/RUNNER_PREFIX/);
    expect(errorOf({ LOG_FORMAT: 'xml' }).name).toBe('InputError');
  });

  it("accepts every value the original's parser accepts, and nothing neither accepts", () => {
    // Rust's integer parsing takes a leading +, leading zeros, any value of the type
    expect(
      readConfig({
        PORT: '+0080',
        CONCURRENT_BUILDS: '+5000',
        AUR_REQUEST_TIMEOUT: '0',
        AUR_REQUEST_RETRIES: '4294967295',
        ARCH: 'x86_64_v3',
        OWN_REPOSITORY_URL: 'ftp://mirror.example/serene/x86_64',
      }),
    ).toMatchObject({
      port: 80,
      concurrentBuilds: 5000,
      aurRequestTimeoutMs: 0,
      aurRequestRetries: 4294967295,
      arch: 'x86_64_v3',
      ownRepositoryUrl: 'ftp://mirror.example/serene/x86_64',
    });
    // the original takes 0 and then builds nothing; here it is one at a time
    expect(readConfig({ CONCURRENT_BUILDS: '0' }).concurrentBuilds).toBe(1);
    for (const arch of ['armv7h', 'i686', 'pentium4', 'loong64', 'riscv64']) {
      expect(readConfig({ ARCH: arch }).arch).toBe(arch);
    }
    // neither takes these
    for (const [name, value] of [
      ['PORT', '65536'],
      ['PORT', ' 80'],
      ['PORT', '8.0'],
      ['PORT', '-80'],
      ['AUR_REQUEST_RETRIES', '4294967296'],
      ['ALLOW_READS', 'True'],
      ['ALLOW_READS', '1'],
      ['ARCH', 'x86/64'],
    ] as const) {
      expect(errorOf({ [name]: value }).message, `${name}=${value}`).toMatch(new RegExp(`${name}=`));
    }
    // no timeout unless one is set; failed packages are retried on schedule unless told otherwise
    expect(readConfig({}).buildTimeoutMs).toBeUndefined();
    expect(readConfig({}).skipFailedOnSchedule).toBe(false);
    expect(readConfig({ SCHEDULE_SKIP_FAILED: 'true' }).skipFailedOnSchedule).toBe(true);
  });

  it('reports every invalid variable at once', () => {
    const message = errorOf({ PORT: '-1', FORCE_CLEAN: '1', SCHEDULE_DEVEL: 'daily' }).message;
    expect(message).toMatch(/PORT/);
    expect(message).toMatch(/FORCE_CLEAN/);
    expect(message).toMatch(/SCHEDULE_DEVEL/);
  });

  it('treats an empty value as unset (compose files write VAR=)', () => {
    expect(readConfig({ PORT: '', WEBHOOK_SECRET: '' }).port).toBe(8080);
    expect(readConfig({ WEBHOOK_SECRET: '' }).webhookSecret).toBeUndefined();
  });

  it('honours RUST_LOG for compatibility; LOG_LEVEL wins', () => {
    expect(levelFromRustLog('serene=info')).toBe('info');
    expect(levelFromRustLog('warn')).toBe('warn');
    expect(levelFromRustLog('warn,serene=debug')).toBe('debug');
    expect(levelFromRustLog('serene::web=trace,info')).toBe('debug');
    expect(levelFromRustLog('actix=debug')).toBeUndefined();
    expect(levelFromRustLog('off')).toBe('error');
    expect(readConfig({ RUST_LOG: 'serene=warn' }).logLevel).toBe('warn');
    expect(readConfig({ RUST_LOG: 'serene=warn', LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
  });

  it('is frozen, and reads exactly the variables of SETTINGS', () => {
    const config = readConfig({}, '/srv');
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
    // a variable that is not declared is not read; every declared one is (and refused when invalid)
    expect(readConfig({ NOT_A_SETTING: 'x' }, '/srv')).toEqual(config);
    for (const variable of Object.values(SETTINGS)) {
      if (variable.name === 'RUST_LOG') continue; // read with LOG_LEVEL unset: tested below
      // free text: any value is taken
      const free = ['DATA_DIR', 'DATABASE_URL', 'AUTHORIZED_SECRETS', 'SIGN_KEY', 'HOST', 'WEBHOOK_SECRET'];
      free.push('SIGN_KEY_PASSWORD', 'RUNNER_IMAGE', 'DOCKER_URL', 'PACKAGER', 'RUNNER_NETWORK');
      if (free.includes(variable.name)) {
        expect(readConfig({ [variable.name]: 'x' }, '/srv'), variable.name).not.toEqual(config);
        continue;
      }
      expect(errorOf({ [variable.name]: '\u0000 nothing valid' }).message, variable.name).toContain(
        `${variable.name}=`,
      );
    }
  });
});

describe('ENGINES', () => {
  const engines = [
    { name: 'local', url: 'unix:///var/run/docker.sock', capacity: 2 },
    {
      url: 'tcp://build1.lan:2376',
      capacity: 3,
      labels: ['big'],
      tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' },
    },
    { name: 'pi', url: 'ssh://builder@pi.lan', arch: 'aarch64' },
  ];

  it('reads a JSON array of engines; the concurrency limit is the sum of their capacities unless set', () => {
    const config = readConfig(
      { ENGINES: JSON.stringify(engines), ENGINE_PINS: 'chromium=big, firefox=big' },
      '/srv',
    );
    expect(config.engines).toEqual([
      { name: 'local', url: 'unix:///var/run/docker.sock', capacity: 2, labels: [] },
      {
        name: 'engine-2',
        url: 'tcp://build1.lan:2376',
        capacity: 3,
        labels: ['big'],
        tls: { ca: 'ca.pem', cert: 'c.pem', key: 'k.pem' },
      },
      { name: 'pi', url: 'ssh://builder@pi.lan', arch: 'aarch64', capacity: 1, labels: [] },
    ]);
    expect(config.concurrentBuilds).toBe(6);
    expect(config.enginePins).toEqual({ chromium: 'big', firefox: 'big' });
    // ARCH, then the architectures engines declare: each its repository, ARCH's in today's folder
    expect(config.arches).toEqual(['x86_64', 'aarch64']);
    expect(config.repositoryDirs).toEqual({
      x86_64: '/srv/data/repository',
      aarch64: '/srv/data/repository-aarch64',
    });
    expect(readConfig({ ARCH: 'aarch64', ENGINES: JSON.stringify(engines) }, '/srv').arches).toEqual([
      'aarch64',
    ]);
    expect(readConfig({}, '/srv').arches).toEqual([readConfig({}, '/srv').arch]);
    expect(
      readConfig({ ENGINES: JSON.stringify(engines), CONCURRENT_BUILDS: '2' }, '/srv').concurrentBuilds,
    ).toBe(2);
    expect(readConfig({}, '/srv').engines).toBeUndefined();
  });

  it.each([
    ['[]', 'not a non-empty array'],
    ['{"url":"x"}', 'not a non-empty array'],
    ['[{"url":', 'not JSON'],
    ['[{"name":"a"}]', 'engine 1.url'],
    ['[{"url":"/s","capacity":0}]', 'engine 1.capacity'],
    ['[{"url":"/s","arch":"x86-64"}]', 'engine 1.arch'],
    ['[{"url":"/s","colour":"red"}]', 'engine 1'],
    ['[{"url":"ftp://x"}]', 'engine 1.url'],
    ['[{"url":"/s","tls":{"ca":"ca.pem"}}]', 'tls is for tcp://'],
    ['[{"url":"/a","name":"x"},{"url":"/b","name":"x"}]', "the name 'x' is used twice"],
  ])('refuses ENGINES=%s naming the cause (%s)', (value, cause) => {
    const message = errorOf({ ENGINES: value }).message;
    expect(message).toContain('ENGINES=');
    expect(message).toContain(cause);
  });

  it('refuses DOCKER_URL with ENGINES, and a malformed ENGINE_PINS', () => {
    expect(errorOf({ ENGINES: '[{"url":"/s"}]', DOCKER_URL: '/t' }).message).toContain(
      'ENGINES replaces DOCKER_URL',
    );
    expect(errorOf({ ENGINE_PINS: 'chromium' }).message).toContain("'chromium' is not pkgbase=label");
  });
});

describe('docs/configuration.md', () => {
  it('has the table of SETTINGS (paste the expected table when a setting was added)', async () => {
    const fs = await import('node:fs/promises');
    const doc = await fs.readFile(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    const table = configurationTable();
    const start = doc.indexOf('| variable | from | default | meaning |');
    const end = doc.indexOf('\n\n', start);
    expect(doc.slice(start, end === -1 ? undefined : end)).toBe(table);
    expect(VARIABLES.length).toBe(table.split('\n').length - 2);
  });
});

describe('docs/api.md', () => {
  it('is the rendering of the OpenAPI document the server serves (node scripts/gen-api-doc.mjs)', async () => {
    const fs = await import('node:fs/promises');
    // @ts-expect-error: a plain .mjs script without types
    const { renderApiDoc } = await import('../../../scripts/gen-api-doc.mjs');
    const doc = await fs.readFile(new URL('../../../docs/api.md', import.meta.url), 'utf8');
    expect(doc).toBe(renderApiDoc());
  });
});
