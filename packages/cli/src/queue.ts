/**
 * `serene queue`, `serene cancel` and `serene list --builds`: the operator's commands beyond the
 * original CLI, against `GET /queue`, `POST /package/{name}/cancel` and `GET /builds`.
 */
import type { Command } from 'commander';
import { segment } from './api.js';
import { apiAction, type ClientContext, UsageError } from './client.js';
import {
  buildDuration,
  colourState,
  describeState,
  duration,
  localTime,
  stateWord,
  styleFor,
  table,
} from './format.js';
import { EXIT_OK } from './io.js';
import type { QueueEntry, RecentBuild } from './wire.js';

/** `serene queue`: the builds queued and running, oldest first. */
export async function showQueue(context: ClientContext): Promise<number> {
  const { io, api } = context;
  const queue = await api.json<QueueEntry[]>('GET', '/queue');
  if (queue.length === 0) {
    io.stderr('no builds are queued or running\n');
    return EXIT_OK;
  }
  const style = styleFor(io);
  const now = new Date();
  const rows = queue.map((entry) => [
    entry.base,
    colourState(entry.phase === 'running' ? 'running' : 'pending', style),
    entry.phase === 'waiting' && entry.waiting_for.length > 0
      ? `waiting for ${entry.waiting_for.join(', ')}`
      : entry.phase === 'queued'
        ? 'waiting for a build slot'
        : entry.state.state === 'running'
          ? entry.state.info
          : entry.phase,
    entry.reason,
    entry.engine ?? '-',
    entry.architecture,
    duration(now.getTime() - new Date(entry.started).getTime()),
  ]);
  io.stdout(table(['name', 'state', 'step', 'reason', 'engine', 'arch', 'for'], rows, style));
  return EXIT_OK;
}

/** `serene cancel <names...>`: cancels the queued or running build of each package. */
export async function cancelBuilds(context: ClientContext, names: readonly string[]): Promise<number> {
  const { io, api } = context;
  for (const name of names) {
    const entry = await api.json<QueueEntry>('POST', `/package/${segment(name)}/cancel`);
    io.stdout(`cancelled the ${entry.phase === 'running' ? 'running' : 'queued'} build of ${name}\n`);
  }
  return EXIT_OK;
}

/** `serene list --builds`: the newest builds of every package, newest first. */
export async function listRecentBuilds(context: ClientContext, count: number): Promise<number> {
  const { io, api } = context;
  const builds = await api.json<RecentBuild[]>('GET', `/builds?count=${count}`);
  if (builds.length === 0) {
    io.stderr('no builds yet\n');
    return EXIT_OK;
  }
  const style = styleFor(io);
  const now = new Date();
  // a server of several architectures: which one each build was for
  const arches = new Set(builds.map((build) => build.architecture));
  const name = (build: RecentBuild) =>
    arches.size > 1 ? `${build.base} (${build.architecture})` : build.base;
  const rows = builds.map((build) => [
    localTime(build.started),
    name(build),
    colourState(stateWord(build.state), style),
    build.version ?? '-',
    build.reason,
    build.engine ?? '-',
    buildDuration(build, now),
    build.state.state === 'cancelled' || build.state.state === 'fatal' ? describeState(build.state) : '',
  ]);
  io.stdout(
    table(['started', 'name', 'build', 'version', 'reason', 'engine', 'took', 'message'], rows, style),
  );
  return EXIT_OK;
}

/** The `--count` of `list --builds`: 1 to 1000. */
export function parseCount(text: string): number {
  if (!/^\d{1,4}$/.test(text) || Number(text) < 1 || Number(text) > 1000) {
    throw new UsageError(`--count must be a number from 1 to 1000, not '${text}'`);
  }
  return Number(text);
}

/** Registers `queue` and `cancel` on `program`. */
export function registerQueueCommands(
  program: Command,
  io: Parameters<typeof apiAction>[0],
  setExitCode: (code: number) => void,
): void {
  program
    .command('queue')
    .description('show the builds queued and running on the server')
    .action(apiAction(io, setExitCode, (context) => showQueue(context)));

  program
    .command('cancel')
    .description('cancel the queued or running build of packages')
    .argument('<names...>', 'package bases')
    .action(apiAction(io, setExitCode, (context, names: string[]) => cancelBuilds(context, names)));
}
