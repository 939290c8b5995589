/**
 * The web console (issue 16): how the server serves it (CSP, content types, no CORS, no path
 * escapes), and an acceptance run in headless Chromium (Playwright): open the console, create a
 * data source from a file, query it and chart it, build a two-node pipe with a parameter, publish
 * it and call the endpoint. Screenshots of every step go to test-artifacts/console/.
 * No Content-Security-Policy violation and no page error may happen along the way.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { startServer, type TestServer } from '../helpers/server.js';
import { CONSOLE_CSP } from '../../src/http/routes/console.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'console');

if (!HAVE_CHROMIUM) {
  process.stderr.write(
    '\n' +
      '!'.repeat(100) +
      '\n' +
      `!!! SKIPPING the console browser tests: ${CHROMIUM} is missing. Install it: apt-get install -y chromium (.ci/run does).\n` +
      '!'.repeat(100) +
      '\n\n',
  );
}

/** Builds the console when dist/console is missing or older than its sources (as `npm start` does). */
function ensureConsoleBuilt(): void {
  execFileSync(process.execPath, [path.join(ROOT, 'console', 'build.mjs'), '--if-stale'], { cwd: ROOT, stdio: 'inherit' });
}

let s: TestServer;

beforeAll(async () => {
  ensureConsoleBuilt();
  s = await startServer();
});

afterAll(async () => {
  await s?.close();
});

