/**
 * What `npm start` runs: `scripts/start.mjs` and the esbuild bundle dist/server/main.mjs, with its
 * bundled dependencies (Fastify and its plugins, busboy, yaml; chDB and PGlite stay imports). The
 * other suites run the TypeScript sources, so this one serves the paths that reach each bundled
 * dependency through the bundle itself, from a fresh data directory (the catalog seeded from the
 * install-time template) to a graceful stop.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildServer, startChild } from '../helpers/full-disk-server.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-bundle-'));
let s: ChildServer;

beforeAll(async () => {
  // Builds what is missing or older than the sources, as `npm start` would (CI's `npm ci` built it).
  execFileSync(process.execPath, ['scripts/build-server.mjs', '--if-stale'], { stdio: 'inherit' });
  // The default log level: a request line per request, written in batches to stdout.
  s = await startChild(dataDir, { PIPIT_LOG_LEVEL: 'info' }, ['--enable-source-maps', 'scripts/start.mjs']);
}, 120_000);

afterAll(async () => {
  await s?.kill();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('the built server (npm start)', () => {
  it('ingests JSON, gzip and multipart bodies, answers CORS preflights, serves an endpoint, and stops cleanly', async () => {
    const schema = 'id UInt32 `json:$.id`, s String `json:$.s`';
    let r = await s.req('POST', '/v0/datasources?name=ev&mode=create&format=ndjson', { body: new URLSearchParams({ schema }) });
    expect(r.status, await r.text()).toBe(200);
    // Events API: plain, then gzip-compressed.
    r = await s.req('POST', '/v0/events?name=ev&wait=true', { body: '{"id":1,"s":"a"}\n' });
    expect(await r.json()).toEqual({ successful_rows: 1, quarantined_rows: 0 });
    r = await s.req('POST', '/v0/events?name=ev&wait=true', {
      body: gzipSync('{"id":2,"s":"b"}\n{"id":3,"s":"c"}\n'),
      headers: { 'content-encoding': 'gzip' },
    });
    expect(await r.json()).toEqual({ successful_rows: 2, quarantined_rows: 0 });
    // A multipart file (busboy).
    const fd = new FormData();
    fd.append('ndjson', new Blob(['{"id":4,"s":"d"}\n']), 'rows.ndjson');
    r = await s.req('POST', '/v0/datasources?name=ev&mode=append&format=ndjson', { body: fd });
    expect(r.status, await r.text()).toBe(200);
    // A browser's preflight.
    r = await fetch(`${s.url}/v0/events?name=ev`, {
      method: 'OPTIONS',
      headers: { origin: 'http://example.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(r.status).toBeLessThan(300);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    // A pipe from a datafile-like JSON body, served as an endpoint, gzip-encoded on request.
    const pipe = {
      name: 'by_s',
      nodes: [{ name: 'n', sql: '%\nSELECT s, count() AS c FROM ev WHERE id >= {{ Int32(min_id, 0) }} GROUP BY s ORDER BY s', type: 'endpoint' }],
    };
    r = await s.req('POST', '/v0/pipes', { body: JSON.stringify(pipe), headers: { 'content-type': 'application/json' } });
    expect(r.status, await r.text()).toBe(200);
    r = await s.req('GET', '/v0/pipes/by_s.json?min_id=2', { headers: { 'accept-encoding': 'gzip' } });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { data: unknown[] }).data).toEqual([
      { s: 'b', c: 1 },
      { s: 'c', c: 1 },
      { s: 'd', c: 1 },
    ]);
    // Errors keep Tinybird's shape.
    r = await s.req('GET', '/v0/pipes/nope.json');
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({ error: expect.stringContaining('nope') });
    expect(await s.stop()).toBe(0);
    // One request line for each of the 8 requests, the last one's included (sent right before
    // the stop: the lines held in the log's buffer are written when the process exits).
    if (!s.child.stdout!.readableEnded) await once(s.child.stdout!, 'end');
    const lines = s
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; reqId?: string; method?: string; status?: number; token_name?: string });
    const requests = lines.filter((l) => l.msg === 'request');
    expect(requests.map((l) => `${l.method} ${l.status}`)).toEqual([
      'POST 200',
      'POST 200',
      'POST 200',
      'POST 200',
      'OPTIONS 204',
      'POST 200',
      'GET 200',
      'GET 404',
    ]);
    expect(new Set(requests.map((l) => l.reqId)).size).toBe(8);
    expect(requests[0].token_name).toBe('workspace admin token');
    expect(lines.at(-1)?.msg).toBe('shutting down');
  }, 60_000);
});
