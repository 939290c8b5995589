/**
 * A job left waiting when its (single-process) server stopped is run when the server starts again:
 * jobs carry their payload, so the restarted process runs them like any other copy would.
 */
import fs from 'node:fs';
import { expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { holdJobs, startServer } from '../helpers/server.js';

it('a job left waiting by a stopped server runs when it starts again', async () => {
  const s2 = await startServer();
  let again: App | undefined;
  try {
    const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o) });
    expect((await s2.req('POST', '/v0/datasources?name=dr&mode=create', form({ schema: 'id UInt64' }))).status).toBe(200);
    expect((await s2.req('POST', '/v0/datasources?name=dr&mode=append', { body: '1\n2\n3\n4\n' })).status).toBe(200);
    // Both job slots held: the delete waits, and the server stops before it starts.
    const { started, release } = await holdJobs(s2, 'delete_data', 2);
    await started;
    const r = await s2.req('POST', '/v0/datasources/dr/delete', form({ delete_condition: 'id % 2 = 0' }));
    expect(r.status).toBe(201);
    const id = (await r.json()).job_id as string;
    const stopping = s2.app.close();
    release();
    await stopping;
    const { catalogUrl, secretKey } = s2.app.services.config;
    again = await createApp(loadConfig({}, { dataDir: s2.dataDir, port: 0, host: '127.0.0.1', logLevel: 'silent', engineSessions: 2, catalogUrl, secretKey }));
    let job = await again.services.catalog.getJob(id);
    for (let i = 0; i < 400 && job && !['done', 'error', 'cancelled'].includes(job.status); i++) {
      await new Promise((res) => setTimeout(res, 25));
      job = await again.services.catalog.getJob(id);
    }
    expect(job?.status, JSON.stringify(job)).toBe('done');
    const ws = again.services.access.defaultWorkspace;
    const ds = await again.services.datasources.get(ws, 'dr');
    expect(await again.services.engine.rows(`SELECT id FROM ${ws.database}.${ds.id} ORDER BY id`)).toEqual([{ id: 1 }, { id: 3 }]);
  } finally {
    await again?.close();
    fs.rmSync(s2.dataDir, { recursive: true, force: true });
  }
}, 60_000);
