/**
 * Pipes: nodes edited in sequence, each with its result below it; template parameters detected
 * from the SQL (and from the API's `params` once saved) and editable; publish a node as the
 * endpoint, copy its URL and a curl example; materialization, copy and sink with the forms the
 * API takes. Drafts are run through /v0/sql with `pipeline=<pipe>`, so a node can read the saved
 * nodes above it before it is saved itself.
 */
import { api, followJob, qs, runSql, type Job, type QueryResult } from '../api';
import { busy, clear, copyText, errorBox, h, section, toast } from '../dom';
import { createEditor, type CompletionSchema, type SqlEditor } from '../editor';
import { resultView } from '../results';
import { completionSchema, listPipes, type Pipe, type PipeNode } from '../workspace';

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NODE_ROWS = 100;

const TYPE_FUNCTIONS = new Set([
  'String',
  'Boolean',
  'DateTime64',
  'DateTime',
  'Date',
  'Float32',
  'Float64',
  'Int8',
  'Int16',
  'Int32',
  'Int64',
  'Int128',
  'Int256',
  'Int',
  'Integer',
  'UInt8',
  'UInt16',
  'UInt32',
  'UInt64',
  'UInt128',
  'UInt256',
  'Array',
  'JSON',
  'defined',
  'column',
  'columns',
  'symbol',
]);
const NOT_PARAMS = new Set([
  'columns',
  'column',
  'defined',
  'sql_and',
  'TABLE',
  'table',
  'tb_secret',
  'tb_var',
  'split_to_array',
  'cache_ttl',
  'True',
  'False',
  'None',
  'and',
  'or',
  'not',
  'in',
  'if',
  'else',
  'end',
  'for',
  'set',
]);

export interface Param {
  name: string;
  type: string;
  default?: string;
  required?: boolean;
}

/** Template parameters in SQL that starts with `%`: typed functions' first argument, `defined(x)`, bare `{{ x }}`. */
export function detectParams(sql: string): Param[] {
  if (!/^\s*%/.test(sql)) return [];
  const out = new Map<string, Param>();
  const fn = /\b([A-Za-z_][A-Za-z0-9_]*)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:,\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?[0-9.]+))?/g;
  for (const block of sql.match(/\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g) ?? []) {
    for (const m of block.matchAll(fn)) {
      if (!TYPE_FUNCTIONS.has(m[1]) || NOT_PARAMS.has(m[2])) continue;
      const type = ['defined', 'column', 'columns', 'symbol'].includes(m[1]) ? 'String' : m[1];
      const prev = out.get(m[2]);
      const def = m[3]?.replace(/^['"]|['"]$/g, '');
      if (!prev || (prev.type === 'String' && type !== 'String') || (def !== undefined && prev.default === undefined))
        out.set(m[2], { name: m[2], type: prev && type === 'String' ? prev.type : type, default: def ?? prev?.default });
    }
    const bare = /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/.exec(block);
    if (bare && !NOT_PARAMS.has(bare[1]) && !out.has(bare[1])) out.set(bare[1], { name: bare[1], type: 'String' });
  }
  return [...out.values()];
}

/** The node's SQL limited to a preview, keeping a leading `%` (template marker) first. */
function previewSql(sql: string): string {
  const m = /^\s*%\s*\n?/.exec(sql);
  const body = m ? sql.slice(m[0].length) : sql;
  return `${m ? '%\n' : ''}SELECT * FROM (\n${body}\n) LIMIT ${NODE_ROWS}`;
}

export function renderPipes(root: HTMLElement, args: string[]): void | (() => void) {
  if (args[0]) return renderPipe(root, args[0]);
  const list = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const nameInput = h('input', { type: 'text', id: 'pipe-name', name: 'pipe-name', required: true, autocomplete: 'off', pattern: NAME_RE.source });
  const create = h('button', { type: 'submit', class: 'primary', 'data-testid': 'create-pipe' }, 'Create pipe');
  const status = h('div', { role: 'status', 'aria-live': 'polite' });
  const form = h(
    'form',
    null,
    h('div', { class: 'form-grid' }, h('label', { for: 'pipe-name' }, 'Name'), h('div', { class: 'row' }, nameInput, create)),
    status,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void busy(create, async () => {
      const name = nameInput.value.trim();
      try {
        await api('POST', '/v0/pipes', { json: { name, nodes: [{ name: `${name}_0`, sql: 'SELECT 1 AS one' }] } });
        location.hash = `#/pipes/${encodeURIComponent(name)}`;
      } catch (err) {
        clear(status, errorBox(err));
      }
    })();
  });
  root.append(h('h1', null, 'Pipes'), list, section('New pipe', form));
  void (async () => {
    try {
      const pipes = await listPipes();
      if (!pipes.length) return clear(list, h('p', { class: 'empty' }, 'No pipes yet.'));
      clear(
        list,
        h(
          'table',
          { class: 'list', 'data-testid': 'pipes' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ['Name', 'Type', 'Nodes', 'Endpoint', 'Updated'].map((t) => h('th', { scope: 'col' }, t)),
            ),
          ),
          h(
            'tbody',
            null,
            pipes.map((p) =>
              h(
                'tr',
                null,
                h('td', null, h('a', { href: `#/pipes/${encodeURIComponent(p.name)}` }, p.name)),
                h('td', null, h('span', { class: `badge ${p.type}` }, p.type)),
                h('td', { class: 'num' }, String(p.nodes.length)),
                h('td', null, p.endpoint ? h('code', null, `/v0/pipes/${p.name}.json`) : '—'),
                h('td', null, p.updated_at),
              ),
            ),
          ),
        ),
      );
    } catch (err) {
      clear(list, errorBox(err));
    }
  })();
}

