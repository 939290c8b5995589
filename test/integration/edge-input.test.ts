/**
 * Issue 10, items 4, 8 and 14, replayed over real HTTP:
 * - 4: `GET /tokens` answers only for a loopback or configured Host and carries no CORS grant
 *   (a web page, by cross-origin fetch or DNS rebinding, cannot read the tokens);
 * - 8: no token reaches the log at any level (`?token=`, token values in paths, Authorization);
 * - 14: bad input is a 400 with a message, never a 500: NUL characters, deeply nested JSON,
 *   over-long names; errors raised by the frameworks (bad percent-encoding, 431, malformed HTTP)
 *   use the {"error": "..."} shape.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
const logLines: string[] = [];
const json = { 'content-type': 'application/json' };
const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });

beforeAll(async () => {
  // Every level, into a collector: the redaction must hold for trace and debug lines too.
  s = await startServer({ config: { logLevel: 'trace', logDestination: { write: (line: string) => logLines.push(line) } } });
  const r = await s.req('POST', '/v0/datasources?name=events&mode=create', form({ schema: 'a Int32 `json:$.a`' }));
  expect(r.status).toBe(200);
}, 60_000);
afterAll(async () => {
  await s?.close();
});

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request with headers fetch() would not send (Host, Origin). */
function raw(method: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const u = new URL(s.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: Number(u.port), method, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Bytes written straight to a socket (malformed HTTP); the whole answer as text. */
function socketRequest(text: string): Promise<string> {
  const u = new URL(s.url);
  return new Promise((resolve) => {
    let out = '';
    const c = net.connect(Number(u.port), '127.0.0.1', () => c.write(text));
    c.on('data', (d) => (out += d));
    c.on('close', () => resolve(out));
    c.on('error', () => undefined);
    c.setTimeout(10_000, () => c.destroy());
  });
}

const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));

