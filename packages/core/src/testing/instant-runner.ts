import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Runner, RunnerJob, RunOptions, RunResult } from '../contracts/runner.js';
import { PluginError } from '../errors.js';
import { memberArch, parseSrcinfo, srcinfoVersion } from '../pacman/srcinfo.js';
import { writeSyntheticPackage } from './synthetic-package.js';

/** What the instant runner does for one job. */
export type InstantBehaviour =
  | 'success'
  /** exits non-zero */
  | 'failure'
  /** runs until cancelled or timed out */
  | 'hang'
  /** rejects as if the engine were unreachable */
  | 'unreachable';

/** Options of {@link createInstantRunner}. */
export interface InstantRunnerOptions {
  /** @default 'x86_64' */
  arch?: string;
  /** what to do per package base @default () => 'success' */
  behaviour?: (job: RunnerJob) => InstantBehaviour;
  /** time a successful build takes @default 0 */
  delayMs?: number;
  /** replaces the `.SRCINFO` the build reports (to test version checks) */
  reportSrcinfo?: (job: RunnerJob, srcinfo: string) => string;
}

/** An {@link createInstantRunner} with what it saw. */
export interface InstantRunner extends Runner {
  /** bases in the order their runs started */
  readonly started: string[];
  /** the most runs that were in flight at once */
  readonly maxConcurrent: number;
  /** jobs it was given, in order */
  readonly jobs: RunnerJob[];
}

/**
 * A {@link Runner} for orchestration tests and benchmarks: no makepkg, no containers. It reads the
 * `.SRCINFO` in the job's source folder and writes small but valid packages for its members, so
 * the publisher and pacman see real package files.
 */
export function createInstantRunner(options: InstantRunnerOptions = {}): InstantRunner {
  const arch = options.arch ?? 'x86_64';
  const started: string[] = [];
  const jobs: RunnerJob[] = [];
  let inFlight = 0;
  let maxConcurrent = 0;

  const runner: InstantRunner = {
    name: 'instant',
    started,
    jobs,
    get maxConcurrent() {
      return maxConcurrent;
    },

    async run(job: RunnerJob, runOptions: RunOptions = {}): Promise<RunResult> {
      const behaviour = options.behaviour?.(job) ?? 'success';
      if (behaviour === 'unreachable') {
        throw new PluginError('instant', 'cannot reach the build engine at unix:///nowhere.sock');
      }
      const begin = new Date();
      started.push(job.base);
      jobs.push(job);
      inFlight++;
      maxConcurrent = Math.max(maxConcurrent, inFlight);
      try {
        const log = (text: string) => runOptions.onLog?.(text);
        log(`==> Making package: ${job.base}\n`);
        const outcome = await new Promise<'done' | 'timeout' | 'cancelled'>((resolve) => {
          let timer: NodeJS.Timeout | undefined;
          let immediate: NodeJS.Immediate | undefined;
          let limit: NodeJS.Timeout | undefined;
          const finish = (value: 'done' | 'timeout' | 'cancelled') => {
            clearTimeout(timer);
            if (immediate) clearImmediate(immediate);
            clearTimeout(limit);
            runOptions.signal?.removeEventListener('abort', onAbort);
            resolve(value);
          };
          const onAbort = () => finish('cancelled');
          if (runOptions.signal?.aborted) return finish('cancelled');
          runOptions.signal?.addEventListener('abort', onAbort, { once: true });
          const delayMs = options.delayMs ?? 0;
          if (behaviour !== 'hang') {
            // without a delay, the next turn of the event loop: a 0 ms timer would wait 1 ms
            if (delayMs > 0) timer = setTimeout(() => finish('done'), delayMs);
            else immediate = setImmediate(() => finish('done'));
          }
          if (job.timeoutMs !== undefined) limit = setTimeout(() => finish('timeout'), job.timeoutMs);
        });
        const base = { started: begin, ended: new Date(), logs: '', stats: null };
        if (outcome !== 'done') {
          return { ...base, success: false, exitCode: null, aborted: outcome, srcinfo: null, packages: [] };
        }
        if (behaviour === 'failure') {
          log('==> ERROR: A failure occurred in build().\n');
          return { ...base, success: false, exitCode: 4, srcinfo: null, packages: [] };
        }
        const text = await fs.readFile(path.join(job.sourceDir, '.SRCINFO'), 'utf8');
        const srcinfo = parseSrcinfo(text);
        const version = srcinfoVersion(srcinfo);
        const packages: string[] = [];
        for (const member of srcinfo.packages) {
          packages.push(
            await writeSyntheticPackage(job.outputDir, {
              name: member.pkgname,
              base: srcinfo.base.pkgbase,
              version,
              arch: memberArch(member, job.arch ?? arch),
              depends: member.depends,
              provides: member.provides,
            }),
          );
        }
        log('==> Finished making\n');
        return {
          ...base,
          ended: new Date(),
          success: true,
          exitCode: 0,
          srcinfo: options.reportSrcinfo?.(job, text) ?? text,
          packages,
        };
      } finally {
        inFlight--;
      }
    },

    async printSrcinfo(sourceDir: string): Promise<string> {
      return fs.readFile(path.join(sourceDir, '.SRCINFO'), 'utf8');
    },
  };
  return runner;
}
