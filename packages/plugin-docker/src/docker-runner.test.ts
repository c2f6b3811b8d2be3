// Unit tests with a fake dockerode (STYLE P11); the real engine is in docker-runner.engine.test.ts.
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createMemoryLogger, type RunnerJob } from '@serene/core';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerRunner, DockerUnreachableError } from './docker-runner.js';

/** A dockerode stand-in whose engine refuses every connection, recording how it was made. */
function refusingLib() {
  const made: Record<string, unknown>[] = [];
  class FakeDocker {
    constructor(options: Record<string, unknown>) {
      made.push(options);
    }
    ping(): Promise<never> {
      const error = Object.assign(new Error('connect ECONNREFUSED /nowhere.sock'), {
        code: 'ECONNREFUSED',
        syscall: 'connect',
      });
      return Promise.reject(error);
    }
    getImage() {
      return { inspect: () => this.ping() };
    }
  }
  return { made, lib: FakeDocker as unknown as typeof Dockerode };
}

let dir: string;
let job: RunnerJob;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'serene-docker-unit-'));
  await fs.writeFile(path.join(dir, 'PKGBUILD'), 'pkgname=x\n');
  job = {
    base: 'x',
    sourceDir: dir,
    outputDir: path.join(dir, 'out'),
    inputs: { customRepo: '', prepare: '', makepkgFlags: '' },
    clean: false,
  };
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('createDockerRunner (fake engine)', () => {
  it('does no I/O until first use, then connects where the URL says', async () => {
    const { made, lib } = refusingLib();
    const runner = createDockerRunner({ url: 'tcp://10.1.2.3:2375', lib });
    expect(runner.name).toBe('docker');
    expect(runner.endpoint).toBe('http://10.1.2.3:2375');
    expect(made).toEqual([]);
    await expect(runner.run(job)).rejects.toThrow();
    expect(made).toHaveLength(1);
    expect(made[0]).toMatchObject({ host: '10.1.2.3', port: 2375, protocol: 'http', socketPath: undefined });
  });

  it('fails builds with a message that names the engine, and never fails the chores', async () => {
    const records = createMemoryLogger();
    const { lib } = refusingLib();
    const runner = createDockerRunner({ url: '/nowhere.sock', lib, logger: records });
    const error = await runner.run(job).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(DockerUnreachableError);
    expect((error as DockerUnreachableError).code).toBe('SERENE_ERR_DOCKER_UNREACHABLE');
    expect((error as Error).message).toMatch(
      /^plugin 'docker': cannot reach the Docker Engine at unix:\/\/\/nowhere\.sock \(connect ECONNREFUSED/,
    );
    await expect(runner.printSrcinfo(dir)).rejects.toBeInstanceOf(DockerUnreachableError);
    await expect(runner.remove('x')).rejects.toBeInstanceOf(DockerUnreachableError);
    expect(await runner.pullImage()).toBe(false);
    expect(await runner.removeLeftovers()).toEqual([]);
    expect(records.records.map((record) => record.level)).toEqual(['error', 'warn']);
  });

  it('rejects a job whose source folder is missing as an input error', async () => {
    const { lib } = refusingLib();
    const runner = createDockerRunner({ lib });
    await expect(runner.run({ ...job, sourceDir: path.join(dir, 'missing') })).rejects.toMatchObject({
      name: 'InputError',
    });
  });

  it('refuses work after dispose', async () => {
    const { lib } = refusingLib();
    const runner = createDockerRunner({ lib });
    await runner.dispose?.();
    await runner.dispose?.();
    await expect(runner.run(job)).rejects.toThrow(/disposed/);
  });
});
