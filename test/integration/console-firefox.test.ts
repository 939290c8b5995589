/**
 * The web console in Firefox (Debian's firefox-esr, driven over WebDriver BiDi by puppeteer-core;
 * Playwright's own Firefox build cannot be installed here). The Chromium suite
 * (console.test.ts) walks every page; this one checks that what differs between engines works in
 * Firefox too: the ES module bundle under the strict CSP, CodeMirror inside shadow roots, the file
 * input and upload progress, keyboard shortcuts, the uPlot canvas, and a published endpoint called
 * from the page. No CSP violation and no page error may happen along the way.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, ElementHandle, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FIREFOX = '/usr/bin/firefox-esr';
const HAVE_FIREFOX = fs.existsSync(FIREFOX);
const ARTIFACTS = path.join(ROOT, 'test-artifacts', 'console-firefox');

if (!HAVE_FIREFOX) {
  process.stderr.write(
    `\n${'!'.repeat(100)}\n!!! SKIPPING the console tests in Firefox: ${FIREFOX} is missing. Install it: apt-get install -y firefox-esr (.ci/run does).\n${'!'.repeat(100)}\n\n`,
  );
}

describe.skipIf(!HAVE_FIREFOX)('console: in Firefox', () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  let profile: string;
  const problems: string[] = [];

  beforeAll(async () => {
    s = await startServer();
    const puppeteer = (await import('puppeteer-core')).default;
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-firefox-'));
    browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: FIREFOX,
      headless: true,
      userDataDir: profile,
      // Firefox ESR 140 lacks BiDi's viewport emulation: the window has the size instead.
      defaultViewport: null,
      args: ['--window-size=1280,900'],
      // No connection leaves loopback: updates, telemetry, captive-portal and safe-browsing checks off.
      extraPrefsFirefox: {
        'app.update.enabled': false,
        'network.captive-portal-service.enabled': false,
        'network.connectivity-service.enabled': false,
        'browser.safebrowsing.malware.enabled': false,
        'browser.safebrowsing.phishing.enabled': false,
        'datareporting.policy.dataSubmissionEnabled': false,
        'toolkit.telemetry.enabled': false,
      },
    });
    page = await browser.newPage();
    page.setDefaultTimeout(20_000);
    // Firefox reports CSP violations to its own console only: the page's event reports them here.
    await page.evaluateOnNewDocument(() => {
      document.addEventListener('securitypolicyviolation', (e) => console.error(`Content-Security-Policy violation: ${e.violatedDirective} ${e.blockedURI}`));
    });
    page.on('console', (m) => {
      const text = m.text();
      // A 4xx answer may be logged as a failed load: expected (e.g. a data source with no rows yet).
      if ((m.type() === 'error' && !/Failed to load resource|NetworkError/.test(text)) || /Content[- ]Security[- ]Policy/i.test(text))
        problems.push(`console.${m.type()}: ${text}`);
    });
    page.on('pageerror', (e) => {
      const err = e instanceof Error ? e : new Error(String(e));
      // puppeteer's own polling scripts (pptr: sources) may touch a page object Firefox has just
      // replaced and get an Xray "Permission denied to access property": the harness's, not the console's.
      if (err.stack?.includes('pptr:') || /^Permission denied to access property/.test(err.message)) return;
      problems.push(`pageerror: ${err.message}\n${err.stack ?? ''}`);
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await s?.close();
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
  });

  const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) as `${string}.png`, fullPage: true });
  /** The first element matching `selector` whose text contains `text`, once it exists. */
  const withText = (selector: string, text: string) => page.waitForSelector(`${selector} ::-p-text(${JSON.stringify(text)})`);

  /** Polls `check` from here: the page's CSP refuses the Function() that waitForFunction evaluates. */
  async function until(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
    for (const end = Date.now() + ms; !(await check()); ) {
      if (Date.now() > end) throw new Error(`timed out: ${check}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Replaces the text of the n-th CodeMirror editor, from the keyboard. */
  async function typeSql(index: number, sql: string): Promise<void> {
    await page.waitForSelector('>>> .cm-content');
    const editors = await page.$$('>>> .cm-content');
    await editors[index].click();
    await page.keyboard.down('Control');
    await page.keyboard.press('a');
    await page.keyboard.up('Control');
    await page.keyboard.press('Delete');
    await page.keyboard.type(sql);
    await page.keyboard.press('Escape');
  }

  it('opens, uploads a file, runs and charts a query, publishes and calls an endpoint', async () => {
    // Open on loopback: the console picks up the admin token from GET /tokens.
    await page.goto(`${s.url}/`);
    await withText('nav', 'Data Sources');
    expect(page.url()).toBe(`${s.url}/console/`);
    await withText('main', 'No data sources yet');
    await shot('01-open');

    // A data source from a file, through the file input.
    const csv = 'day,city,amount\n2024-01-01,Madrid,10\n2024-01-01,Paris,25\n2024-01-02,Madrid,7\n2024-01-02,Paris,30\n2024-01-03,Lyon,4\n';
    const file = path.join(profile, 'sales.csv');
    fs.writeFileSync(file, csv);
    const input = (await page.waitForSelector('#ds-file')) as ElementHandle<HTMLInputElement>;
    await input.uploadFile(file);
    await until(async () => (await page.$eval('#ds-name', (e) => (e as HTMLInputElement).value)) === 'sales');
    await page.click('[data-testid="upload"]');
    await withText('[data-testid="upload-status"]', 'Appended to sales');
    const count = await s.req('GET', `/v0/sql?q=${encodeURIComponent('SELECT count() AS c FROM sales FORMAT JSON')}`);
    expect((await count.json()).data[0].c).toBe(5);
    await shot('02-datasource');

    // SQL: run from the keyboard, then the chart (a canvas).
    await (await withText('nav a', 'SQL'))!.click();
    await typeSql(0, 'SELECT toDate(day) AS d, sum(amount) AS total FROM sales GROUP BY d ORDER BY d');
    await page.keyboard.down('Control');
    await page.keyboard.press('Enter');
    await page.keyboard.up('Control');
    await withText('[data-testid="stats"]', '3 rows');
    await (await withText('[role="tab"]', 'Chart'))!.click();
    await page.waitForSelector('[data-testid="chart"] canvas');
    await shot('03-sql-chart');

    // A pipe with a template parameter, published and called from the page.
    await (await withText('nav a', 'Pipes'))!.click();
    await page.type('#pipe-name', 'by_city');
    await page.click('[data-testid="create-pipe"]');
    await withText('h1', 'by_city');
    await typeSql(0, '%\nSELECT city, sum(amount) AS total FROM sales WHERE amount >= {{ Int32(min_amount, 0) }} GROUP BY city ORDER BY city');
    await page.waitForSelector('[data-param="min_amount"]');
    await page.click('[data-testid="run-node-0"]');
    await withText('[data-node="by_city_0"] [data-testid="stats"]', '3 rows');
    await page.click('[data-testid="save-node-0"]');
    await page.waitForSelector('[data-node="by_city_0"] .dirty[hidden]', { visible: false });
    await page.click('[data-testid="publish-node-0"]');
    await withText('[data-testid="endpoint-url"]', '/v0/pipes/by_city.json');
    await page.type('[data-param="min_amount"]', '10');
    await page.click('[data-testid="call-endpoint"]');
    await withText('[data-testid="endpoint-result"]', 'Paris');
    await shot('04-pipe');

    const ep = await s.req('GET', '/v0/pipes/by_city.json?min_amount=10');
    expect((await ep.json()).data).toEqual([
      { city: 'Madrid', total: 10 },
      { city: 'Paris', total: 55 },
    ]);
    expect(await page.evaluate(() => sessionStorage.length)).toBeGreaterThan(0);
    expect(problems).toEqual([]);

    // The watch above sees violations: an inline script is refused, and reported.
    await page.evaluate(() => {
      const el = document.createElement('script');
      el.textContent = 'window.inlineRan = true';
      document.head.append(el);
    });
    await until(async () => problems.length > 0);
    expect(problems.join('\n')).toMatch(/Content-Security-Policy violation: script-src/);
    expect(await page.evaluate(() => 'inlineRan' in window)).toBe(false);
  }, 120_000);
});
