/**
 * How the client shows things: aligned tables, build states, times and sizes, and colours only on
 * a terminal.
 */
import type { CliIo } from './io.js';
import type { BuildInfo, BuildState } from './wire.js';

/** ANSI styles, or nothing when the output is not a terminal (or `NO_COLOR` is set). */
export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  green(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  blue(text: string): string;
}

/** The style of `io`'s standard output. */
export function styleFor(io: CliIo): Style {
  const on = io.stdoutIsTTY === true && !io.env.NO_COLOR;
  const wrap = (open: number, close: number) => (text: string) =>
    on ? `\x1b[${open}m${text}\x1b[${close}m` : text;
  return {
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    green: wrap(32, 39),
    red: wrap(31, 39),
    yellow: wrap(33, 39),
    blue: wrap(34, 39),
  };
}

// --- tables ---

/** The visible width of a text, without ANSI styles. */
function width(text: string): number {
  return [...text.replace(/\x1b\[[0-9;]*m/g, '')].length;
}

/**
 * Plain aligned columns, two spaces apart, the last one not padded: easy to read and to cut with
 * `awk`. The header goes first.
 */
export function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  style?: Style,
): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => width(row[column] ?? ''))));
  const line = (row: readonly string[]) =>
    row
      .map((cell, column) =>
        column === row.length - 1 ? cell : cell + ' '.repeat((widths[column] ?? 0) - width(cell)),
      )
      .join('  ')
      .trimEnd();
  const head = line(header);
  return [style ? style.bold(head) : head, ...rows.map(line)].map((text) => `${text}\n`).join('');
}

// --- build states ---

/** A state in one word for lists: pending, aborted, working, passing, failing, fatal (the original's). */
export function stateWord(state: BuildState | undefined): string {
  switch (state?.state) {
    case undefined:
      return 'none';
    case 'pending':
      return 'pending';
    case 'cancelled':
      return 'aborted';
    case 'running':
      return 'working';
    case 'success':
      return 'passing';
    case 'failure':
      return 'failing';
    case 'fatal':
      return 'fatal';
  }
}

/** A state for details and progress: `running (build)`, `fatal (publish): message`. */
export function describeState(state: BuildState): string {
  switch (state.state) {
    case 'running':
      return `running (${state.info})`;
    case 'cancelled':
      return `cancelled: ${state.info}`;
    case 'fatal':
      return `fatal (${state.info[1]}): ${state.info[0]}`;
    default:
      return state.state;
  }
}

/** The state word coloured by outcome. */
export function colourState(word: string, style: Style): string {
  if (word === 'passing' || word === 'success') return style.green(word);
  if (word === 'failing' || word === 'failure' || word === 'fatal') return style.red(word);
  if (word === 'working' || word === 'running' || word === 'pending') return style.blue(word);
  if (word === 'aborted' || word === 'cancelled') return style.yellow(word);
  return word;
}

// --- times and sizes ---

/** A time in the local time zone: `2025-03-08 13:00:01`. */
export function localTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** A duration in its two largest units: `45s`, `3m 20s`, `2h 5m`, `4d 1h`. */
export function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const units: [number, string][] = [
    [86_400, 'd'],
    [3600, 'h'],
    [60, 'm'],
    [1, 's'],
  ];
  const parts: string[] = [];
  let rest = seconds;
  for (const [size, unit] of units) {
    if (rest >= size || (unit === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
    if (parts.length === 2) break;
    if (parts.length === 1 && rest === 0) break;
  }
  return parts.join(' ');
}

/** How long ago a build ended (or started, while it runs), from `now`. */
export function buildAgo(build: BuildInfo, now: Date): string {
  const at = new Date(build.ended ?? build.started).getTime();
  return `${duration(now.getTime() - at)} ago`;
}

/** How long a build took (or has been running). */
export function buildDuration(build: BuildInfo, now: Date): string {
  const end = build.ended ? new Date(build.ended) : now;
  return duration(end.getTime() - new Date(build.started).getTime());
}

/** Bytes in binary units: `512 B`, `1.5 MiB`. */
export function bytes(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let amount = value;
  let unit = 0;
  while (amount >= 1024 && unit < units.length - 1) {
    amount /= 1024;
    unit++;
  }
  return unit === 0 ? `${amount} B` : `${amount.toFixed(1)} ${units[unit]}`;
}

/** A build id as the original shows it: its index from the oldest, four digits. */
export function buildId(index: number): string {
  return String(index).padStart(4, '0');
}
