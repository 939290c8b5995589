/**
 * Coordination between copies of the server sharing one PostgreSQL catalog, tested with two catalog
 * clients in one process (as two copies hold them): change notifications reach the other copy,
 * versions refuse lost updates, a schedule's tick is claimed once, a job is claimed by one copy,
 * and the jobs of a copy that stopped renewing its lease are failed by another.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CatalogChange, type JobRecord, UniqueViolation, VersionConflict } from '../../src/catalog/catalog.js';
import { openPostgresCatalog } from '../../src/catalog/postgres-catalog.js';
import type { SqlCatalog } from '../../src/catalog/sql-catalog.js';
import { JobService } from '../../src/jobs/job-service.js';
import { startPostgres, type TestPostgres } from '../helpers/postgres.js';

let pg: TestPostgres;
let a: SqlCatalog;
let b: SqlCatalog;
const ws = { id: 'w1', name: 'one', database: 'w_1', createdAt: new Date().toISOString() };

beforeAll(async () => {
  pg = await startPostgres();
  const url = await pg.createDatabase('coord');
  // Two copies starting at once on a fresh database: the migration runs once, neither fails.
  [a, b] = await Promise.all([openPostgresCatalog(url), openPostgresCatalog(url)]);
  await a.insertWorkspace(ws);
}, 60_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await pg?.stop();
});

const within = async (ms: number, f: () => boolean) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
};

describe('copies sharing a PostgreSQL catalog', () => {
  it('a token change on one copy is announced to the other within 1 s', async () => {
    const seen: CatalogChange[] = [];
    b.onChange((c) => seen.push(c));
    const t = { id: 'tk1', version: 1, workspaceId: ws.id, name: 't', token: 'p.x.y', scopes: [], description: '', createdAt: new Date().toISOString() };
    await a.insertToken(t);
    await a.deleteToken(t.id);
    expect(await within(1000, () => seen.filter((c) => c.table === 'tokens' && c.id === 'tk1').length >= 2)).toBe(true);
  });

  it('versions refuse a lost update; names are unique by SQLSTATE', async () => {
    const now = new Date().toISOString();
    const p = {
      id: 'p1',
      version: 1,
      workspaceId: ws.id,
      name: 'pipe',
      description: null,
      endpoint: null,
      parent: null,
      nodes: [],
      createdAt: now,
      updatedAt: now,
      data: {},
    };
    await a.insertPipe(p);
    const [onA] = await a.listPipes(ws.id);
    const [onB] = await b.listPipes(ws.id);
    const saved = await a.updatePipe({ ...onA, description: 'from A' });
    expect(saved.version).toBe(2);
    await expect(b.updatePipe({ ...onB, description: 'from B' })).rejects.toBeInstanceOf(VersionConflict);
    expect((await b.listPipes(ws.id))[0].description).toBe('from A');
    await expect(b.insertPipe({ ...p, id: 'p2' })).rejects.toBeInstanceOf(UniqueViolation);
  });

  it('a schedule tick is claimed by one copy only', async () => {
    const tick = '2030-01-01T00:05:00.000Z';
    const origin = '2030-01-01T00:00:00.000Z';
    const claims = await Promise.all([a.claimTick(ws.id, 'p1', origin, tick), b.claimTick(ws.id, 'p1', origin, tick)]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await a.claimTick(ws.id, 'p1', origin, '2030-01-01T00:10:00.000Z')).toBe(true);
    // A schedule set again (new origin) starts afresh.
    expect(await b.claimTick(ws.id, 'p1', '2030-02-01T00:00:00.000Z', '2030-02-01T00:05:00.000Z')).toBe(true);
  });

  it('a job runs on exactly one copy; a copy that dies leaves it to be failed by another after its lease', async () => {
    const timings = { leaseMs: 600, pollMs: 200 };
    const runs: string[] = [];
    const mk = (cat: SqlCatalog, name: string) => {
      const svc = new JobService(cat, 2, timings);
      svc.register('delete_data', async (_job, payload: { n: number }) => {
        runs.push(`${name}:${payload.n}`);
        return {};
      });
      return svc;
    };
    const ja = mk(a, 'A');
    const jb = mk(b, 'B');
    ja.start();
    jb.start();
    const created: JobRecord[] = [];
    for (let n = 0; n < 6; n++) created.push(await (n % 2 ? ja : jb).create(ws, 'delete_data', {}, { n }));
    expect(await within(5000, () => runs.length === 6), runs.join()).toBe(true);
    expect(new Set(runs.map((r) => r.split(':')[1])).size).toBe(6);
    // A handler has returned before its job's outcome is saved: wait for the records.
    const statuses = async () => Promise.all(created.map(async (j) => (await a.getJob(j.id))?.status));
    for (let t = Date.now(); Date.now() - t < 5000 && !(await statuses()).every((st) => st === 'done'); ) await new Promise((r) => setTimeout(r, 20));
    expect(await statuses()).toEqual(created.map(() => 'done'));

    await ja.close();
    await jb.close();
    // A copy "killed" mid-job: it claimed the job and never renews its lease (its poll is a minute away).
    const dead = new JobService(a, 1, { leaseMs: 600, pollMs: 60_000 });
    let hang: (() => void) | undefined;
    dead.register('delete_data', () => new Promise((r) => (hang = () => r({}))));
    dead.start();
    const stuck = await dead.create(ws, 'delete_data', {}, { n: 99 });
    expect(await within(2000, () => hang !== undefined)).toBe(true);
    expect((await b.getJob(stuck.id))?.status).toBe('working');
    // Another copy finds the lapsed lease and fails the job: nothing stays stuck.
    const rescuer = new JobService(b, 1, timings);
    await new Promise((r) => setTimeout(r, 800));
    await rescuer.recover();
    const after = await b.getJob(stuck.id);
    expect(after?.status).toBe('error');
    expect(after?.error).toMatch(/interrupted/);
    // The stalled copy finishing later does not overwrite the failure recorded by the other.
    hang?.();
    await dead.close();
    expect((await b.getJob(stuck.id))?.status).toBe('error');
  }, 30_000);

  it('close() hands the jobs a copy reserved but did not start back to the queue: another copy runs them at once', async () => {
    // A reservation that lapsed would free the job only after a minute.
    const timings = { leaseMs: 60_000, pollMs: 200 };
    const runs: string[] = [];
    const mk = (cat: SqlCatalog, name: string) => {
      const svc = new JobService(cat, 2, timings);
      svc.register('delete_data', async () => {
        runs.push(name);
        return {};
      });
      return svc;
    };
    const closing = mk(a, 'A');
    const other = mk(b, 'B');
    other.start();
    // Accepted with free slots (so reserved for A) just as A begins to close: A starts neither.
    const created = Promise.all([1, 2].map((n) => closing.create(ws, 'delete_data', {}, { n })));
    await closing.close();
    const jobs = await created;
    expect(await within(5000, () => runs.length === 2)).toBe(true);
    expect(runs).toEqual(['B', 'B']);
    const statuses = async () => Promise.all(jobs.map(async (j) => (await a.getJob(j.id))?.status));
    for (let t = Date.now(); Date.now() - t < 5000 && !(await statuses()).every((st) => st === 'done'); ) await new Promise((r) => setTimeout(r, 20));
    expect(await statuses()).toEqual(['done', 'done']);
    await other.close();
  }, 30_000);
});
