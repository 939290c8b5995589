/**
 * A lane segment the embedded engine inserted from its file (`INSERT ... FROM INFILE`) and that was
 * left on disk (kill -9 before the unlink, or a failed unlink) is replayed at the next start from
 * memory under the same dedup token: it must land once. The INFILE reader cut the file into chunks
 * of max_block_size (65,409) rows, an insert of the same bytes makes one, so the dedup block ids
 * differed past that size and the replay wrote every row a second time (fails without the fix:
 * 140,000 rows for 70,000).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it, vi } from 'vitest';
import { EmbeddedEngine } from '../../src/engine/embedded-engine.js';
import { EventBuffer, type EventTarget } from '../../src/ingest/event-buffer.js';
import { ndjsonDatasource } from '../helpers/ndjson-datasource.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rev-infile-'));
const engine = new EmbeddedEngine(path.join(root, 'engine'), { userSlots: 2, internalSlots: 2 });
afterAll(async () => {
  await engine.close();
  fs.rmSync(root, { recursive: true, force: true });
});

it.each([1000, 70_000])(
  'a segment of %i rows inserted, left on disk and replayed, is in the table once',
  async (rows) => {
    const { names, target: t, makeStage } = await ndjsonDatasource(engine, `t_rev${rows}`, 'UInt32');
    await makeStage();
    const wal = fs.mkdtempSync(path.join(root, 'wal-'));
    // A body under 1 MB (a lane request) of small events.
    const body = Buffer.from(Array.from({ length: rows }, (_, i) => `{"r":${i}}`).join('\n') + '\n');
    const buf = new EventBuffer(wal, engine, false, () => undefined);
    // The segment's file stays after its insert (as after kill -9 between the insert and the unlink).
    vi.spyOn(fs.promises, 'unlink').mockImplementationOnce(async () => {
      throw Object.assign(new Error('EIO'), { code: 'EIO' });
    });
    expect(await buf.append(t, EventBuffer.rowsOf(body, '01JREQAAAAAAAAAAAAAAAAAAAA'), '01JREQAAAAAAAAAAAAAAAAAAAA', true)).toEqual(expect.any(Number));
    vi.restoreAllMocks();
    await buf.close();
    expect(fs.readdirSync(wal)).toHaveLength(1);
    const next = new EventBuffer(wal, engine, false, () => undefined);
    expect(await next.recover(async () => names.jsonStage)).toBe(1);
    await next.close();
    const [{ c, u }] = await engine.rows<{ c: string; u: string }>(`SELECT count() AS c, uniqExact(r) AS u FROM ${names.table}`);
    expect({ c: Number(c), u: Number(u) }).toEqual({ c: rows, u: rows });
  },
  60_000,
);

it('a set-aside large body whose file is gone is dropped from the retries, as when the file was read here', async () => {
  await engine.exec('CREATE DATABASE IF NOT EXISTS w');
  const stage = 'w.gone_stage';
  const wal = fs.mkdtempSync(path.join(root, 'wal-'));
  const buf = new EventBuffer(wal, engine, false, () => undefined);
  const t: EventTarget = { workspaceId: 'ws', database: 'w', datasourceId: 'gone', stage };
  // The stage is missing: the insert fails and the body waits on disk for the background retries.
  await buf.appendLarge(t, Buffer.from('{"r":1}\n'.repeat(1000)), '01JGONEAAAAAAAAAAAAAAAAAAA', false);
  await vi.waitFor(() => expect(buf.pendingSegments).toBe(1), { timeout: 10_000 });
  for (const f of fs.readdirSync(wal)) fs.unlinkSync(path.join(wal, f));
  await engine.exec(`CREATE TABLE ${stage} (__line String, __import_id String) ENGINE = MergeTree ORDER BY tuple()`);
  await vi.waitFor(() => expect(buf.pendingSegments).toBe(0), { timeout: 15_000 });
  await buf.close();
}, 30_000);