interface NodeState {
  draft: string;
  result?: HTMLElement;
}

function renderPipe(root: HTMLElement, name: string): () => void {
  const drafts = new Map<string, NodeState>();
  const paramValues = new Map<string, string>();
  const openPanels = new Set<string>(); // nodes whose Materialize/Copy/Sink panel is open, kept across reloads
  const editors: SqlEditor[] = [];
  let schema: CompletionSchema = { tables: {} };
  let pipe: Pipe | null = null;
  const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  root.append(h('p', { class: 'crumbs' }, h('a', { href: '#/pipes' }, 'Pipes'), ' / ', name), body);

  const destroyEditors = () => {
    for (const e of editors.splice(0)) e.view.destroy();
  };

  const params = (): Param[] => {
    const all = new Map<string, Param>();
    for (const n of pipe?.nodes ?? []) {
      for (const p of n.params ?? [])
        all.set(p.name, {
          name: p.name,
          type: p.type,
          default: p.default === undefined || p.default === null ? undefined : String(p.default),
          required: p.required,
        });
      for (const p of detectParams(drafts.get(n.id)?.draft ?? n.sql)) if (!all.has(p.name)) all.set(p.name, p);
    }
    return [...all.values()];
  };
  const paramArgs = (): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [k, v] of paramValues) if (v !== '') out[k] = v;
    return out;
  };

  const reload = async () => {
    try {
      [pipe, schema] = await Promise.all([api<Pipe>('GET', `/v0/pipes/${encodeURIComponent(name)}`), completionSchema()]);
      for (const n of pipe.nodes) schema.tables[n.name] ??= [];
      draw();
    } catch (err) {
      clear(body, errorBox(err));
    }
  };

  const paramsBox = h('div');
  const endpointBox = h('div');
  const drawParams = () => {
    const ps = params();
    if (!ps.length)
      return clear(paramsBox, h('p', { class: 'muted' }, "No template parameters. Start a node with % and use {{ String(name, 'default') }} to add one."));
    clear(
      paramsBox,
      h(
        'div',
        { class: 'form-grid params' },
        ps.map((p) => {
          const id = `param-${p.name}`;
          const input = h('input', {
            type: 'text',
            id,
            name: p.name,
            'data-param': p.name,
            value: paramValues.get(p.name) ?? '',
            placeholder: p.default ?? (p.required ? 'required' : ''),
            autocomplete: 'off',
          });
          input.addEventListener('input', () => {
            paramValues.set(p.name, input.value);
            drawEndpoint();
          });
          return [h('label', { for: id }, p.name, ' ', h('span', { class: 'type' }, p.type)), input];
        }),
      ),
    );
  };

  const endpointUrl = (): string => `${location.origin}/v0/pipes/${encodeURIComponent(name)}.json${qs(paramArgs())}`;
  const drawEndpoint = () => {
    if (!pipe?.endpoint) return clear(endpointBox, h('p', { class: 'muted' }, 'Not published. Publish a node as the endpoint to call this pipe over HTTP.'));
    const node = pipe.nodes.find((n) => n.id === pipe!.endpoint);
    const url = endpointUrl();
    const curl = `curl -H "Authorization: Bearer $TOKEN" "${url}"`;
    const out = h('div', { 'data-testid': 'endpoint-result' });
    const call = h('button', { type: 'button', class: 'primary', 'data-testid': 'call-endpoint' }, 'Call endpoint');
    call.addEventListener(
      'click',
      busy(call, async () => {
        try {
          const r = await api<QueryResult>('GET', `/v0/pipes/${encodeURIComponent(name)}.json`, { query: paramArgs() });
          clear(out, resultView(r));
        } catch (err) {
          clear(out, errorBox(err));
        }
      }),
    );
    const copyUrl = h('button', { type: 'button' }, 'Copy URL');
    copyUrl.addEventListener('click', () => void copyText(url, 'URL copied'));
    const copyCurl = h('button', { type: 'button' }, 'Copy curl');
    copyCurl.addEventListener('click', () => void copyText(curl, 'curl command copied'));
    clear(
      endpointBox,
      h('p', null, 'Node ', h('strong', null, node?.name ?? '?'), ' is published. The token goes in the Authorization header ($TOKEN), never in the URL.'),
      h('pre', { class: 'raw', 'data-testid': 'endpoint-url' }, url),
      h('pre', { class: 'raw' }, curl),
      h('div', { class: 'row' }, call, copyUrl, copyCurl, h('a', { class: 'button', href: '#/observability' }, 'Requests and errors')),
      out,
    );
  };

  const draw = () => {
    if (!pipe) return;
    destroyEditors();
    const p = pipe;
    const nodes = p.nodes.map((n, i) => nodeCard(n, i));
    clear(
      body,
      h('h1', null, p.name, ' ', h('span', { class: `badge ${p.type}` }, p.type)),
      p.description ? h('p', null, p.description) : null,
      section('Parameters', paramsBox),
      section('Endpoint', endpointBox),
      h('h2', null, 'Nodes'),
      h('ol', { class: 'nodes' }, nodes),
      addNodeForm(),
    );
    drawParams();
    drawEndpoint();
  };

  function nodeCard(n: PipeNode, index: number): HTMLElement {
    const state = drafts.get(n.id) ?? { draft: n.sql };
    drafts.set(n.id, state);
    const dirty = h('span', { class: 'dirty', hidden: state.draft === n.sql }, 'unsaved');
    const out = h('div', { class: 'output', 'aria-live': 'polite' });
    if (state.result) out.append(state.result);
    const editorBox = h('div', { class: 'editor' });
    const isEndpoint = pipe!.endpoint === n.id;
    const run = h('button', { type: 'button', class: 'primary', 'data-testid': `run-node-${index}` }, 'Run');
    const save = h('button', { type: 'button', 'data-testid': `save-node-${index}` }, 'Save');
    const publish = h('button', { type: 'button', 'data-testid': `publish-node-${index}` }, isEndpoint ? 'Unpublish' : 'Publish as endpoint');
    const del = h('button', { type: 'button', class: 'danger' }, 'Delete node');

    const runNode = busy(run, async () => {
      clear(out, h('p', { class: 'muted' }, 'Running…'));
      try {
        const r = await runSql(previewSql(state.draft), { pipeline: pipe!.name, params: paramArgs() });
        state.result = resultView(r);
      } catch (err) {
        state.result = errorBox(err);
      }
      clear(out, state.result);
    });
    const saveNode = async (): Promise<boolean> => {
      if (state.draft === n.sql) return true;
      try {
        await api('PUT', `/v0/pipes/${encodeURIComponent(pipe!.name)}/nodes/${encodeURIComponent(n.name)}`, { body: state.draft, contentType: 'text/plain' });
        toast(`Saved ${n.name}`);
        return true;
      } catch (err) {
        clear(out, errorBox(err));
        return false;
      }
    };
    save.addEventListener(
      'click',
      busy(save, async () => {
        if (await saveNode()) await reload();
      }),
    );
    publish.addEventListener(
      'click',
      busy(publish, async () => {
        try {
          if (isEndpoint) await api('DELETE', `/v0/pipes/${encodeURIComponent(pipe!.name)}/nodes/${encodeURIComponent(n.name)}/endpoint`);
          else {
            if (!(await saveNode())) return;
            await api('POST', `/v0/pipes/${encodeURIComponent(pipe!.name)}/nodes/${encodeURIComponent(n.name)}/endpoint`);
          }
          toast(isEndpoint ? `Unpublished ${n.name}` : `Published ${n.name} as the endpoint`);
          await reload();
        } catch (err) {
          clear(out, errorBox(err));
        }
      }),
    );
    del.addEventListener(
      'click',
      busy(del, async () => {
        if (!confirm(`Delete node ${n.name}?`)) return;
        try {
          await api('DELETE', `/v0/pipes/${encodeURIComponent(pipe!.name)}/nodes/${encodeURIComponent(n.name)}`);
          drafts.delete(n.id);
          await reload();
        } catch (err) {
          clear(out, errorBox(err));
        }
      }),
    );

    const li = h(
      'li',
      { class: 'card node', 'data-node': n.name },
      h(
        'div',
        { class: 'node-head' },
        h('h3', null, n.name),
        h('span', { class: `badge ${isEndpoint ? 'endpoint' : n.node_type}` }, isEndpoint ? 'endpoint' : n.node_type),
        n.materialized && n.node_type !== 'materialized' ? h('span', { class: 'badge materialized' }, 'materialized') : null,
        dirty,
        n.dependencies?.length ? h('span', { class: 'muted deps' }, 'reads ', n.dependencies.join(', ')) : null,
      ),
      editorBox,
      h('div', { class: 'row' }, run, save, publish, del),
      advanced(n),
      out,
    );
    const editor = createEditor(editorBox, {
      doc: state.draft,
      label: `SQL of node ${n.name}`,
      schema,
      onRun: () => void runNode(),
      onChange: (v) => {
        state.draft = v;
        dirty.hidden = v === n.sql;
        drawParams();
        drawEndpoint();
      },
    });
    editors.push(editor);
    run.addEventListener('click', () => void runNode());
    return li;
  }

  /** Materialization, copy and sink: the fields of the API's own forms. */
  function advanced(n: PipeNode): HTMLElement {
    const base = `/v0/pipes/${encodeURIComponent(name)}/nodes/${encodeURIComponent(n.name)}`;
    const status = h('div', { role: 'status', 'aria-live': 'polite' });
    const form = (
      title: string,
      fields: Array<[string, string, HTMLElement?]>,
      submit: string,
      onSubmit: (v: Record<string, string>) => Promise<void>,
      extra?: HTMLElement[],
    ) => {
      const inputs: Record<string, HTMLInputElement | HTMLSelectElement> = {};
      const rows = fields.map(([key, label, custom]) => {
        const id = `${n.id}-${title}-${key}`.replace(/[^A-Za-z0-9_-]/g, '_');
        const input = (custom as HTMLInputElement | HTMLSelectElement | undefined) ?? h('input', { type: 'text', autocomplete: 'off' });
        input.id = id;
        input.name = key;
        inputs[key] = input;
        return [h('label', { for: id }, label), input];
      });
      const button = h('button', { type: 'submit' }, submit);
      const f = h('form', { class: 'subform' }, h('h4', null, title), h('div', { class: 'form-grid' }, rows), h('div', { class: 'row' }, button, extra ?? []));
      f.addEventListener('submit', (e) => {
        e.preventDefault();
        void busy(button, async () => {
          const v: Record<string, string> = {};
          for (const [k, el] of Object.entries(inputs)) {
            if (el instanceof HTMLInputElement && el.type === 'checkbox') v[k] = el.checked ? 'true' : 'false';
            else if (el.value.trim()) v[k] = el.value.trim();
          }
          try {
            await onSubmit(v);
          } catch (err) {
            clear(status, errorBox(err));
          }
        })();
      });
      return f;
    };
    const select = (...options: string[]) =>
      h(
        'select',
        null,
        options.map((o) => h('option', { value: o }, o || '(default)')),
      );
    const follow = async (job: Job | undefined, what: string) => {
      if (!job) return;
      const line = h('p', null, `${what}: ${job.status}`);
      clear(status, line);
      const end = await followJob(
        job.id,
        (j) => (line.textContent = `${what}: job ${j.id} ${j.status}${j.progress ? ` (${j.progress}%)` : ''}${j.error ? ` — ${j.error}` : ''}`),
      );
      if (end.status !== 'done') line.className = 'error';
    };
    const unset = (label: string, path: string) => {
      const b = h('button', { type: 'button', class: 'danger' }, label);
      b.addEventListener(
        'click',
        busy(b, async () => {
          try {
            await api('DELETE', path);
            toast(`${label}: done`);
            await reload();
          } catch (err) {
            clear(status, errorBox(err));
          }
        }),
      );
      return b;
    };
    const populate = h('input', { type: 'checkbox' });
    const mode = select('append', 'replace');
    const mat = form(
      'Materialize',
      [
        ['datasource', 'Target data source'],
        ['populate', 'Populate with existing data', populate],
      ],
      'Materialize',
      async (v) => {
        const r = await api<{ job?: Job }>('POST', `${base}/materialization`, { form: v });
        toast(`Materialized ${n.name} into ${v.datasource}`);
        await follow(r.job, 'Populate');
        await reload();
      },
      n.materialized ? [unset('Unlink', `${base}/materialization`)] : [],
    );
    const copy = form(
      'Copy',
      [
        ['target_datasource', 'Target data source'],
        ['schedule_cron', 'Schedule (cron, UTC)'],
        ['mode', 'Mode', mode],
      ],
      'Set copy',
      async (v) => {
        await api('POST', `${base}/copy`, { form: v });
        toast(`${n.name} copies into ${v.target_datasource}`);
        await reload();
      },
      n.node_type === 'copy' ? [runNow('copy'), unset('Remove copy', `${base}/copy`)] : [],
    );
    const sink = form(
      'Sink',
      [
        ['connection', 'Connection'],
        ['path', 'Bucket path'],
        ['file_template', 'File template'],
        ['format', 'Format', select('csv', 'ndjson', 'parquet')],
        ['compression', 'Compression', select('', 'none', 'gzip', 'snappy', 'zstd')],
        ['write_strategy', 'Write strategy', select('new', 'truncate')],
        ['schedule_cron', 'Schedule (cron, UTC)'],
      ],
      'Set sink',
      async (v) => {
        await api('POST', `${base}/sink`, { form: v });
        toast(`${n.name} sinks to ${v.connection}`);
        await reload();
      },
      n.node_type === 'sink' ? [runNow('sink'), unset('Remove sink', `${base}/sink`)] : [],
    );
    function runNow(kind: 'copy' | 'sink'): HTMLElement {
      const b = h('button', { type: 'button' }, `Run ${kind} now`);
      b.addEventListener(
        'click',
        busy(b, async () => {
          try {
            const r = await api<{ job?: Job; id?: string }>('POST', `/v0/pipes/${encodeURIComponent(name)}/${kind}`, { query: paramArgs() });
            await follow(r.job ?? (r.id ? ({ id: r.id, status: 'waiting' } as Job) : undefined), kind === 'copy' ? 'Copy' : 'Sink');
          } catch (err) {
            clear(status, errorBox(err));
          }
        }),
      );
      return b;
    }
    const details = h(
      'details',
      { class: 'advanced', open: openPanels.has(n.id) },
      h('summary', null, 'Materialize, copy or sink'),
      h('div', { class: 'subforms' }, mat, copy, sink),
      status,
    );
    details.addEventListener('toggle', () => (details.open ? openPanels.add(n.id) : openPanels.delete(n.id)));
    return details;
  }

  function addNodeForm(): HTMLElement {
    const last = pipe!.nodes[pipe!.nodes.length - 1];
    const input = h('input', {
      type: 'text',
      id: 'new-node-name',
      name: 'new-node-name',
      value: `${pipe!.name}_${pipe!.nodes.length}`,
      autocomplete: 'off',
      pattern: NAME_RE.source,
    });
    const add = h('button', { type: 'submit', 'data-testid': 'add-node' }, 'Add node');
    const status = h('div', { role: 'status', 'aria-live': 'polite' });
    const f = h(
      'form',
      null,
      h('div', { class: 'form-grid' }, h('label', { for: 'new-node-name' }, 'New node'), h('div', { class: 'row' }, input, add)),
      status,
    );
    f.addEventListener('submit', (e) => {
      e.preventDefault();
      void busy(add, async () => {
        try {
          await api('POST', `/v0/pipes/${encodeURIComponent(pipe!.name)}/nodes`, {
            query: { name: input.value.trim() },
            body: last ? `SELECT * FROM ${last.name}` : 'SELECT 1',
            contentType: 'text/plain',
          });
          await reload();
          editors[editors.length - 1]?.focus();
        } catch (err) {
          clear(status, errorBox(err));
        }
      })();
    });
    return section('Add a node', h('p', { class: 'muted' }, 'A new node starts by reading the one above it.'), f);
  }

  void reload();
  return destroyEditors;
}