describe('console: how it is served', () => {
  it('redirects / to /console/ and serves the page with a strict CSP and no CORS', async () => {
    const root = await fetch(`${s.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/console/');

    for (const p of ['/console/', '/console', '/console/index.html']) {
      const r = await fetch(s.url + p);
      expect(r.status, p).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const csp = r.headers.get('content-security-policy') ?? '';
      expect(csp).toBe(CONSOLE_CSP);
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      expect(csp).toContain("frame-ancestors 'none'");
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('access-control-allow-origin')).toBeNull();
      const html = await r.text();
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    }
  });

  it('serves the built assets with their content types, cached for good', async () => {
    const html = await (await fetch(`${s.url}/console/`)).text();
    const js = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    const css = /href="(\/console\/assets\/[^"]+\.css)"/.exec(html)?.[1];
    expect(js && css).toBeTruthy();
    const rj = await fetch(s.url + js!);
    expect(rj.status).toBe(200);
    expect(rj.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(rj.headers.get('cache-control')).toContain('immutable');
    const rc = await fetch(s.url + css!);
    expect(rc.headers.get('content-type')).toBe('text/css; charset=utf-8');
    const icon = await fetch(`${s.url}/console/favicon.svg`);
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    // The bundle holds no eval and no Function constructor (the CSP would refuse them anyway).
    const code = await rj.text();
    expect(code).not.toMatch(/\beval\(/);
    expect(code).not.toMatch(/new Function\(/);
  });

  it('serves nothing outside the build directory', async () => {
    for (const p of [
      '/console/..%2fpackage.json',
      '/console/%2e%2e/package.json',
      '/console/assets/..%2F..%2F..%2Fpackage.json',
      '/console/.vite/manifest.json',
      '/console/nope.js',
      '/console/index.html%00.js',
      '/console/assets',
      '/console/..%5cpackage.json',
    ]) {
      const r = await fetch(s.url + p);
      expect([400, 404], p).toContain(r.status);
      expect(await r.text()).not.toContain('"dependencies"');
    }
  });

  it('adds no API: the console route needs no token and grants none', async () => {
    const r = await fetch(`${s.url}/console/`, { headers: { authorization: 'Bearer nonsense' } });
    expect(r.status).toBe(200);
    const api = await s.req('GET', '/v0/datasources', { token: null });
    expect(api.status).toBe(403);
  });
});

describe.skipIf(!HAVE_CHROMIUM)('console: in Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  let userDataDir: string;

  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--host-resolver-rules=MAP pipit.test 127.0.0.1',
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
    page.on('console', (m) => {
      // A 4xx answer is logged by the browser as "Failed to load resource": expected (e.g. tinybird.* not there yet).
      if ((m.type() === 'error' && !m.text().startsWith('Failed to load resource')) || /Content Security Policy/i.test(m.text()))
        problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  });

  afterAll(async () => {
    await context?.close();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

  /** Replaces the text of the n-th CodeMirror editor on the page, as a user would (keyboard). */
  async function typeSql(index: number, sql: string): Promise<void> {
    const content = page.locator('.cm-content').nth(index);
    await content.click();
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(sql);
    await page.keyboard.press('Escape'); // close a completion popup, if any
  }

  it('opens, creates a data source from a file, charts a query, publishes a two-node pipe with a parameter', async () => {
    // 1. Open: on loopback the console picks up the admin token from GET /tokens.
    await page.goto(`${s.url}/`);
    await page.getByRole('navigation').getByRole('link', { name: 'Data Sources' }).waitFor();
    expect(page.url()).toBe(`${s.url}/console/`);
    await page.getByText('No data sources yet').waitFor();
    expect(await page.evaluate(() => location.href)).not.toContain('p.'); // the token is in no URL
    await shot('01-open');

    // 2. A data source from a file (the drop zone's file input), with upload progress.
    const csv =
      'day,city,amount\n2024-01-01,Madrid,10\n2024-01-01,Paris,25\n2024-01-02,Madrid,7\n2024-01-02,Paris,30\n2024-01-03,Madrid,12\n2024-01-03,Lyon,4\n';
    await page.locator('#ds-file').setInputFiles({ name: 'sales.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    expect(await page.locator('#ds-name').inputValue()).toBe('sales');
    await page.getByTestId('upload').click();
    await page.getByTestId('upload-status').getByText('Appended to sales').waitFor();
    expect(await page.locator('progress[aria-label="Upload progress"]').evaluate((p) => (p as HTMLProgressElement).value)).toBe(100);
    const count = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() AS c FROM sales FORMAT JSON')}`);
    expect((await count.json()).data[0].c).toBe(6);
    await page.getByRole('link', { name: 'Open sales' }).click();
    await page.getByRole('heading', { name: 'sales', level: 1 }).waitFor();
    await page.locator('section', { hasText: 'Preview' }).getByText('Madrid').first().waitFor();
    await page.getByText('No rows in quarantine.').waitFor();
    // Append a file with a bad row: the good ones go in, the bad one to quarantine, with its reason.
    await page.locator('#ds-file').setInputFiles({ name: 'more.csv', mimeType: 'text/csv', buffer: Buffer.from('day,city,amount\n2024-01-04,Rome,many\n') });
    await page.getByTestId('upload').click();
    await page.getByTestId('upload-status').getByText('1 row in quarantine').waitFor();
    const quarantine = page.locator('section', { has: page.getByRole('heading', { name: 'Quarantine' }) });
    await quarantine.getByText('1 row did not fit the schema.').waitFor();
    await quarantine.locator('ul.reasons').getByText("'many'").waitFor();
    await shot('02-datasource');

    // 3. SQL: run a query, see its chart.
    await page.getByRole('navigation').getByRole('link', { name: 'SQL' }).click();
    // Completion knows the workspace's data sources.
    await typeSql(0, 'SELECT * FROM sal');
    await page.keyboard.press('Control+Space');
    await page.locator('.cm-tooltip-autocomplete').getByText('sales_quarantine').waitFor();
    await typeSql(0, 'SELECT toDate(day) AS d, sum(amount) AS total, count() AS n FROM sales GROUP BY d ORDER BY d');
    await page.keyboard.press('ControlOrMeta+Enter'); // runs from the keyboard
    await page.getByTestId('stats').getByText('3 rows', { exact: true }).waitFor();
    await page.getByRole('tab', { name: 'Chart' }).click();
    await page.getByTestId('chart').locator('canvas').waitFor();
    await page.getByLabel('Chart type').selectOption('bar');
    await page.getByTestId('chart').locator('canvas').waitFor();
    await shot('03-sql-chart');

    // 4. A pipe: two nodes, a template parameter, publish the second as the endpoint.
    await page.getByRole('navigation').getByRole('link', { name: 'Pipes' }).click();
    await page.locator('#pipe-name').fill('sales_by_city');
    await page.getByTestId('create-pipe').click();
    await page.getByRole('heading', { name: /sales_by_city/, level: 1 }).waitFor();
    await typeSql(0, '%\nSELECT * FROM sales WHERE amount >= {{ Int32(min_amount, 0) }}');
    await page.locator('[data-param="min_amount"]').waitFor(); // detected from the draft
    await page.getByTestId('run-node-0').click();
    await page.locator('[data-node="sales_by_city_0"]').getByTestId('stats').getByText('6 rows', { exact: true }).waitFor();
    await page.getByTestId('save-node-0').click();
    await page.locator('[data-node="sales_by_city_0"] .dirty[hidden]').waitFor({ state: 'attached' });
    await page.getByTestId('add-node').click();
    await page.locator('[data-node="sales_by_city_1"]').waitFor();
    await typeSql(1, 'SELECT city, sum(amount) AS total FROM sales_by_city_0 GROUP BY city ORDER BY city');
    await page.locator('[data-param="min_amount"]').fill('10');
    await page.getByTestId('run-node-1').click();
    const node1 = page.locator('[data-node="sales_by_city_1"]');
    await node1.getByTestId('stats').getByText('2 rows', { exact: true }).waitFor(); // Madrid 22, Paris 55 (Lyon 4 < 10)
    await page.getByTestId('publish-node-1').click();
    await page.getByTestId('endpoint-url').getByText('/v0/pipes/sales_by_city.json').waitFor();
    await page.locator('[data-param="min_amount"]').fill('10');
    expect(await page.getByTestId('endpoint-url').textContent()).toBe(`${s.url}/v0/pipes/sales_by_city.json?min_amount=10`);
    await page.getByTestId('call-endpoint').click();
    await page.getByTestId('endpoint-result').getByText('Paris').waitFor();
    await shot('04-pipe');

    // 5. The endpoint answers outside the console too.
    const ep = await s.req('GET', '/v0/pipes/sales_by_city.json?min_amount=10');
    expect(ep.status).toBe(200);
    expect((await ep.json()).data).toEqual([
      { city: 'Madrid', total: 22 },
      { city: 'Paris', total: 55 },
    ]);
    const pipe = await (await s.req('GET', '/v0/pipes/sales_by_city')).json();
    expect(pipe.nodes.map((n: { name: string }) => n.name)).toEqual(['sales_by_city_0', 'sales_by_city_1']);
    expect(pipe.nodes[0].params.map((p: { name: string }) => p.name)).toEqual(['min_amount']);

    // 6. Observability (degrades clearly without the service data sources) and Tokens.
    await page.getByRole('navigation').getByRole('link', { name: 'Observability' }).click();
    await page.getByTestId('jobs').or(page.getByText('No jobs in the last 48 hours.')).first().waitFor();
    await page.getByTestId('service-unavailable').or(page.getByText('Over time')).first().waitFor();
    await shot('05-observability');
    await page.getByRole('navigation').getByRole('link', { name: 'Tokens' }).click();
    await page.getByTestId('tokens').waitFor();
    await page.locator('#tok-name').fill('sales_reader');
    await page.getByLabel('Scope', { exact: true }).selectOption('PIPES:READ');
    await page.getByLabel('Resource').selectOption('sales_by_city');
    await page.getByTestId('create-token').click();
    await page.getByTestId('token-created').waitFor();
    await page.getByTestId('tokens').getByText('PIPES:READ:sales_by_city').waitFor();
    await shot('06-tokens');
    const tokens = (await (await s.req('GET', '/v0/tokens')).json()).tokens as Array<{ name: string; token: string }>;
    const reader = tokens.find((t) => t.name === 'sales_reader')!;
    expect((await s.req('GET', '/v0/pipes/sales_by_city.json?min_amount=10', { token: reader.token })).status).toBe(200);
    expect((await s.req('GET', '/v0/tokens', { token: reader.token })).status).toBe(403);

    expect(await page.evaluate(() => sessionStorage.length)).toBeGreaterThan(0);
    expect(problems).toEqual([]);
  });

  it('materializes a node with the form the API takes, populating it', async () => {
    const created = await s.req('POST', '/v0/pipes', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'big_sales', nodes: [{ name: 'big', sql: 'SELECT day, city, amount FROM sales WHERE amount > 9' }] }),
    });
    expect(created.status).toBe(200);
    await page.goto(`${s.url}/console/#/pipes/big_sales`);
    const node = page.locator('[data-node="big"]');
    await node.getByText('Materialize, copy or sink').click();
    await node.getByLabel('Target data source').first().fill('big_sales_mv');
    await node.getByLabel('Populate with existing data').check();
    await node.getByRole('button', { name: 'Materialize', exact: true }).click();
    await node.locator('.badge.materialized').waitFor();
    await node.getByRole('button', { name: 'Unlink' }).waitFor();
    const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() AS c FROM big_sales_mv FORMAT JSON')}`);
    expect((await r.json()).data[0].c).toBe(4); // Madrid 10, Paris 25, Paris 30, Madrid 12
    await shot('08-materialized');
    expect(problems).toEqual([]);
  });

  it('elsewhere than loopback names, asks for a token, keeps it in the session and out of URLs', async () => {
    // `pipit.test` resolves to 127.0.0.1 (--host-resolver-rules) but is not a local Host name:
    // GET /tokens refuses it, as it would for any remote client.
    const other = await context.newPage();
    const requests: string[] = [];
    other.on('request', (r) => requests.push(r.url()));
    other.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    const origin = s.url.replace('127.0.0.1', 'pipit.test');
    await other.goto(`${origin}/console/`);
    const input = other.getByLabel('Token');
    await input.waitFor();
    await input.fill('p.not-a-token');
    await other.getByRole('button', { name: 'Open the console' }).click();
    await other.getByRole('alert').waitFor();
    await input.fill(s.token);
    await input.press('Enter');
    await other.getByRole('navigation').getByRole('link', { name: 'Data Sources' }).waitFor();
    await other.getByTestId('datasources').getByRole('link', { name: 'sales', exact: true }).waitFor();
    await other.screenshot({ path: path.join(ARTIFACTS, '07-remote-signed-in.png') });
    expect(await other.evaluate(() => Object.values(sessionStorage))).toContain(s.token);
    expect(await other.evaluate(() => localStorage.length)).toBe(0);
    for (const u of requests) expect(u).not.toContain(s.token);
    await other.close();
    expect(problems).toEqual([]);
  });
});
