/**
 * A query result: statistics (elapsed, rows and bytes read), a table, and a chart of picked
 * columns (line, bar or area). Used by the SQL page, every pipe node and the endpoint preview.
 */
import type { QueryResult } from './api';
import { drawChart, isNumericType, isTimeType, type ChartKind } from './chart';
import { clear, formatBytes, formatNumber, formatSeconds, h } from './dom';

const MAX_TABLE_ROWS = 500;

function cell(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function resultTable(r: { meta: QueryResult['meta']; data: QueryResult['data'] }, max = MAX_TABLE_ROWS): HTMLElement {
  const shown = r.data.slice(0, max);
  return h(
    'div',
    { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Result rows' },
    h(
      'table',
      { class: 'data' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          r.meta.map((m) => h('th', { scope: 'col', title: m.type }, m.name, h('span', { class: 'type' }, m.type))),
        ),
      ),
      h(
        'tbody',
        null,
        shown.map((row) =>
          h(
            'tr',
            null,
            r.meta.map((m) => {
              const v = row[m.name];
              return h('td', { class: v === null ? 'null' : isNumericType(m.type) ? 'num' : '' }, cell(v));
            }),
          ),
        ),
      ),
    ),
    r.data.length > max ? h('p', { class: 'muted' }, `Showing ${max} of ${r.data.length} rows.`) : null,
  );
}

export function statsLine(r: QueryResult): HTMLElement {
  const s = r.statistics;
  return h(
    'p',
    { class: 'stats', 'data-testid': 'stats' },
    h('span', null, `${formatNumber(r.rows)} row${r.rows === 1 ? '' : 's'}`),
    r.rows_before_limit_at_least !== undefined ? h('span', null, `${formatNumber(r.rows_before_limit_at_least)} before LIMIT`) : null,
    s ? h('span', null, `elapsed ${formatSeconds(s.elapsed)}`) : null,
    s ? h('span', null, `${formatNumber(s.rows_read)} rows read`) : null,
    s ? h('span', null, `${formatBytes(s.bytes_read)} read`) : null,
  );
}

let idSeq = 0;

/** The result view with Table and Chart tabs; the chart's columns are picked from the result. */
export function resultView(r: QueryResult | string, opts: { chart?: boolean; initial?: 'table' | 'chart' } = {}): HTMLElement {
  if (typeof r === 'string') return h('pre', { class: 'raw', tabindex: '0' }, r);
  const id = ++idSeq;
  const root = h('div', { class: 'result' });
  const numeric = r.meta.filter((m) => isNumericType(m.type)).map((m) => m.name);
  const canChart = opts.chart !== false && r.meta.length >= 2 && numeric.length >= 1 && r.data.length > 0;
  const body = h('div', { class: 'result-body' });
  let undraw: (() => void) | null = null;

  const xDefault = r.meta.find((m) => isTimeType(m.type))?.name ?? r.meta.find((m) => !isNumericType(m.type))?.name ?? r.meta[0].name;
  let kind: ChartKind = 'line';
  let x = xDefault;
  let ys = numeric.filter((n) => n !== x).slice(0, 4);
  if (!ys.length) ys = numeric.slice(0, 1);

  const tabTable = h('button', { type: 'button', role: 'tab', id: `rt-table-${id}`, class: 'tab' }, 'Table');
  const tabChart = h(
    'button',
    {
      type: 'button',
      role: 'tab',
      id: `rt-chart-${id}`,
      class: 'tab',
      disabled: !canChart,
      title: canChart ? '' : 'A chart needs a numeric column and another column',
    },
    'Chart',
  );

  const chartControls = (): HTMLElement => {
    const kindSel = h(
      'select',
      { 'aria-label': 'Chart type', name: 'chart-kind' },
      (['line', 'bar', 'area'] as const).map((k) => h('option', { value: k, selected: k === kind }, k)),
    );
    kindSel.value = kind;
    kindSel.addEventListener('change', () => {
      kind = kindSel.value as ChartKind;
      draw();
    });
    const xSel = h(
      'select',
      { 'aria-label': 'X axis column', name: 'chart-x' },
      r.meta.map((m) => h('option', { value: m.name }, m.name)),
    );
    xSel.value = x;
    xSel.addEventListener('change', () => {
      x = xSel.value;
      draw();
    });
    const yBoxes = numeric.map((n) => {
      const cb = h('input', { type: 'checkbox', value: n, checked: ys.includes(n), name: 'chart-y' });
      cb.addEventListener('change', () => {
        ys = numeric.filter((c) => (c === n ? cb.checked : ys.includes(c)));
        draw();
      });
      return h('label', { class: 'check' }, cb, n);
    });
    return h(
      'div',
      { class: 'chart-controls' },
      h('label', null, 'Type ', kindSel),
      h('label', null, 'X ', xSel),
      h('fieldset', { class: 'inline' }, h('legend', null, 'Y'), yBoxes),
    );
  };
  const chartBox = h('div', { class: 'chart', 'data-testid': 'chart' });
  const draw = () => {
    undraw?.();
    undraw = null;
    if (!ys.length) {
      clear(chartBox, h('p', { class: 'muted' }, 'Pick at least one Y column.'));
      return;
    }
    undraw = drawChart(chartBox, r, { kind, x, ys });
  };

  const show = (which: 'table' | 'chart') => {
    tabTable.setAttribute('aria-selected', String(which === 'table'));
    tabChart.setAttribute('aria-selected', String(which === 'chart'));
    undraw?.();
    undraw = null;
    if (which === 'table') clear(body, resultTable(r));
    else {
      clear(body, chartControls(), chartBox);
      requestAnimationFrame(draw);
    }
  };
  tabTable.addEventListener('click', () => show('table'));
  tabChart.addEventListener('click', () => show('chart'));
  root.append(h('div', { class: 'result-head' }, h('div', { role: 'tablist', 'aria-label': 'Result view' }, tabTable, tabChart), statsLine(r)), body);
  show(opts.initial === 'chart' && canChart ? 'chart' : 'table');
  return root;
}
