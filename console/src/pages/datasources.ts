/**
 * Data Sources: the list (rows, size, last ingest), and per data source its schema, a preview,
 * the quarantine with the reasons, and appending a file (drag and drop, upload progress) or a URL
 * (an import job followed to its end).
 */
import { api, followJob, rows, runSql, upload, type Job } from '../api';
import { busy, clear, errorBox, formatBytes, formatNumber, h, section, toast } from '../dom';
import { resultTable, resultView } from '../results';
import { listDatasources, type Datasource } from '../workspace';

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The multipart field the Data Sources API expects for a file. */
function formatOf(file: File): 'csv' | 'ndjson' | 'parquet' {
  const n = file.name.toLowerCase().replace(/\.gz$/, '');
  if (n.endsWith('.parquet')) return 'parquet';
  if (n.endsWith('.ndjson') || n.endsWith('.jsonl') || n.endsWith('.json')) return 'ndjson';
  return 'csv';
}

/** `tinybird.datasources_ops_log` when the server has it: the last ingest per data source. */
async function lastIngests(): Promise<Map<string, string> | null> {
  try {
    const r = await rows<{ datasource_name: string; last: string }>(
      "SELECT datasource_name, toString(max(timestamp)) AS last FROM tinybird.datasources_ops_log WHERE event_type LIKE 'append%' OR event_type IN ('create', 'replace') GROUP BY datasource_name",
    );
    return new Map(r.map((x) => [x.datasource_name, x.last]));
  } catch {
    return null;
  }
}

export function renderDatasources(root: HTMLElement, args: string[]): void {
  if (args[0]) return renderOne(root, args[0]);
  const list = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  root.append(
    h('h1', null, 'Data Sources'),
    list,
    fileForm(null, () => reload()),
  );
  const reload = async () => {
    try {
      const [ds, ingests] = await Promise.all([listDatasources(), lastIngests()]);
      if (!ds.length) return clear(list, h('p', { class: 'empty' }, 'No data sources yet. Drop a CSV, NDJSON or Parquet file below to create one.'));
      clear(
        list,
        h(
          'table',
          { class: 'list', 'data-testid': 'datasources' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              h('th', { scope: 'col' }, 'Name'),
              h('th', { scope: 'col', class: 'num' }, 'Rows'),
              h('th', { scope: 'col', class: 'num' }, 'Size'),
              h('th', { scope: 'col', class: 'num' }, 'Quarantine'),
              h('th', { scope: 'col' }, 'Last ingest'),
              h('th', { scope: 'col' }, 'Format'),
            ),
          ),
          h(
            'tbody',
            null,
            ds.map((d) =>
              h(
                'tr',
                null,
                h('td', null, h('a', { href: `#/datasources/${encodeURIComponent(d.name)}` }, d.name)),
                h('td', { class: 'num' }, formatNumber(d.statistics?.row_count)),
                h('td', { class: 'num' }, formatBytes(d.statistics?.bytes)),
                h('td', { class: 'num' }, d.quarantine_rows ? formatNumber(d.quarantine_rows) : '0'),
                h(
                  'td',
                  { title: ingests ? '' : 'Needs tinybird.datasources_ops_log; showing the last change of the data source' },
                  ingests?.get(d.name) ?? (ingests ? '—' : d.updated_at),
                ),
                h('td', null, d.type),
              ),
            ),
          ),
        ),
      );
    } catch (err) {
      clear(list, errorBox(err));
    }
  };
  void reload();
}

