/**
 * Observability: requests, errors and p50/p95 latency per endpoint over time and the data source
 * operations log, read from the `tinybird.*` service data sources through /v0/sql; jobs with
 * status, progress and cancel from /v0/jobs. A server without the service data sources answers
 * those queries with a 4xx: the page says so and shows the rest.
 */
import { api, ApiError, runSql, type Job } from '../api';
import { busy, clear, errorBox, h, section, toast } from '../dom';
import { resultTable, resultView } from '../results';

const RANGES: Record<string, { interval: string; bucket: string }> = {
  '1h': { interval: '1 HOUR', bucket: 'toStartOfMinute' },
  '24h': { interval: '24 HOUR', bucket: 'toStartOfFifteenMinutes' },
  '7d': { interval: '7 DAY', bucket: 'toStartOfHour' },
};

/** The message shown when a service data source is not there (yet): the query's 4xx, explained. */
function unavailable(table: string, err: unknown): HTMLElement {
  const status = err instanceof ApiError ? err.status : 0;
  if (status >= 400 && status < 500) {
    return h(
      'div',
      { class: 'notice', 'data-testid': 'service-unavailable' },
      h(
        'p',
        null,
        h('strong', null, `${table} is not available on this server. `),
        "This view reads Pipit's service data sources, which record every endpoint request and data source operation; when the server has them, it fills in by itself.",
      ),
      h('p', { class: 'muted' }, `The query answered ${status}: ${(err as Error).message}`),
    );
  }
  return errorBox(err);
}

export function renderObservability(root: HTMLElement): () => void {
  const range = h(
    'select',
    { id: 'obs-range', name: 'range' },
    Object.keys(RANGES).map((k) => h('option', { value: k }, `last ${k}`)),
  );
  const endpoints = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const errors = h('div');
  const ops = h('div');
  const jobs = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const refresh = h('button', { type: 'button' }, 'Refresh');
  root.append(
    h('h1', null, 'Observability'),
    h('div', { class: 'row' }, h('label', { for: 'obs-range' }, 'Range '), range, refresh),
    section('Endpoints: requests, errors, latency', endpoints),
    section('Recent endpoint errors', errors),
    section('Data source operations', ops),
    section('Jobs', jobs),
  );

  const loadEndpoints = async () => {
    const r = RANGES[range.value];
    try {
      const summary = await runSql(`SELECT pipe_name, count() AS requests, countIf(error = 1 OR status_code >= 400) AS errors,
  round(quantile(0.5)(duration) * 1000, 2) AS p50_ms, round(quantile(0.95)(duration) * 1000, 2) AS p95_ms, sum(read_bytes) AS read_bytes
FROM tinybird.pipe_stats_rt WHERE start_datetime > now() - INTERVAL ${r.interval}
GROUP BY pipe_name ORDER BY requests DESC LIMIT 100`);
      const series = await runSql(`SELECT ${r.bucket}(start_datetime) AS t, count() AS requests, countIf(error = 1 OR status_code >= 400) AS errors,
  round(quantile(0.5)(duration) * 1000, 2) AS p50_ms, round(quantile(0.95)(duration) * 1000, 2) AS p95_ms
FROM tinybird.pipe_stats_rt WHERE start_datetime > now() - INTERVAL ${r.interval}
GROUP BY t ORDER BY t`);
      clear(endpoints, resultView(summary, { chart: false }), h('h3', null, 'Over time'), resultView(series, { initial: 'chart' }));
    } catch (err) {
      clear(endpoints, unavailable('tinybird.pipe_stats_rt', err));
    }
    try {
      const e = await runSql(`SELECT start_datetime, pipe_name, status_code, error, params FROM tinybird.endpoint_errors
WHERE start_datetime > now() - INTERVAL ${r.interval} ORDER BY start_datetime DESC LIMIT 50`);
      clear(errors, typeof e === 'string' ? e : e.rows ? resultTable(e) : h('p', { class: 'ok' }, 'No errors in this range.'));
    } catch (err) {
      clear(errors, unavailable('tinybird.endpoint_errors', err));
    }
    try {
      const o = await runSql(`SELECT timestamp, event_type, datasource_name, result, rows, rows_quarantine, elapsed_time, error
FROM tinybird.datasources_ops_log WHERE timestamp > now() - INTERVAL ${r.interval} ORDER BY timestamp DESC LIMIT 100`);
      clear(ops, typeof o === 'string' ? o : o.rows ? resultTable(o) : h('p', { class: 'muted' }, 'No operations in this range.'));
    } catch (err) {
      clear(ops, unavailable('tinybird.datasources_ops_log', err));
    }
  };

  const loadJobs = async () => {
    try {
      const list = (await api<{ jobs: Job[] }>('GET', '/v0/jobs')).jobs;
      if (!list.length) return clear(jobs, h('p', { class: 'muted' }, 'No jobs in the last 48 hours.'));
      const details = await Promise.all(list.slice(0, 30).map((j) => api<Job>('GET', `/v0/jobs/${encodeURIComponent(j.id)}`).catch(() => j)));
      clear(
        jobs,
        h(
          'table',
          { class: 'list', 'data-testid': 'jobs' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ['Created', 'Kind', 'Status', 'Progress', 'Target', 'Error', ''].map((t) => h('th', { scope: 'col' }, t)),
            ),
          ),
          h(
            'tbody',
            null,
            details.map((j) => {
              const cancel = h('button', { type: 'button', class: 'small' }, 'Cancel');
              cancel.addEventListener(
                'click',
                busy(cancel, async () => {
                  try {
                    await api('POST', `/v0/jobs/${encodeURIComponent(j.id)}/cancel`);
                    toast(`Cancelling job ${j.id}`);
                  } catch (err) {
                    toast((err as Error).message, 'error');
                  }
                  await loadJobs();
                }),
              );
              const pct = j.progress ?? j.progress_percentage;
              return h(
                'tr',
                null,
                h('td', null, j.created_at),
                h('td', null, j.kind),
                h('td', null, h('span', { class: `badge ${j.status}` }, j.status)),
                h('td', null, typeof pct === 'number' ? h('progress', { max: '100', value: String(pct), 'aria-label': `${pct}%` }) : '—'),
                h('td', null, j.datasource?.name ?? j.pipe_name ?? j.pipe?.name ?? ''),
                h('td', { class: 'wrap' }, j.error ?? ''),
                h('td', null, j.is_cancellable && (j.status === 'waiting' || j.status === 'working') ? cancel : null),
              );
            }),
          ),
        ),
      );
    } catch (err) {
      clear(jobs, errorBox(err));
    }
  };

  const load = () => Promise.all([loadEndpoints(), loadJobs()]);
  range.addEventListener('change', () => void loadEndpoints());
  refresh.addEventListener('click', busy(refresh, load));
  void load();
  const timer = window.setInterval(() => void loadJobs(), 5000);
  return () => window.clearInterval(timer);
}
