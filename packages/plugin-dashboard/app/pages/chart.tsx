/**
 * The build history chart: the duration and the peak memory of each build, oldest on the left, as
 * two rows of bars in one inline SVG (no chart library: two bar rows are a few lines). The table
 * under it holds the same numbers for screen readers and copying.
 */
import type { BuildInfo } from '../types';
import { bytes, duration, stateWord, took } from '../util';

const WIDTH = 640;
const ROW = 70;

export function HistoryChart({ builds }: { builds: BuildInfo[] }) {
  const done = builds
    .filter((build) => build.ended !== null)
    .slice(0, 40)
    .reverse();
  if (done.length === 0) return <p class="muted">No finished builds to chart yet.</p>;
  const times = done.map((build) => took(build));
  const memory = done.map((build) => build.mem_peak ?? 0);
  const maxTime = Math.max(...times, 1);
  const maxMemory = Math.max(...memory, 1);
  const step = WIDTH / done.length;
  const bar = Math.max(2, Math.min(24, step * 0.7));
  const label = `Last ${done.length} builds: durations up to ${duration(maxTime)}, peak memory up to ${bytes(maxMemory)}`;
  const bars = (
    values: number[],
    max: number,
    className: (i: number) => string,
    text: (i: number) => string,
  ) => (
    <svg viewBox={`0 0 ${WIDTH} ${ROW}`} preserveAspectRatio="none" aria-hidden="true">
      {values.map((value, i) => {
        if (value <= 0) return null;
        const height = Math.max(1.5, (value / max) * (ROW - 4));
        return (
          <rect
            key={done[i]!.started}
            class={`bar ${className(i)}`}
            x={i * step + (step - bar) / 2}
            y={ROW - height}
            width={bar}
            height={height}
          >
            <title>{text(i)}</title>
          </rect>
        );
      })}
      <line class="base" x1="0" x2={WIDTH} y1={ROW - 0.5} y2={ROW - 0.5} />
    </svg>
  );
  const when = (i: number) => new Date(done[i]!.started).toLocaleString();
  const measured = memory.some((value) => value > 0);
  return (
    <figure class="chart" role="img" aria-label={label}>
      <div class="axis">Duration (longest {duration(maxTime)})</div>
      {bars(
        times,
        maxTime,
        (i) => `s-${stateWord(done[i]!.state)}`,
        (i) => `${when(i)}: ${duration(times[i]!)} (${stateWord(done[i]!.state)})`,
      )}
      <div class="axis">
        Peak memory {measured ? `(largest ${bytes(maxMemory)})` : '(not measured by this runner)'}
      </div>
      {measured &&
        bars(
          memory,
          maxMemory,
          () => 'memory',
          (i) => `${when(i)}: ${bytes(memory[i]!)}`,
        )}
      <figcaption class="muted">Oldest on the left; hover a bar for its build.</figcaption>
    </figure>
  );
}
