/**
 * The ingest stages' lifecycle (DatasourceService.ensureStage): a start does not make or load
 * them (on the embedded engine they live in a Memory database, so the engine has nothing of
 * theirs to load), the first insert of a process through a stage makes it, once even when inserts
 * race, and a restarted server ingests into an existing data source through both stages (NDJSON
 * and CSV), with bad rows in quarantine. On the remote engine the stages persist on the server and
 * the first insert finds them whole.
 */
import { afterAll, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { STAGES_DATABASE } from '../../src/ingest/physical.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { consistency } from '../helpers/consistency.js';

let s: TestServer | undefined;

afterAll(async () => {
  await s?.close();
});

const stageCount = async (app: App) =>
  Number((await app.services.engine.rows<{ c: string }>(`SELECT count() AS c FROM system.tables WHERE database = '${STAGES_DATABASE}'`))[0].c);

it('a restarted server loads no stage, makes them at the first insert, and ingests NDJSON and CSV into table and quarantine', async () => {
  s = await startServer();
  const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
  const schema = 'id UInt32 `json:$.id`, v String `json:$.v`';
  for (const n of ['a', 'b', 'c']) expect((await s.req('POST', `/v0/datasources?name=${n}&mode=create&format=ndjson`, form({ schema }))).status).toBe(200);
  const ws = s.app.services.access.defaultWorkspace;
  const { datasources } = s.app.services;
  const a = await datasources.get(ws, 'a');
  // Creating a data source makes its table and quarantine only.
  expect(await stageCount(s.app)).toBe(0);
  const tables = await s.app.services.engine.rows<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${ws.database}' ORDER BY name`);
  expect(tables.length).toBe(6);
  // One insert through each stage of `a` before the restart.
  expect((await s.req('POST', '/v0/events?name=a&wait=true', { body: '{"id":1,"v":"x"}\n' })).status).toBe(200);
  expect((await s.req('POST', '/v0/datasources?name=a&mode=append', { body: '2,y\n' })).status).toBe(200);
  expect(await stageCount(s.app)).toBe(6);

  await s.restart();
  const app = s.app;
  // Nothing of the stages was loaded or made by the start (a server keeps the ones it had).
  expect(await stageCount(app)).toBe(app.services.engine.inProcess ? 0 : 6);
  expect(await consistency(app.services)).toEqual({ intents: 0, orphans: [], missing: [], mismatched: [], views: [] });
  const req = (method: string, p: string, body?: string) => s!.req(method, p, { body });

  // Two first inserts at once into `b` (its stage is made once) and one into `a`, through the NDJSON stage.
  const events = await Promise.all([
    req('POST', '/v0/events?name=a&wait=true', '{"id":3,"v":"z"}\n{"id":"bad","v":"q"}\nnot json\n'),
    req('POST', '/v0/events?name=b&wait=true', '{"id":1,"v":"b1"}\n'),
    req('POST', '/v0/events?name=b&wait=true', '{"id":2,"v":"b2"}\n'),
  ]);
  expect(events.map((r) => r.status)).toEqual([200, 200, 200]);
  expect(await events[0].json()).toEqual({ successful_rows: 1, quarantined_rows: 2 });
  // The CSV stage of `a`.
  const csv = await req('POST', '/v0/datasources?name=a&mode=append', '4,w\nnope,v\n');
  expect(csv.status).toBe(200);
  expect(await csv.json()).toMatchObject({ quarantine_rows: 1 });

  const rows = await app.services.engine.rows<{ id: number; v: string }>(`SELECT id, v FROM ${ws.database}.${a.id} ORDER BY id`);
  expect(rows).toEqual([
    { id: 1, v: 'x' },
    { id: 2, v: 'y' },
    { id: 3, v: 'z' },
    { id: 4, v: 'w' },
  ]);
  const quarantined = await app.services.engine.rows<{ id: string | null; c__error: string[] }>(
    `SELECT id, c__error FROM ${ws.database}.${a.id}_quarantine ORDER BY id NULLS FIRST`,
  );
  expect(quarantined.map((r) => r.id)).toEqual([null, 'bad', 'nope']);
  const b = await app.services.datasources.get(ws, 'b');
  expect(Number((await app.services.engine.rows<{ c: string }>(`SELECT count() AS c FROM ${ws.database}.${b.id}`))[0].c)).toBe(2);
  // Both stages of `a`, the NDJSON one of `b` (3 objects each); `c` had no insert.
  expect(await stageCount(app)).toBe(9);
  expect(await consistency(app.services)).toEqual({ intents: 0, orphans: [], missing: [], mismatched: [], views: [] });

  // An alter before any insert into `c` makes both its stages for the new schema; the next insert uses them.
  const alter = await req('POST', '/v0/datasources/c/alter', new URLSearchParams({ schema: `${schema}, n Int32 \`json:$.n\`` }).toString());
  expect(alter.status).toBe(200);
  expect((await req('POST', '/v0/events?name=c&wait=true', '{"id":1,"v":"c","n":7}\n')).status).toBe(200);
  const c = await app.services.datasources.get(ws, 'c');
  expect(await app.services.engine.rows(`SELECT id, v, n FROM ${ws.database}.${c.id}`)).toEqual([{ id: 1, v: 'c', n: 7 }]);

  expect(await stageCount(app)).toBe(15);
  // Dropping a data source drops its stages.
  expect((await req('DELETE', '/v0/datasources/b')).status).toBe(204);
  expect(await stageCount(app)).toBe(12);
  expect(await consistency(app.services)).toEqual({ intents: 0, orphans: [], missing: [], mismatched: [], views: [] });
}, 120_000);

it('a stage found out of date or made in part is made again at the first insert', async () => {
  const app = s!.app;
  const ws = app.services.access.defaultWorkspace;
  const { engine, datasources } = app.services;
  const a = await datasources.get(ws, 'a');
  // What another process (an older Pipit, or one that died while making it) left: a stage table of
  // another definition and a missing view.
  await engine.exec(`DROP VIEW ${STAGES_DATABASE}.${a.id}_sc_bad`);
  await engine.exec(`ALTER TABLE ${STAGES_DATABASE}.${a.id}_sj MODIFY COMMENT 'an older definition'`);
  datasources.forgetStages(a.id);
  await datasources.ensureStage(ws, a, 'csv');
  await datasources.ensureStage(ws, a, 'json');
  expect(await consistency(app.services)).toEqual({ intents: 0, orphans: [], missing: [], mismatched: [], views: [] });
  const comments = await engine.rows<{ comment: string }>(
    `SELECT comment FROM system.tables WHERE database = '${STAGES_DATABASE}' AND name IN ('${a.id}_sj', '${a.id}_sc')`,
  );
  expect(comments.length).toBe(2);
  expect(comments.map((r) => r.comment)).not.toContain('an older definition');
}, 60_000);

it('a stage whose creation fails part way is dropped whole, and the next insert makes it', async () => {
  const app = s!.app;
  const ws = app.services.access.defaultWorkspace;
  const { engine, datasources } = app.services;
  const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
  expect((await s!.req('POST', '/v0/datasources?name=f&mode=create', form({ schema: 'id UInt32' }))).status).toBe(200);
  const f = await datasources.get(ws, 'f');
  const stageObjects = async () =>
    (await engine.rows<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${STAGES_DATABASE}' AND name LIKE '${f.id}\\_%'`)).length;
  // The engine refuses the stage's second view (the table and the first view are made by then).
  const exec = engine.exec;
  engine.exec = (sql, opts) =>
    /^CREATE MATERIALIZED VIEW IF NOT EXISTS \S+_sc_bad`? /.test(sql) ? Promise.reject(new Error('refused by the test')) : exec.call(engine, sql, opts);
  try {
    const r = await s!.req('POST', '/v0/datasources?name=f&mode=append', { body: '1\n' });
    expect(r.status).toBeGreaterThanOrEqual(500);
    expect(await stageObjects()).toBe(0);
  } finally {
    engine.exec = exec;
  }
  expect((await s!.req('POST', '/v0/datasources?name=f&mode=append', { body: '2\n' })).status).toBe(200);
  expect(await stageObjects()).toBe(3);
  expect(await engine.rows(`SELECT id FROM ${ws.database}.${f.id}`)).toEqual([{ id: 2 }]);
}, 60_000);

it('schema changes while events stream in: every insert waits for the rebuilt stage, none fails or is lost', async () => {
  const app = s!.app;
  const ws = app.services.access.defaultWorkspace;
  let schema = 'id UInt32 `json:$.id`';
  expect((await s!.req('POST', '/v0/datasources?name=streamed&mode=create&format=ndjson', { body: new URLSearchParams({ schema }) })).status).toBe(200);
  let sent = 0;
  let altering = true;
  const statuses: number[] = [];
  const stream = async () => {
    while (altering) {
      const r = await s!.req('POST', '/v0/events?name=streamed&wait=true', { body: `{"id":${sent++}}\n` });
      statuses.push(r.status);
      await r.text();
    }
  };
  const streams = [stream(), stream(), stream()];
  for (let i = 0; i < 6; i++) {
    schema += `, n${i} Nullable(Int32) \`json:$.n${i}\``;
    const r = await s!.req('POST', '/v0/datasources/streamed/alter', { body: new URLSearchParams({ schema }) });
    expect(r.status).toBe(200);
  }
  altering = false;
  await Promise.all(streams);
  expect(statuses.filter((x) => x !== 200)).toEqual([]);
  const streamed = await app.services.datasources.get(ws, 'streamed');
  const counted = await app.services.engine.rows<{ c: string }>(`SELECT toString(count()) AS c FROM ${ws.database}.${streamed.id}`);
  expect(Number(counted[0].c)).toBe(sent);
}, 60_000);

it('acknowledged events whose stage went missing are inserted once it is made again, not set aside as orphans', async () => {
  const app = s!.app;
  const ws = app.services.access.defaultWorkspace;
  const { engine, datasources } = app.services;
  const schema = 'id UInt32 `json:$.id`';
  expect((await s!.req('POST', '/v0/datasources?name=unstaged&mode=create&format=ndjson', { body: new URLSearchParams({ schema }) })).status).toBe(200);
  expect((await s!.req('POST', '/v0/events?name=unstaged&wait=true', { body: '{"id":0}\n' })).status).toBe(200);
  const ds = await datasources.get(ws, 'unstaged');
  // Gone behind the server's back (an operator, another copy): the server still takes it for made.
  await engine.exec(`DROP VIEW ${STAGES_DATABASE}.${ds.id}_sj_ok`);
  await engine.exec(`DROP VIEW ${STAGES_DATABASE}.${ds.id}_sj_bad`);
  await engine.exec(`DROP TABLE ${STAGES_DATABASE}.${ds.id}_sj`);
  for (let i = 1; i <= 3; i++) {
    const body = Array.from({ length: 10 }, (_, j) => `{"id":${i * 10 + j}}`).join('\n');
    expect((await s!.req('POST', '/v0/events?name=unstaged', { body })).status).toBe(202);
  }
  const count = async () => Number((await engine.rows<{ c: string }>(`SELECT toString(count()) AS c FROM ${ws.database}.${ds.id}`))[0].c);
  const until = Date.now() + 30_000;
  while ((await count()) < 31 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
  expect(await count()).toBe(31);
  expect(app.services.events.pendingSegments).toBe(0);
}, 60_000);
