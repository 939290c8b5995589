/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4). Updating a metric is a map lookup and an addition, cheap
 * enough for every request; gauges that describe other components (engine lanes, WAL backlog,
 * memory) are read when scraped, through collectors.
 */

type Labels = Record<string, string>;

/** Label values as one map key; the order of the metric's label names. */
function keyOf(names: readonly string[], labels: Labels): string {
  let k = '';
  for (const n of names) k += (labels[n] ?? '') + '\u0001';
  return k;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(names: readonly string[], values: readonly string[], extra?: string): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i])}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  return Number.isInteger(v) ? String(v) : v.toPrecision(12).replace(/\.?0+$/, '');
}

interface Metric {
  render(out: string[]): void;
}

abstract class Labelled<T> implements Metric {
  protected readonly series = new Map<string, { values: string[]; state: T }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly type: string,
  ) {}

  protected get(labels: Labels): T {
    const k = keyOf(this.labelNames, labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { values: this.labelNames.map((n) => labels[n] ?? ''), state: this.initial() }));
    return s.state;
  }

  protected abstract initial(): T;
  protected abstract lines(values: string[], state: T, out: string[]): void;

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`);
    for (const s of this.series.values()) this.lines(s.values, s.state, out);
  }
}

export class Counter extends Labelled<{ v: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames, 'counter');
  }
  inc(labels: Labels = {}, by = 1): void {
    this.get(labels).v += by;
  }
  protected initial() {
    return { v: 0 };
  }
  protected lines(values: string[], s: { v: number }, out: string[]): void {
    out.push(`${this.name}${labelText(this.labelNames, values)} ${num(s.v)}`);
  }
}

export class Gauge extends Labelled<{ v: number }> {
  constructor(name: string, help: string, labelNames: readonly string[] = []) {
    super(name, help, labelNames, 'gauge');
  }
  set(labels: Labels, v: number): void {
    this.get(labels).v = v;
  }
  protected initial() {
    return { v: 0 };
  }
  protected lines(values: string[], s: { v: number }, out: string[]): void {
    out.push(`${this.name}${labelText(this.labelNames, values)} ${num(s.v)}`);
  }
}

/** Default buckets in seconds: 1 ms to 30 s. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface HistState {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Labelled<HistState> {
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    private readonly buckets: readonly number[] = LATENCY_BUCKETS,
  ) {
    super(name, help, labelNames, 'histogram');
  }
  observe(labels: Labels, v: number): void {
    const s = this.get(labels);
    s.sum += v;
    s.count++;
    for (let i = 0; i < this.buckets.length; i++) {
      if (v <= this.buckets[i]) {
        s.counts[i]++;
        return;
      }
    }
  }
  protected initial(): HistState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }
  protected lines(values: string[], s: HistState, out: string[]): void {
    let cum = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      cum += s.counts[i];
      out.push(`${this.name}_bucket${labelText(this.labelNames, values, `le="${num(this.buckets[i])}"`)} ${cum}`);
    }
    out.push(`${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${s.count}`);
    out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${num(s.sum)}`);
    out.push(`${this.name}_count${labelText(this.labelNames, values)} ${s.count}`);
  }
}

/** Metrics of one server process; `collect` callbacks refresh gauges just before a scrape. */
export class Registry {
  private readonly metrics: Metric[] = [];
  private readonly collectors: Array<() => void> = [];

  counter(name: string, help: string, labels: readonly string[] = []): Counter {
    const m = new Counter(name, help, labels);
    this.metrics.push(m);
    return m;
  }

  gauge(name: string, help: string, labels: readonly string[] = []): Gauge {
    const m = new Gauge(name, help, labels);
    this.metrics.push(m);
    return m;
  }

  histogram(name: string, help: string, labels: readonly string[] = [], buckets?: readonly number[]): Histogram {
    const m = new Histogram(name, help, labels, buckets);
    this.metrics.push(m);
    return m;
  }

  onCollect(fn: () => void): void {
    this.collectors.push(fn);
  }

  /** The text exposition format. */
  render(): string {
    for (const c of this.collectors) c();
    const out: string[] = [];
    for (const m of this.metrics) m.render(out);
    return `${out.join('\n')}\n`;
  }
}

/** Prometheus' content type for the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
