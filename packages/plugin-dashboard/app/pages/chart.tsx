/**
 * The build history chart: the duration and the peak memory of each build, oldest on the left, as
 * two rows of bars in one inline SVG (no chart library: two bar rows are a few lines). The table
 * under it holds the same numbers for screen readers and copying.
 */
import type { BuildInfo } from '../types';
import { bytes, duration, stateWord, took } from '../util';

const WIDTH = 640;
const ROW = 70;
const GAP = 26;

export function HistoryChart({ builds }: { builds: BuildInfo[] }) {
  const done = builds.filter((build) => build.ended !== null).slice(0, 40).reverse();
  if (done.length === 0) return <p class="muted">No finished builds to chart yet.</p>;
  const times = done.map((build) => took(build));
  const memory = done.map((build) => build.mem_peak ?? 0);
  const maxTime = Math.max(...times, 1);
  const maxMemory = Math.max(...memory, 1);
  const step = WIDTH / done.length;
  const bar = Math.max(2, Math.min(24, step * 0.7));
  const label = `Last ${done.length} builds: durations up to ${duration(maxTime)}, peak memory up to ${bytes(maxMemory)}`;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${WIDTH} ${ROW * 2 + GAP * 2}`} role="img" aria-label={label} preserveAspectRatio="none">
        <text x="0" y="12" class="axis">
          Duration (max {duration(maxTime)})
        </text>
        <text x="0" y={ROW + GAP + 12} class="axis">
          Peak memory (max {memory.some((value) => value > 0) ? bytes(maxMemory) : 'not measured'})
        </text>
        {done.map((build, i) => {
          const x = i * step + (step - bar) / 2;
          const h1 = Math.max(1, (times[i]! / maxTime) * (ROW - 8));
          const h2 = memory[i]! > 0 ? Math.max(1, (memory[i]! / maxMemory) * (ROW - 8)) : 0;
          const word = stateWord(build.state);
          return (
            <g key={build.started}>
              <rect class={`bar s-${word}`} x={x} y={GAP + ROW - h1} width={bar} height={h1}>
                <title>{`${new Date(build.started).toLocaleString()}: ${duration(times[i]!)} (${word})`}</title>
              </rect>
              {h2 > 0 && (
                <rect class="bar memory" x={x} y={GAP * 2 + ROW * 2 - h2} width={bar} height={h2}>
                  <title>{`${new Date(build.started).toLocaleString()}: ${bytes(memory[i]!)}`}</title>
                </rect>
              )}
            </g>
          );
        })}
        <line class="base" x1="0" x2={WIDTH} y1={GAP + ROW} y2={GAP + ROW} />
        <line class="base" x1="0" x2={WIDTH} y1={GAP * 2 + ROW * 2} y2={GAP * 2 + ROW * 2} />
      </svg>
      <figcaption class="muted">Oldest on the left; hover a bar for its build.</figcaption>
    </figure>
  );
}
