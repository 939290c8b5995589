/** Tokens: list, create with scopes, copy, refresh, delete (needs an ADMIN or TOKENS token). */
import { api, getToken, setToken } from '../api';
import { busy, clear, copyText, errorBox, h, section, toast } from '../dom';
import { listDatasources, listPipes } from '../workspace';

interface Token {
  id: string;
  name: string;
  token?: string;
  description?: string;
  scopes: Array<{ type: string; resource?: string; filter?: string }>;
}

const SCOPE_TYPES: Array<{ type: string; resource?: 'datasource' | 'pipe'; filter?: boolean }> = [
  { type: 'DATASOURCES:READ', resource: 'datasource', filter: true },
  { type: 'DATASOURCES:APPEND', resource: 'datasource' },
  { type: 'DATASOURCES:DROP', resource: 'datasource' },
  { type: 'DATASOURCES:CREATE' },
  { type: 'PIPES:READ', resource: 'pipe', filter: true },
  { type: 'PIPES:DROP', resource: 'pipe' },
  { type: 'PIPES:CREATE' },
  { type: 'TOKENS' },
  { type: 'ADMIN' },
];

const scopeText = (s: Token['scopes'][number]) => [s.type, s.resource, s.filter].filter(Boolean).join(':');

function mask(t: string): string {
  return t.length > 16 ? `${t.slice(0, 6)}…${t.slice(-4)}` : '••••';
}

export function renderTokens(root: HTMLElement): void {
  const list = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const createBox = h('div');
  root.append(h('h1', null, 'Tokens'), section('Tokens of this workspace', list), section('New token', createBox));

  const load = async () => {
    try {
      const tokens = (await api<{ tokens: Token[] }>('GET', '/v0/tokens')).tokens;
      clear(
        list,
        h(
          'table',
          { class: 'list', 'data-testid': 'tokens' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ['Name', 'Scopes', 'Token', ''].map((t) => h('th', { scope: 'col' }, t)),
            ),
          ),
          h(
            'tbody',
            null,
            tokens.map((t) => {
              const copy = h('button', { type: 'button', class: 'small', disabled: !t.token }, 'Copy');
              copy.addEventListener('click', () => t.token && void copyText(t.token, `Token ${t.name} copied`));
              const refresh = h('button', { type: 'button', class: 'small' }, 'Refresh');
              refresh.addEventListener(
                'click',
                busy(refresh, async () => {
                  if (!confirm(`Refresh ${t.name}? Its current value stops working at once.`)) return;
                  try {
                    const r = await api<Token>('POST', `/v0/tokens/${encodeURIComponent(t.id)}/refresh`);
                    if (t.token && t.token === getToken() && r.token) setToken(r.token);
                    toast(`Refreshed ${t.name}`);
                    await load();
                  } catch (err) {
                    toast((err as Error).message, 'error');
                  }
                }),
              );
              const del = h('button', { type: 'button', class: 'small danger' }, 'Delete');
              del.addEventListener(
                'click',
                busy(del, async () => {
                  if (!confirm(`Delete token ${t.name}?`)) return;
                  try {
                    await api('DELETE', `/v0/tokens/${encodeURIComponent(t.id)}`);
                    toast(`Deleted ${t.name}`);
                    if (t.token && t.token === getToken()) {
                      setToken(null);
                      location.reload();
                      return;
                    }
                    await load();
                  } catch (err) {
                    toast((err as Error).message, 'error');
                  }
                }),
              );
              return h(
                'tr',
                null,
                h('td', null, h('strong', null, t.name), t.description ? h('div', { class: 'muted' }, t.description) : null),
                h(
                  'td',
                  null,
                  h(
                    'ul',
                    { class: 'scopes' },
                    t.scopes.map((s) => h('li', null, h('code', null, scopeText(s)))),
                  ),
                ),
                h(
                  'td',
                  null,
                  t.token
                    ? h('code', { title: 'Shown masked; Copy puts the whole value on the clipboard' }, mask(t.token))
                    : h('span', { class: 'muted' }, 'hidden'),
                ),
                h('td', { class: 'actions' }, copy, refresh, del),
              );
            }),
          ),
        ),
      );
    } catch (err) {
      clear(list, errorBox(err));
    }
  };

  const drawCreate = async () => {
    const [ds, pipes] = await Promise.all([listDatasources().catch(() => []), listPipes().catch(() => [])]);
    const name = h('input', { type: 'text', id: 'tok-name', name: 'name', required: true, autocomplete: 'off' });
    const description = h('input', { type: 'text', id: 'tok-desc', name: 'description', autocomplete: 'off' });
    const scopesBox = h('ul', { class: 'scope-rows' });
    const addRow = () => {
      const type = h(
        'select',
        { 'aria-label': 'Scope' },
        SCOPE_TYPES.map((s) => h('option', { value: s.type }, s.type)),
      );
      const resource = h('select', { 'aria-label': 'Resource' });
      const filter = h('input', { type: 'text', 'aria-label': 'Row filter (SQL condition)', placeholder: "filter, e.g. country = 'ES'" });
      const remove = h('button', { type: 'button', class: 'small', 'aria-label': 'Remove scope' }, '×');
      const sync = () => {
        const spec = SCOPE_TYPES.find((s) => s.type === type.value)!;
        const names = spec.resource === 'datasource' ? ds.map((d) => d.name) : spec.resource === 'pipe' ? pipes.map((p) => p.name) : [];
        clear(
          resource,
          names.map((n) => h('option', { value: n }, n)),
        );
        resource.hidden = !spec.resource;
        filter.hidden = !spec.filter;
      };
      type.addEventListener('change', sync);
      const li = h('li', { class: 'row' }, type, resource, filter, remove);
      remove.addEventListener('click', () => li.remove());
      scopesBox.append(li);
      sync();
      (li as HTMLElement & { scope?: () => string | null }).scope = () => {
        const spec = SCOPE_TYPES.find((s) => s.type === type.value)!;
        if (!spec.resource) return spec.type;
        if (!resource.value) return null;
        return [spec.type, resource.value, spec.filter && filter.value.trim() ? filter.value.trim() : ''].filter(Boolean).join(':');
      };
    };
    addRow();
    const more = h('button', { type: 'button' }, 'Add a scope');
    more.addEventListener('click', addRow);
    const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'create-token' }, 'Create token');
    const status = h('div', { role: 'status', 'aria-live': 'polite' });
    const form = h(
      'form',
      null,
      h('div', { class: 'form-grid' }, h('label', { for: 'tok-name' }, 'Name'), name, h('label', { for: 'tok-desc' }, 'Description'), description),
      h('fieldset', null, h('legend', null, 'Scopes'), scopesBox, more),
      h('div', { class: 'row' }, submit),
      status,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void busy(submit, async () => {
        const scopes = [...scopesBox.children].map((li) => (li as HTMLElement & { scope?: () => string | null }).scope?.() ?? null);
        if (scopes.some((s) => s === null)) return clear(status, errorBox('Pick a resource for every scope'));
        try {
          const t = await api<Token>('POST', '/v0/tokens', {
            form: { name: name.value.trim(), description: description.value.trim(), scope: scopes as string[] },
          });
          const copy = h('button', { type: 'button' }, 'Copy the new token');
          copy.addEventListener('click', () => t.token && void copyText(t.token, 'Token copied'));
          clear(status, h('p', { class: 'ok', 'data-testid': 'token-created' }, `Created ${t.name}. `), copy);
          name.value = '';
          await load();
        } catch (err) {
          clear(status, errorBox(err));
        }
      })();
    });
    clear(createBox, form);
  };

  void load();
  void drawCreate();
}
