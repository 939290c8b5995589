/**
 * The console shell: sign-in with a token (picked up from GET /tokens on loopback, pasted
 * elsewhere), the navigation and a hash router (#/sql, #/pipes/<name>, ...). Pages live in pages/.
 */
import './style.css';
import { api, discoverLocalToken, getToken, setToken } from './api';
import { clear, errorBox, h } from './dom';
import { renderDatasources } from './pages/datasources';
import { renderObservability } from './pages/observability';
import { renderPipes } from './pages/pipes';
import { renderSql } from './pages/sql';
import { renderTokens } from './pages/tokens';

export type Page = (root: HTMLElement, args: string[]) => void | (() => void);

const PAGES: Array<{ id: string; title: string; render: Page }> = [
  { id: 'datasources', title: 'Data Sources', render: renderDatasources },
  { id: 'sql', title: 'SQL', render: renderSql },
  { id: 'pipes', title: 'Pipes', render: renderPipes },
  { id: 'observability', title: 'Observability', render: renderObservability },
  { id: 'tokens', title: 'Tokens', render: renderTokens },
];

const app = document.getElementById('app')!;
let cleanup: (() => void) | void;
let workspaceName = '';

function route(): { page: (typeof PAGES)[number]; args: string[] } {
  const parts = location.hash
    .replace(/^#\/?/, '')
    .split('/')
    .map((p) => decodeURIComponent(p));
  const page = PAGES.find((p) => p.id === parts[0]) ?? PAGES[0];
  return { page, args: parts.slice(1).filter(Boolean) };
}

function render(): void {
  if (!getToken()) return;
  const { page, args } = route();
  if (typeof cleanup === 'function') cleanup();
  cleanup = undefined;
  const main = h('main', { id: 'main', tabindex: '-1' });
  const nav = h(
    'nav',
    { 'aria-label': 'Console' },
    h(
      'ul',
      null,
      PAGES.map((p) => h('li', null, h('a', { href: `#/${p.id}`, 'aria-current': p.id === page.id ? 'page' : null }, p.title))),
    ),
  );
  const signOut = h('button', { type: 'button', class: 'link' }, 'Change token');
  signOut.addEventListener('click', () => {
    setToken(null);
    showLogin();
  });
  clear(
    app,
    h('a', { href: '#main', class: 'skip' }, 'Skip to content'),
    h(
      'header',
      { class: 'top' },
      h('span', { class: 'brand' }, h('img', { src: '/console/favicon.svg', alt: '', width: '22', height: '22' }), 'Pipit'),
      h('span', { class: 'ws', title: 'Workspace' }, workspaceName),
      signOut,
    ),
    h('div', { class: 'layout' }, nav, main),
  );
  document.title = `${page.title} · Pipit console`;
  try {
    cleanup = page.render(main, args);
  } catch (err) {
    main.append(errorBox(err));
  }
}

async function checkToken(token: string): Promise<string> {
  const ws = await api<{ name: string }>('GET', '/v1/workspace', { token });
  return ws.name;
}

function showLogin(message?: string): void {
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true, size: 60 });
  const status = h('div', { role: 'status', 'aria-live': 'polite' });
  const form = h(
    'form',
    { class: 'login card' },
    h('h1', null, 'Pipit console'),
    h('p', null, 'Paste a token of your workspace. It is kept in this browser tab only (sessionStorage) and sent in the Authorization header, never in a URL.'),
    h('label', { for: 'token' }, 'Token'),
    input,
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Open the console')),
    status,
  );
  if (message) status.append(errorBox(message));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    try {
      workspaceName = await checkToken(token);
      setToken(token);
      render();
    } catch (err) {
      clear(status, errorBox(err));
    }
  });
  clear(app, h('main', { class: 'center' }, form));
  input.focus();
}

async function start(): Promise<void> {
  let token = getToken();
  if (!token) token = await discoverLocalToken();
  if (token) {
    try {
      workspaceName = await checkToken(token);
      setToken(token);
      render();
      return;
    } catch {
      setToken(null);
    }
  }
  showLogin();
}

window.addEventListener('hashchange', () => {
  document.getElementById('toast')?.classList.remove('show');
  render();
  document.getElementById('main')?.focus({ preventScroll: true });
});
void start();