describe('item 4: GET /tokens', () => {
  it('answers for localhost, loopback addresses (with or without port) and the configured host', async () => {
    const port = new URL(s.url).port;
    for (const host of [`localhost:${port}`, 'localhost', `127.0.0.1:${port}`, '127.8.9.10', `[::1]:${port}`, '[::1]', 'LOCALHOST.']) {
      const r = await raw('GET', '/tokens', { host });
      expect(r.status, host).toBe(200);
      expect(JSON.parse(r.body).workspace_admin_token).toBe(s.token);
    }
    const config = s.app.services.config as { apiHost: string };
    const before = config.apiHost;
    try {
      config.apiHost = 'https://pipit.example.com';
      expect((await raw('GET', '/tokens', { host: 'pipit.example.com' })).status).toBe(200);
      expect((await raw('GET', '/tokens', { host: 'pipit.example.com:443' })).status).toBe(200);
      expect((await raw('GET', '/tokens', { host: 'other.example.com' })).status).toBe(403);
      config.apiHost = 'http://0.0.0.0:7181'; // a wildcard bind address names no host (pages can target 0.0.0.0)
      expect((await raw('GET', '/tokens', { host: '0.0.0.0:7181' })).status).toBe(403);
    } finally {
      config.apiHost = before;
    }
  });

  it('refuses any other Host (DNS rebinding: evil.example resolving to 127.0.0.1) with 403 {error}', async () => {
    for (const host of ['evil.example', `evil.example:${new URL(s.url).port}`, 'localhost.evil.example', '127.0.0.1.evil.example', '10.0.0.1', '[::2]']) {
      const r = await raw('GET', '/tokens', { host, origin: 'http://evil.example' });
      expect(r.status, host).toBe(403);
      const b = JSON.parse(r.body);
      expect(b.error).toMatch(/Host header/);
      expect(r.body).not.toContain(s.token);
      expect(r.headers['access-control-allow-origin']).toBeUndefined();
    }
  });

  it('carries no CORS grant, on GET and on its preflight; other routes keep theirs', async () => {
    const get = await raw('GET', '/tokens', { host: 'localhost', origin: 'http://evil.example' });
    expect(get.status).toBe(200);
    for (const h of Object.keys(get.headers)) expect(h.startsWith('access-control-'), h).toBe(false);
    const pre = await raw('OPTIONS', '/tokens', { host: 'localhost', origin: 'http://evil.example', 'access-control-request-method': 'GET' });
    expect(pre.status).toBe(204);
    for (const h of Object.keys(pre.headers)) expect(h.startsWith('access-control-'), h).toBe(false);
    const other = await raw('OPTIONS', '/v0/sql', { host: 'localhost', origin: 'http://example.com' });
    expect(other.headers['access-control-allow-origin']).toBe('*');
    expect((await s.req('GET', '/v0/datasources')).headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('item 8: no token in the logs', () => {
  it('?token=, tokens in paths, Authorization headers and error messages are redacted at every level', async () => {
    const admin = s.token;
    const user = s.app.services.localTokens.user_token;
    const jwt = (
      await (
        await s.req('POST', `/v0/tokens?expiration_time=${Math.floor(Date.now() / 1000) + 3600}`, {
          headers: json,
          body: JSON.stringify({ name: 'tracker', scopes: [{ type: 'DATASOURCES:APPEND', resource: 'events' }] }),
        })
      ).json()
    ).token as string;
    expect(jwt).toMatch(/^eyJ/);
    logLines.length = 0;
    // A browser tracker posting with its token in the query string (the reported case).
    for (let i = 0; i < 3; i++) expect((await s.req('POST', `/v0/events?name=events&token=${jwt}`, { body: '{"a":1}\n', token: null })).status).toBe(202);
    expect((await s.req('GET', `/v0/sql?q=SELECT+1&token=${admin}`, { token: null })).status).toBe(200);
    expect((await s.req('GET', `/v0/datasources?token=${encodeURIComponent(admin)}&x=1`, { token: null })).status).toBe(200);
    expect((await s.req('GET', `/v0/tokens/${admin}`)).status).toBe(200); // a token value in the path
    expect((await s.req('GET', `/v0/workspaces?token=${user}`, { token: null })).status).toBeLessThan(500);
    expect((await s.req('GET', '/v0/datasources?token=p.forged.value')).status).toBe(403);
    // Anything else that logs a URL or a header: an error log quoting them.
    s.app.http.log.error(
      {
        url: `/v0/pipes/x.json?token=${admin}`,
        headers: { authorization: `Bearer ${admin}` },
        err: new Error(`fetch of http://x/?a=1&token=${user} failed; Bearer ${jwt}`),
      },
      'request failed',
    );
    await new Promise((r) => setTimeout(r, 50));

    const log = logLines.join('');
    // One line per request names its route and the token's name, never a value (issue 13's request log).
    expect(log).toContain('"route":"/v0/sql"');
    expect(log).toContain('"route":"/v0/events","family":"events"');
    expect(log).toContain('"token_name":"tracker"');
    expect(log).toContain('/v0/pipes/x.json?token=[REDACTED]'); // a URL another log line quotes loses its token
    for (const secret of [admin, user, jwt, admin.split('.')[2], jwt.split('.')[2], 'p.forged.value']) {
      expect(log.includes(secret), `a secret appears in the log: ${secret.slice(0, 12)}…`).toBe(false);
    }
  });
});

describe('item 14: NUL characters', () => {
  it('/v0/jobs/a%00b → 400 naming the parameter', async () => {
    const r = await s.req('GET', '/v0/jobs/a%00b');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/Invalid "id": text must not contain the NUL character/);
  });

  it('descriptions, token descriptions and node SQL in JSON → 400 naming the field; nothing is created', async () => {
    const cases: Array<[Promise<Response>, RegExp]> = [
      [s.req('POST', '/v0/tokens?name=t_nul&scope=ADMIN&description=a%00b'), /"description"/],
      [s.req('POST', '/v0/datasources?name=d_nul&mode=create&description=a%00b', form({ schema: 'a Int32' })), /"description"/],
      [s.req('PUT', '/v0/datasources/events?description=a%00b'), /"description"/],
      [
        s.req('POST', '/v0/pipes', { headers: json, body: JSON.stringify({ name: 'p_nul', nodes: [{ name: 'n0', sql: 'SELECT 1 -- \u0000' }] }) }),
        /"nodes\[0\]\.sql"/,
      ],
      [s.req('POST', '/v0/pipes', { headers: json, body: JSON.stringify({ name: 'p_nul2', description: 'x\u0000', sql: 'SELECT 1' }) }), /"description"/],
      [s.req('POST', '/v0/datasources?name=d%00x&mode=create', form({ schema: 'a Int32' })), /Invalid Data Source name/],
      [s.req('GET', '/v0/pipes/p%00x'), /NUL/],
      [s.req('GET', '/v0/sql?q=SELECT+1&pipeline=a%00b'), /./],
    ];
    for (const [req, msg] of cases) {
      const r = await req;
      const text = await r.text();
      expect(r.status, text).toBeGreaterThanOrEqual(400);
      expect(r.status, text).toBeLessThan(500);
      expect(JSON.parse(text).error).toMatch(msg);
    }
    const tokens = await (await s.req('GET', '/v0/tokens')).json();
    expect(tokens.tokens.map((t: { name: string }) => t.name)).not.toContain('t_nul');
    const pipes = await (await s.req('GET', '/v0/pipes')).json();
    expect(pipes.pipes).toEqual([]);
  });
});

describe('item 14: deeply nested JSON', () => {
  const deepArray = '['.repeat(10_000) + ']'.repeat(10_000);
  const deepObject = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);

  it('/v0/analyze with 100k levels → 400 naming the limit (was a stack overflow → 500)', async () => {
    for (const line of [deepObject, `{"a":${'['.repeat(100_000) + ']'.repeat(100_000)}}`]) {
      const r = await s.req('POST', '/v0/analyze', { body: `${line}\n` });
      expect(r.status).toBe(400);
      expect((await r.json()).error).toMatch(/nested too deeply: at most 100 levels/);
    }
    // 100 levels are still analysed.
    const ok = await s.req('POST', '/v0/analyze', { body: `${'{"a":'.repeat(99)}1${'}'.repeat(99)}\n` });
    expect(ok.status).toBe(200);
  });

  it('Events API auto-creation and NDJSON data source creation → 400', async () => {
    const ev = await s.req('POST', '/v0/events?name=deep_events', { body: `${deepObject}\n` });
    expect(ev.status).toBe(400);
    const ds = await s.req('POST', '/v0/datasources?name=deep_ds&format=ndjson', { body: `${deepObject}\n` });
    expect(ds.status).toBe(400);
    expect((await ds.json()).error).toMatch(/nested too deeply/);
  });

  it('JSON request bodies and template_parameters → 400', async () => {
    const bodies: Array<[string, string]> = [
      ['/v0/sql', `{"q":"SELECT 1","x":${deepArray}}`],
      ['/v0/pipes', `{"name":"deep","nodes":[{"name":"n","sql":"SELECT 1","x":${deepArray}}]}`],
      [`/v0/tokens?expiration_time=${Math.floor(Date.now() / 1000) + 60}`, `{"name":"j","scopes":${deepArray}}`],
      ['/v0/tokens?name=deep&scope=ADMIN', `{"description":${deepArray}}`],
      ['/v0/variables', `{"name":"v","value":${deepArray}}`],
      ['/v0/connectors', `{"name":"c","service":"local","x":${deepArray}}`],
      ['/v0/datasources/events/alter', `{"description":${deepArray}}`],
    ];
    for (const [path, body] of bodies) {
      const r = await s.req('POST', path, { headers: json, body });
      expect(r.status, path).toBe(400);
      expect((await r.json()).error, path).toMatch(/nested too deeply/);
    }
    const tp = await s.req('POST', '/v0/sql', form({ q: '% SELECT 1', template_parameters: `{"a":${deepArray}}` }));
    expect(tp.status).toBe(400);
    expect((await tp.json()).error).toMatch(/template_parameters is nested too deeply/);
  });
});

describe('item 14: one name length limit (255)', () => {
  const long = (n: number) => 'n'.repeat(n);

  it('a 1 MB pipe name and 20,000-character names → 400 that does not echo the name', async () => {
    const cases: Array<[Promise<Response>, RegExp]> = [
      [
        s.req('POST', '/v0/pipes', { headers: json, body: JSON.stringify({ name: long(1_000_000), sql: 'SELECT 1' }) }),
        /pipe name: it is 1000000 characters long, the limit is 255/,
      ],
      [s.req('POST', '/v0/pipes', { headers: json, body: JSON.stringify({ name: long(20_000), sql: 'SELECT 1' }) }), /pipe name: it is 20000 characters long/],
      [
        s.req('POST', '/v0/pipes', { headers: json, body: JSON.stringify({ name: 'ok_pipe', nodes: [{ name: long(256), sql: 'SELECT 1' }] }) }),
        /node name: it is 256/,
      ],
      [s.req('POST', '/v0/datasources?mode=create', form({ name: long(256), schema: 'a Int32' })), /Data Source name: it is 256/],
      [s.req('POST', '/v0/datasources?name=cols&mode=create', form({ schema: `${long(256)} Int32` })), /column name at position 1: it is 256/],
      [s.req('POST', '/v0/tokens', form({ name: long(20_000), scope: 'ADMIN' })), /token name: it is 20000/],
      [s.req('POST', '/v0/variables', form({ name: long(256), value: 'x' })), /variable name: it is 256/],
      [s.req('POST', '/v0/connectors', form({ name: long(256), service: 'local', directory: 'x' })), /connection name: it is 256/],
      [s.req('POST', '/v0/events?name=' + long(256), { body: '{"a":1}\n' }), /Data Source name: it is 256/],
      [s.req('POST', '/v0/workspaces', { ...form({ name: long(256) }), token: s.app.services.localTokens.user_token }), /workspace name: it is 256/],
    ];
    for (const [req, msg] of cases) {
      const r = await req;
      const text = await r.text();
      expect(r.status, text.slice(0, 200)).toBe(400);
      const error = text.startsWith('{') ? JSON.parse(text).error : text; // the Events API answers text
      expect(error).toMatch(msg);
      expect(text.length).toBeLessThan(1000);
    }
    expect((await (await s.req('GET', '/v0/pipes')).json()).pipes).toEqual([]);
  });

  it('255 characters are accepted; inferred column names are cut to fit', async () => {
    const name = `d${long(254)}`;
    const r = await s.req('POST', `/v0/datasources?name=${name}&mode=create`, form({ schema: `${long(255)} Int32` }));
    expect(r.status, await r.clone().text()).toBe(200);
    const keys = await s.req('POST', '/v0/datasources?name=long_keys&format=ndjson', {
      body: `${JSON.stringify({ ['k'.repeat(2000)]: 1, ['k'.repeat(2000) + 'x']: 2 })}\n`,
    });
    expect(keys.status, await keys.clone().text()).toBe(200);
    const cols = (await keys.json()).datasource.schema.columns as Array<{ name: string }>;
    expect(cols).toHaveLength(2);
    for (const c of cols) expect(c.name.length).toBeLessThanOrEqual(255);
    expect(new Set(cols.map((c) => c.name)).size).toBe(2);
  });
});

describe('item 14: framework errors in the {"error": "..."} shape', () => {
  it('bad percent-encoding in the path → 400 {error}', async () => {
    const r = await raw('GET', '/v0/pipes/%E0%A4%A');
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toEqual({ error: expect.stringMatching(/malformed percent-encoding/) });
  });

  it('a path segment over 1000 characters → 414 {error} without echoing it', async () => {
    const r = await raw('GET', `/v0/pipes/${'a'.repeat(5000)}`);
    expect(r.status).toBe(414);
    expect(JSON.parse(r.body)).toEqual({ error: expect.stringMatching(/longer than 1000 characters/) });
    expect(r.body.length).toBeLessThan(200);
  });

  it('header overflow → 431 {error} with a useful message', async () => {
    const answer = await socketRequest(`GET /v0/sql?q=SELECT+1 HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(bodyOf(answer)).toEqual({ error: expect.stringMatching(/Request header fields too large.*16 KB/) });
  });

  it('malformed HTTP → 400 {error} naming the problem', async () => {
    const answer = await socketRequest('POST /v0/sql HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(bodyOf(answer)).toEqual({ error: 'Malformed HTTP request: the Content-Length header is not a number' });
  });

  it('the server still answers afterwards', async () => {
    const r = await s.req('GET', '/v0/sql?q=SELECT+1+AS+x+FORMAT+JSON');
    expect(r.status).toBe(200);
  });
});

describe('response hygiene', () => {
  it('every response says X-Content-Type-Options: nosniff (data, errors, not found, the Events API)', async () => {
    const responses = [
      await s.req('GET', '/v0/sql?q=SELECT+1+FORMAT+CSV'),
      await s.req('GET', '/v0/sql?q=SELEC+1'),
      await s.req('GET', '/v0/nowhere'),
      await s.req('POST', '/v0/events?name=events', { body: '{"a":1}' }),
      await s.req('GET', '/v0/datasources', { token: null }),
    ];
    for (const r of responses) expect(r.headers.get('x-content-type-options'), r.url).toBe('nosniff');
  });

  it('the not-found answer echoes at most 200 characters of the path', async () => {
    const long = `/v0/${'x/'.repeat(4000)}`;
    const r = await s.req('GET', long);
    expect(r.status).toBe(404);
    const { error } = await r.json();
    expect(error).toBe(`Route not found: GET ${long.slice(0, 200)}...`);
    expect((await (await s.req('GET', '/v0/nowhere?x=1')).json()).error).toBe('Route not found: GET /v0/nowhere');
  });

  it('/v0/analyze?url= reads its sample and releases the rest of the download', async () => {
    let closed!: () => void;
    const released = new Promise<void>((r) => (closed = r));
    // An endless CSV: the analysis needs only its first megabyte.
    const files = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/csv' });
      const line = Buffer.from('1,hello,2024-01-01 00:00:00\n'.repeat(1000));
      const write = () => {
        while (res.write(line)) if (res.destroyed) return;
      };
      res.on('drain', write);
      res.on('close', () => closed());
      write();
    });
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
    try {
      const port = (files.address() as net.AddressInfo).port;
      const r = await s.req('POST', `/v0/analyze?url=${encodeURIComponent(`http://127.0.0.1:${port}/big.csv`)}`);
      expect(r.status).toBe(200);
      expect((await r.json()).analysis.columns.length).toBe(3);
      const timeout = new Promise<string>((r) => setTimeout(() => r('still open'), 5000));
      expect(await Promise.race([released.then(() => 'released'), timeout])).toBe('released');
    } finally {
      files.closeAllConnections();
      await new Promise((r) => files.close(r));
    }
  });
});