/** Append a file (creating the data source when the name is new) or a URL import. */
function fileForm(existing: string | null, onDone: () => void): HTMLElement {
  const nameInput = h('input', {
    type: 'text',
    name: 'ds-name',
    id: 'ds-name',
    value: existing ?? '',
    required: true,
    pattern: NAME_RE.source,
    autocomplete: 'off',
  });
  const fileInput = h('input', { type: 'file', id: 'ds-file', name: 'file', accept: '.csv,.tsv,.ndjson,.jsonl,.json,.parquet,.gz' });
  const progress = h('progress', { max: '100', value: '0', hidden: true, 'aria-label': 'Upload progress' });
  const status = h('div', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'upload-status' });
  const drop = h(
    'div',
    { class: 'dropzone', 'data-testid': 'dropzone' },
    h('label', { for: 'ds-file' }, 'Drop a CSV, NDJSON or Parquet file here, or choose one:'),
    fileInput,
  );
  let current: File | null = null;
  const pick = (f: File | null) => {
    current = f;
    drop.classList.toggle('has-file', Boolean(f));
    clear(status, f ? `${f.name} (${formatBytes(f.size)}, ${formatOf(f)})` : '');
    if (f && !nameInput.value)
      nameInput.value = f.name
        .replace(/\.(csv|tsv|ndjson|jsonl|json|parquet)(\.gz)?$/i, '')
        .replace(/[^A-Za-z0-9_]/g, '_')
        .replace(/^([^A-Za-z_])/, '_$1');
  };
  fileInput.addEventListener('change', () => pick(fileInput.files?.[0] ?? null));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    pick(e.dataTransfer?.files?.[0] ?? null);
  });
  const uploadButton = h('button', { type: 'button', class: 'primary', 'data-testid': 'upload' }, existing ? 'Append file' : 'Create / append');
  uploadButton.addEventListener(
    'click',
    busy(uploadButton, async () => {
      const name = nameInput.value.trim();
      if (!NAME_RE.test(name)) return clear(status, errorBox('The data source name must start with a letter or _ and hold only letters, digits and _'));
      if (!current) return clear(status, errorBox('Choose or drop a file first'));
      const format = formatOf(current);
      progress.hidden = false;
      progress.value = 0;
      const up = upload('/v0/datasources', { name, mode: 'append', format }, format, current, (sent, total) => {
        progress.value = total ? Math.round((sent / total) * 100) : 0;
      });
      clear(status, 'Uploading…');
      try {
        const r = (await up.promise) as { quarantine_rows?: number; invalid_lines?: number; error?: string | false; datasource?: { name: string } };
        progress.value = 100;
        const bad = (r.quarantine_rows ?? 0) + (r.invalid_lines ?? 0);
        clear(
          status,
          h('p', { class: bad ? 'warn' : 'ok' }, r.error ? String(r.error) : `Appended to ${name}.`),
          existing ? null : h('a', { href: `#/datasources/${encodeURIComponent(name)}` }, `Open ${name}`),
        );
        toast(`Appended ${current.name} to ${name}`);
        onDone();
      } catch (err) {
        clear(status, errorBox(err));
      }
    }),
  );

  const urlInput = h('input', { type: 'url', name: 'ds-url', id: 'ds-url', placeholder: 'https://example.com/data.csv', size: 50 });
  const urlStatus = h('div', { class: 'status', role: 'status', 'aria-live': 'polite' });
  const urlProgress = h('progress', { max: '100', hidden: true, 'aria-label': 'Import progress' });
  const importButton = h('button', { type: 'button' }, 'Import URL');
  importButton.addEventListener(
    'click',
    busy(importButton, async () => {
      const name = nameInput.value.trim();
      if (!NAME_RE.test(name)) return clear(urlStatus, errorBox('Set a data source name first'));
      try {
        const r = await api<{ job_id: string }>('POST', '/v0/datasources', { form: { name, mode: 'append', url: urlInput.value.trim() } });
        urlProgress.hidden = false;
        urlProgress.removeAttribute('value');
        const cancel = h('button', { type: 'button', class: 'small' }, 'Cancel job');
        cancel.addEventListener('click', () => void api('POST', `/v0/jobs/${r.job_id}/cancel`).catch((e) => toast(String((e as Error).message), 'error')));
        const line = h('span', null, 'waiting');
        clear(urlStatus, line, ' ', cancel);
        const job = await followJob(r.job_id, (j: Job) => {
          line.textContent = `Job ${j.id}: ${j.status}${j.progress !== undefined ? ` (${j.progress}%)` : ''}`;
          if (typeof j.progress === 'number' && j.progress > 0) urlProgress.value = j.progress;
        });
        urlProgress.value = 100;
        cancel.remove();
        if (job.status === 'done') {
          line.textContent = `Imported ${formatNumber(job.statistics?.row_count ?? null)} rows${job.quarantine_rows ? `, ${job.quarantine_rows} in quarantine` : ''}.`;
          onDone();
        } else line.replaceWith(errorBox(`Job ${job.status}${job.error ? `: ${job.error}` : ''}`));
      } catch (err) {
        clear(urlStatus, errorBox(err));
      }
    }),
  );

  return section(
    existing ? 'Append data' : 'New data source from a file',
    h('div', { class: 'form-grid' }, h('label', { for: 'ds-name' }, 'Data source'), nameInput),
    drop,
    h('div', { class: 'row' }, uploadButton, progress),
    status,
    h('div', { class: 'form-grid' }, h('label', { for: 'ds-url' }, 'Or from a URL'), h('div', { class: 'row' }, urlInput, importButton, urlProgress)),
    urlStatus,
  );
}

