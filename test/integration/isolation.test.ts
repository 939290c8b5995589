/**
 * Workspaces on one server are isolated: with same-named data sources and pipes in two
 * workspaces, no token of one can list, read, query (by name, id or any SQL), modify or delete
 * anything of the other. Also the workspace and organization routes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, tableOf, type TestServer } from '../helpers/server.js';

let s: TestServer;
let userToken: string;
let tokenB: string;
const A = { ds: '', pipe: '', table: '' };
const JSON_HDR = { 'content-type': 'application/json' };

async function setup(token: string, marker: string): Promise<{ ds: string; pipe: string }> {
  const schema = 'k String `json:$.k`, v Int32 `json:$.v`';
  let r = await s.req('POST', '/v0/datasources?name=events&mode=create', { body: new URLSearchParams({ schema }), token });
  expect(r.status).toBe(200);
  const ds = (await r.json()).datasource.id;
  r = await s.req('POST', '/v0/events?name=events&wait=true', { body: JSON.stringify({ k: marker, v: 1 }), token });
  expect(r.status).toBe(200);
  r = await s.req('POST', '/v0/pipes', {
    token,
    headers: JSON_HDR,
    body: JSON.stringify({ name: 'p', nodes: [{ name: 'n', sql: 'SELECT k FROM events', type: 'endpoint' }] }),
  });
  expect(r.status).toBe(200);
  return { ds, pipe: (await r.json()).id };
}

beforeAll(async () => {
  s = await startServer();
  userToken = s.app.services.localTokens.user_token;
  const r = await s.req('POST', '/v0/workspaces', { body: new URLSearchParams({ name: 'second' }), token: userToken });
  expect(r.status, await r.clone().text()).toBe(200);
  tokenB = (await r.json()).token;
  Object.assign(A, await setup(s.token, 'secret-of-A'));
  A.table = (await tableOf(s, 'events')).table;
  await setup(tokenB, 'data-of-B');
}, 60_000);

afterAll(async () => {
  await s?.close();
});

describe('workspaces', () => {
  it('the user token lists and creates workspaces; names are unique', async () => {
    let r = await s.req('GET', '/v0/workspaces', { token: userToken });
    expect((await r.json()).workspaces.map((w: { name: string }) => w.name)).toEqual(['default', 'second']);
    r = await s.req('POST', '/v0/workspaces', { body: new URLSearchParams({ name: 'second' }), token: userToken });
    expect(r.status).toBe(409);
    r = await s.req('POST', '/v0/workspaces', { body: new URLSearchParams({ name: 'third' }), token: s.token });
    expect(r.status).toBe(403);
    r = await s.req('GET', '/v0/workspaces', { token: tokenB });
    expect((await r.json()).workspaces.map((w: { name: string }) => w.name)).toEqual(['second']);
    r = await s.req('GET', '/v0/workspace', { token: tokenB });
    expect(await r.json()).toMatchObject({ name: 'second', datasources: 1, pipes: 1 });
  });

  it('organization routes', async () => {
    const orgs = (await (await s.req('GET', '/v0/organizations', { token: userToken })).json()).organizations;
    expect(orgs).toHaveLength(1);
    const ws = (await (await s.req('GET', `/v0/organizations/${orgs[0].id}/workspaces`, { token: userToken })).json()).workspaces;
    expect(ws.map((w: { name: string }) => w.name)).toEqual(['default', 'second']);
    expect((await (await s.req('GET', `/v0/organizations/${orgs[0].id}/members`, { token: userToken })).json()).members).toHaveLength(1);
    expect((await s.req('GET', '/v0/organizations/nope/members', { token: userToken })).status).toBe(404);
  });
});

describe('isolation', () => {
  const leak = (text: string) => expect(text).not.toContain('secret-of-A');

  it('lists and reads only its own resources, by name or by id', async () => {
    for (const p of ['/v0/datasources', '/v0/pipes', '/v0/tokens', '/v0/jobs', '/v0/variables']) {
      const r = await s.req('GET', p, { token: tokenB });
      leak(await r.text());
      expect(r.status, p).toBe(200);
    }
    const list = await (await s.req('GET', '/v0/datasources', { token: tokenB })).json();
    expect(list.datasources.map((d: { id: string }) => d.id)).not.toContain(A.ds);
    for (const p of [`/v0/datasources/${A.ds}`, `/v0/pipes/${A.pipe}`, `/v0/pipes/${A.pipe}.json`, `/v0/datasources/${A.ds}.datasource`]) {
      const r = await s.req('GET', p, { token: tokenB });
      expect(r.status, p).toBe(404);
      leak(await r.text());
    }
    const own = await (await s.req('GET', '/v0/pipes/p.json', { token: tokenB })).json();
    expect(own.data).toEqual([{ k: 'data-of-B' }]);
  });

  it('no SQL reaches the other workspace', async () => {
    const db = A.table.split('.')[0];
    const queries = [
      'SELECT * FROM events',
      `SELECT * FROM ${A.table}`,
      `SELECT * FROM \`${db}\`.\`${A.ds}\``,
      `SELECT * FROM ${db}.${A.ds}_quarantine`,
      `SELECT 1 WHERE 'x' IN ${A.table}`,
      `SELECT * FROM ${A.ds}`,
      `SELECT * FROM events AS e JOIN ${A.table} AS o ON 1`,
      `SELECT joinGet('${A.table}', 'k', 1)`,
      `SELECT * FROM merge('${db}', '.*')`,
    ];
    for (const q of queries) {
      const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent(q)}`, { token: tokenB });
      leak(await r.text());
    }
    const r = await s.req('GET', `/v0/sql?q=${encodeURIComponent(`SELECT * FROM ${A.table}`)}`, { token: tokenB });
    expect(r.status).toBe(403);
  });

  it('cannot modify or delete the other workspace', async () => {
    const calls: Array<[string, string, BodyInit | undefined]> = [
      ['DELETE', `/v0/datasources/${A.ds}`, undefined],
      ['PUT', `/v0/datasources/${A.ds}?name=stolen`, undefined],
      ['POST', `/v0/datasources/${A.ds}/truncate`, undefined],
      ['POST', `/v0/datasources/${A.ds}/alter`, new URLSearchParams({ description: 'x' })],
      ['POST', `/v0/datasources/${A.ds}/delete`, new URLSearchParams({ delete_condition: '1' })],
      ['DELETE', `/v0/pipes/${A.pipe}`, undefined],
      ['PUT', `/v0/pipes/${A.pipe}?name=stolen`, undefined],
      ['POST', `/v0/pipes/${A.pipe}/nodes`, 'SELECT 1'],
    ];
    for (const [m, p, body] of calls) {
      const r = await s.req(m, p, { token: tokenB, body });
      expect(r.status, `${m} ${p}`).toBeGreaterThanOrEqual(400);
    }
    // Appending "by A's id" only ever names a data source of B's own.
    await s.req('POST', `/v0/datasources?name=${A.ds}&mode=append`, { token: tokenB, body: 'a,1\n' });
    // A is intact.
    const r = await s.req('GET', '/v0/pipes/p.json');
    expect((await r.json()).data).toEqual([{ k: 'secret-of-A' }]);
    const ds = await (await s.req('GET', '/v0/datasources/events')).json();
    expect(ds.id).toBe(A.ds);
    expect(ds.statistics.row_count).toBe(1);
  });

  it('a JWT works only in its own workspace, and one claiming another workspace is refused', async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const r = await s.req('POST', `/v0/tokens?name=b_jwt&expiration_time=${exp}`, {
      token: tokenB,
      headers: JSON_HDR,
      body: JSON.stringify({ scopes: [{ type: 'PIPES:READ', resource: 'p' }] }),
    });
    expect(r.status, await r.clone().text()).toBe(200);
    const jwt = (await r.json()).token as string;
    // Its pipe `p` is B's, whatever A has under the same name or id.
    expect((await (await s.req('GET', '/v0/pipes/p.json', { token: jwt })).json()).data).toEqual([{ k: 'data-of-B' }]);
    const other = await s.req('GET', `/v0/pipes/${A.pipe}.json`, { token: jwt });
    expect(other.status).toBeGreaterThanOrEqual(400);
    leak(await other.text());
    // Re-signed with B's admin token but claiming A's workspace: the signature does not verify.
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
    claims.workspace_id = s.app.services.access.defaultWorkspace.id;
    const { signJwt } = await import('../../src/domain/jwt.js');
    const forged = signJwt(claims, tokenB);
    const f = await s.req('GET', '/v0/pipes/p.json', { token: forged });
    expect(f.status).toBe(403);
    leak(await f.text());
  });

  it('jobs of the other workspace are refused', async () => {
    const r = await s.req('POST', '/v0/datasources/events/delete', { body: new URLSearchParams({ delete_condition: 'v = 999' }) });
    const job = (await r.json()).job_id ?? (await r.clone().json()).id;
    const other = await s.req('GET', `/v0/jobs/${job}`, { token: tokenB });
    expect(other.status).toBe(403);
    expect((await s.req('POST', `/v0/jobs/${job}/cancel`, { token: tokenB })).status).toBe(403);
  });
});
