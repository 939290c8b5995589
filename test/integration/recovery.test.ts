/**
 * Start-up recovery, in process and fast (the kill -9 suite is `npm run test:faults`): the state a
 * crash leaves behind is built directly in the engine and the catalog, then the app is started
 * again on the same data directory.
 * - An alter whose engine step ran but whose catalog step did not (the reported fault: the engine
 *   had the new column, the catalog the old schema, and every retry said "column already exists")
 *   is rolled forward.
 * - An interrupted staged append that was still staging is undone: the target gets none of it.
 * - Orphans (a data source table, its quarantine and a view with no catalog record, ingest stages
 *   of the layout before they moved to their own database) are dropped; an object not named like
 *   Pipit's is left alone; the catalog's objects are untouched.
 * The embedded catalog's case: a start takes over every intent at once. With a shared catalog a
 * starting copy takes over only intents whose lease has lapsed (scale-out.test.ts, test:pg).
 */
import { afterAll, expect, it } from 'vitest';
import { newResourceId } from '../../src/basics/ids.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { consistency } from '../helpers/consistency.js';

let s: TestServer | undefined;

afterAll(async () => {
  await s?.close();
});

it('rolls an interrupted alter forward, undoes an interrupted append, sweeps orphans', async () => {
  s = await startServer();
  const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
  expect((await s.req('POST', '/v0/datasources?name=alt&mode=create', form({ schema: 'id UInt64, v String' }))).status).toBe(200);
  expect((await s.req('POST', '/v0/datasources?name=tgt&mode=create', form({ schema: 'id UInt64' }))).status).toBe(200);
  expect((await s.req('POST', '/v0/datasources?name=alt&mode=append', { body: '1,a\n2,b\n' })).status).toBe(200);
  const { engine, datasources, access } = s.app.services;
  const ws = access.defaultWorkspace;
  const db = ws.database;
  const alt = await datasources.get(ws, 'alt');
  const tgt = await datasources.get(ws, 'tgt');

  // The alter's engine step ran, then the process died.
  const after = { ...alt, columns: [...alt.columns, { name: 'w', type: 'Int32', nullable: false, defaultValue: null, codec: null, jsonpath: null }] };
  await engine.exec(`ALTER TABLE ${db}.${alt.id} ADD COLUMN w Int32`);
  await datasources.journal.begin(ws, 'alter', {
    ds: alt.id,
    before: alt,
    after,
    engineOps: ['ADD COLUMN IF NOT EXISTS `w` Int32'],
    quarantineOps: ['ADD COLUMN IF NOT EXISTS `w` Nullable(String) AFTER c__import_id'],
    stages: true,
  });
  // A copy was staging rows for `tgt` when the process died.
  const staging = newResourceId();
  await engine.exec(`CREATE TABLE ${db}.${staging} (__n UInt64, id UInt64) ENGINE = MergeTree ORDER BY __n`);
  await engine.exec(`INSERT INTO ${db}.${staging} SELECT number, number FROM numbers(1000)`);
  await datasources.journal.begin(ws, 'append', { database: db, target: tgt.id, staging, cols: ['id'], phase: 'stage' });
  // A data source delete removed the record but not the engine objects; a view nobody names.
  const gone = newResourceId();
  await engine.exec(`CREATE TABLE ${db}.${gone} (id UInt64) ENGINE = MergeTree ORDER BY id`);
  await engine.exec(`CREATE TABLE ${db}.${gone}_quarantine (id Nullable(String)) ENGINE = MergeTree ORDER BY tuple()`);
  await engine.exec(`CREATE MATERIALIZED VIEW ${db}.${newResourceId()}_mv TO ${db}.${gone} AS SELECT id FROM ${db}.${tgt.id}`);
  await engine.exec(`CREATE TABLE ${db}.keep_me (x UInt8) ENGINE = Memory`);
  // A data source has the ingest stage of an older layout: in the workspace database, its views parsing `__c0` themselves.
  await engine.exec(
    `CREATE TABLE ${db}.${tgt.id}_sc (__c0 Nullable(String), __err String DEFAULT '', __import_id String DEFAULT getSetting('log_comment')) ENGINE = Null`,
  );
  await engine.exec(
    `CREATE MATERIALIZED VIEW ${db}.${tgt.id}_sc_ok TO ${db}.${tgt.id} AS SELECT toUInt64(__c0) AS id FROM ${db}.${tgt.id}_sc WHERE __err = ''`,
  );
  await engine.exec(
    `CREATE MATERIALIZED VIEW ${db}.${tgt.id}_sc_bad TO ${db}.${tgt.id}_quarantine AS SELECT __c0 AS id, CAST([], 'Array(String)') AS c__error_column, [__err] AS c__error, __import_id AS c__import_id FROM ${db}.${tgt.id}_sc WHERE __err != ''`,
  );

  // The same data directory, catalog (PostgreSQL under test:pg) and engine.
  await s.restart();
  const app = s.app;
  const report = await consistency(app.services);
  expect(report).toEqual({ intents: 0, orphans: ['keep_me'], missing: [], mismatched: [], views: [] });
  const recovered = await app.services.datasources.get(ws, 'alt');
  expect(recovered.columns.map((c) => c.name)).toEqual(['id', 'v', 'w']);
  const rows = await app.services.engine.rows<{ id: string; w: number }>(`SELECT id, w FROM ${db}.${alt.id} ORDER BY id`);
  expect(rows.map((r) => Number(r.id))).toEqual([1, 2]);
  const t = await app.services.engine.rows<{ c: string }>(`SELECT count() AS c FROM ${db}.${tgt.id}`);
  expect(Number(t[0].c)).toBe(0);
  // The old stage was dropped with the other orphans; the data source's stages are made at its first insert.
  const old = await app.services.engine.rows(`SELECT name FROM system.tables WHERE database = '${db}' AND name LIKE '${tgt.id}\\_s%'`);
  expect(old).toEqual([]);
  // The ingest of the altered data source works with the new column (its stages were rebuilt).
  const url = s.url;
  const r = await fetch(`${url}/v0/datasources?name=alt&mode=append`, { method: 'POST', body: '3,c,9\n', headers: { authorization: `Bearer ${s.token}` } });
  expect(r.status).toBe(200);
  const w = await app.services.engine.rows<{ w: number }>(`SELECT w FROM ${db}.${alt.id} WHERE id = 3`);
  expect(w).toEqual([{ w: 9 }]);
  expect(
    (await fetch(`${url}/v0/datasources?name=tgt&mode=append`, { method: 'POST', body: '7\n', headers: { authorization: `Bearer ${s.token}` } })).status,
  ).toBe(200);
  const t2 = await app.services.engine.rows<{ id: string }>(`SELECT id FROM ${db}.${tgt.id}`);
  expect(t2.map((r) => Number(r.id))).toEqual([7]);
}, 60_000);