function renderOne(root: HTMLElement, name: string): void {
  const head = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const schema = h('div');
  const preview = h('div');
  const quarantine = h('div');
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/datasources' }, 'Data Sources'), ' / ', name),
    h('h1', null, name),
    head,
    section('Schema', schema),
    section('Preview', preview),
    section('Quarantine', quarantine),
    fileForm(name, () => void load()),
  );
  const load = async () => {
    try {
      const ds = await api<Datasource>('GET', `/v0/datasources/${encodeURIComponent(name)}`);
      clear(
        head,
        h(
          'p',
          { class: 'stats' },
          h('span', null, `${formatNumber(ds.statistics?.row_count)} rows`),
          h('span', null, formatBytes(ds.statistics?.bytes)),
          h('span', null, `format ${ds.type}`),
          h('span', null, `engine ${ds.engine?.engine_full ?? ds.engine?.engine ?? '—'}`),
          ds.used_by?.length
            ? h(
                'span',
                null,
                'used by ',
                ds.used_by.map((p, i) => [i ? ', ' : '', h('a', { href: `#/pipes/${encodeURIComponent(p.name)}` }, p.name)]),
              )
            : null,
        ),
        ds.description ? h('p', null, ds.description) : null,
        h('div', { class: 'row' }, h('a', { class: 'button', href: `#/sql`, 'data-sql': `SELECT * FROM ${name} LIMIT 100` }, 'Query in SQL')),
      );
      clear(
        schema,
        h(
          'table',
          { class: 'list' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ['Column', 'Type', 'Nullable', 'Default', 'JSONPath'].map((t) => h('th', { scope: 'col' }, t)),
            ),
          ),
          h(
            'tbody',
            null,
            (ds.schema?.columns ?? []).map((c) =>
              h(
                'tr',
                null,
                h('td', null, h('code', null, c.name)),
                h('td', null, h('code', null, c.type)),
                h('td', null, c.nullable ? 'yes' : 'no'),
                h('td', null, c.default_value ?? ''),
                h('td', null, c.jsonpath ?? ''),
              ),
            ),
          ),
        ),
        ds.schema?.sql_schema ? h('details', null, h('summary', null, 'Schema definition'), h('pre', { class: 'raw' }, ds.schema.sql_schema)) : null,
      );
      (head.querySelector('a[data-sql]') as HTMLAnchorElement | null)?.addEventListener('click', (e) => {
        sessionStorage.setItem('pipit.console.sql', (e.currentTarget as HTMLElement).dataset.sql ?? '');
      });
    } catch (err) {
      clear(head, errorBox(err));
      return;
    }
    try {
      const r = await runSql(`SELECT * FROM ${name} LIMIT 20`);
      clear(preview, resultView(r));
    } catch (err) {
      clear(preview, errorBox(err));
    }
    try {
      const r = await runSql(`SELECT * FROM ${name}_quarantine ORDER BY insertion_date DESC LIMIT 50`);
      if (typeof r === 'string') return;
      const reasons = await rows<{ reason: string; n: string }>(
        `SELECT arrayJoin(c__error) AS reason, count() AS n FROM ${name}_quarantine GROUP BY reason ORDER BY n DESC LIMIT 10`,
      ).catch(() => []);
      if (!r.rows) return clear(quarantine, h('p', { class: 'ok' }, 'No rows in quarantine.'));
      const truncate = h('button', { type: 'button', class: 'danger small' }, 'Empty the quarantine');
      truncate.addEventListener(
        'click',
        busy(truncate, async () => {
          if (!confirm(`Remove every row of ${name}_quarantine?`)) return;
          await api('POST', `/v0/datasources/${encodeURIComponent(`${name}_quarantine`)}/truncate`).catch((e) => toast((e as Error).message, 'error'));
          void load();
        }),
      );
      clear(
        quarantine,
        h(
          'p',
          { class: 'warn' },
          `${formatNumber(r.rows_before_limit_at_least ?? r.rows)} row${(r.rows_before_limit_at_least ?? r.rows) === 1 ? '' : 's'} did not fit the schema.`,
        ),
        reasons.length
          ? h(
              'ul',
              { class: 'reasons' },
              reasons.map((x) => h('li', null, h('code', null, x.reason), ` × ${x.n}`)),
            )
          : null,
        resultTable(r),
        h('div', { class: 'row' }, truncate),
      );
    } catch (err) {
      clear(quarantine, h('p', { class: 'muted' }, (err as Error).message));
    }
  };
  void load();
}
