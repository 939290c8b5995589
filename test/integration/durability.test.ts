/**
 * Nothing lost: a child server process receives Events API batches (wait=true and the default
 * 202) and is killed with SIGKILL right after an acknowledgement; after a restart on the same
 * data directory every acknowledged row is present exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-durability-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

async function startChild(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, PIPIT_DATA_DIR: dataDir, PIPIT_PORT: String(port), PIPIT_LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return child;
}

it('rows acknowledged with 202 or 200 survive kill -9, once each', async () => {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const base = `http://127.0.0.1:${port}`;
  let child = await startChild(port);
  const { admin_token: token } = await (await fetch(`${base}/tokens`)).json();
  const auth = { authorization: `Bearer ${token}` };
  const schema = 'id UInt32 `json:$.id`, batch UInt32 `json:$.batch`';
  const c = await fetch(`${base}/v0/datasources?name=dur&mode=create&format=ndjson`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ schema }).toString(),
  });
  expect(c.status).toBe(200);

  let acknowledged = 0;
  let id = 0;
  for (let round = 0; round < 3; round++) {
    // Concurrent requests, half with wait=true; kill right after the last acknowledgement.
    const sends = [];
    for (let b = 0; b < 20; b++) {
      const rows = Array.from({ length: 500 }, () => JSON.stringify({ id: id++, batch: b })).join('\n');
      const wait = b % 2 === 0 ? '&wait=true' : '';
      sends.push(
        fetch(`${base}/v0/events?name=dur${wait}`, { method: 'POST', headers: auth, body: rows })
          .then(async (r) => {
            if (r.status === 200 || r.status === 202) acknowledged += (await r.json()).successful_rows;
          })
          .catch(() => undefined),
      );
    }
    await Promise.all(sends);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    child = await startChild(port);
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));

  const app = await createApp(loadConfig({}, { dataDir, port: 0, logLevel: 'silent' }));
  try {
    const ws = app.services.access.defaultWorkspace;
    const ds = await app.services.datasources.get(ws, 'dur');
    const r = await app.services.engine.rows<{ n: string; u: string }>(`SELECT count() AS n, uniqExact(id) AS u FROM ${ws.database}.${ds.id}`);
    expect(acknowledged).toBe(30000);
    expect(Number(r[0].n)).toBe(acknowledged);
    expect(Number(r[0].u)).toBe(acknowledged);
  } finally {
    await app.close();
  }
}, 120_000);
