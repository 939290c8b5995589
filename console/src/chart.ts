/**
 * Charts with uPlot (canvas, ~50 KB, no dependencies; see docs/console.md for the choice):
 * line, bar or area of one or more numeric columns over an x column. A Date/DateTime x is a time
 * axis; a text x becomes evenly spaced categories labelled with their values.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export type ChartKind = 'line' | 'bar' | 'area';

const COLORS = ['#2f6f5e', '#d9822b', '#3b6fb6', '#b6456a', '#7a5cc4', '#5b8c2a', '#9c6b30', '#2a8c8c'];

export function isNumericType(t: string): boolean {
  return /^(Nullable\()?(LowCardinality\()?(U?Int\d+|Float\d+|BFloat16|Decimal)/.test(t);
}

export function isTimeType(t: string): boolean {
  return /^(Nullable\()?(Date|Date32|DateTime|DateTime64)\b/.test(t);
}

function toEpochSeconds(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  const s = String(v);
  // ClickHouse JSON: 'YYYY-MM-DD' or 'YYYY-MM-DD hh:mm:ss[.fff]' in UTC
  const iso = s.length === 10 ? `${s}T00:00:00Z` : `${s.replace(' ', 'T')}Z`;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms / 1000;
}

function toNumber(v: unknown): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}

export interface ChartSpec {
  kind: ChartKind;
  x: string;
  ys: string[];
}

export interface ChartData {
  meta: Array<{ name: string; type: string }>;
  data: Array<Record<string, unknown>>;
}

/** Draws the chart into `el` (replacing what was there); returns a function that removes it. */
export function drawChart(el: HTMLElement, result: ChartData, spec: ChartSpec): () => void {
  el.replaceChildren();
  const xType = result.meta.find((m) => m.name === spec.x)?.type ?? 'String';
  // Bars stand on categories (one slot per row, labelled with its x value); lines and areas use a
  // time or number axis when the x column is one.
  const time = isTimeType(xType) && spec.kind !== 'bar';
  const numericX = isNumericType(xType) && spec.kind !== 'bar';
  let rowsSorted = result.data;
  let labels: string[] = [];
  let xs: number[];
  if (isTimeType(xType)) rowsSorted = [...result.data].sort((a, b) => (toEpochSeconds(a[spec.x]) ?? 0) - (toEpochSeconds(b[spec.x]) ?? 0));
  else if (isNumericType(xType)) rowsSorted = [...result.data].sort((a, b) => (toNumber(a[spec.x]) ?? 0) - (toNumber(b[spec.x]) ?? 0));
  if (time) xs = rowsSorted.map((r) => toEpochSeconds(r[spec.x]) ?? 0);
  else if (numericX) xs = rowsSorted.map((r) => toNumber(r[spec.x]) ?? 0);
  else {
    labels = rowsSorted.map((r) => String(r[spec.x] ?? ''));
    xs = labels.map((_, i) => i);
  }
  const data: uPlot.AlignedData = [xs, ...spec.ys.map((y) => rowsSorted.map((r) => toNumber(r[y])))];
  // Grouped bars: in each category slot (0.7 wide), series j takes the j-th of k equal columns.
  const k = spec.ys.length;
  const barWidth = 0.7 / k;
  const bars = (j: number) =>
    uPlot.paths.bars!({
      size: [1, Infinity],
      disp: {
        x0: { unit: 1, values: () => xs.map((x) => x - 0.35 + j * barWidth) },
        size: { unit: 1, values: () => [barWidth] },
      },
    });
  const series: uPlot.Series[] = [
    time ? {} : { label: spec.x, value: (_u, v) => (v === null ? '—' : numericX ? String(v) : (labels[v] ?? '')) },
    ...spec.ys.map((y, i): uPlot.Series => {
      const color = COLORS[i % COLORS.length];
      return {
        label: y,
        stroke: color,
        width: spec.kind === 'bar' ? 0 : 2,
        fill: spec.kind === 'line' ? undefined : `${color}${spec.kind === 'bar' ? 'dd' : '40'}`,
        paths: spec.kind === 'bar' ? bars(i) : undefined,
        points: { show: spec.kind !== 'bar' && xs.length < 60 },
        spanGaps: false,
      };
    }),
  ];
  const width = Math.max(320, el.clientWidth || el.parentElement?.clientWidth || 800);
  const opts: uPlot.Options = {
    width,
    height: 320,
    series,
    scales: { x: { time, ...(!time && !numericX ? { range: (_u, min, max) => [min - 0.5, max + 0.5] as uPlot.Range.MinMax } : {}) } },
    axes: [
      time
        ? {}
        : {
            values: (_u, ticks) => ticks.map((t) => (numericX ? String(t) : Number.isInteger(t) ? (labels[t] ?? '') : '')),
            ...(numericX ? {} : { splits: () => xs }),
          },
      { size: 60 },
    ],
    cursor: { drag: { x: true, y: false } },
    legend: { show: true },
  };
  const plot = new uPlot(opts, data, el);
  const onResize = () => plot.setSize({ width: Math.max(320, el.clientWidth || width), height: 320 });
  window.addEventListener('resize', onResize);
  return () => {
    window.removeEventListener('resize', onResize);
    plot.destroy();
  };
}
