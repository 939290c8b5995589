/**
 * Job lifecycle over the real catalog: a cancel stops a job that honours it (cancelled), and a job
 * whose work finished anyway — a staged append past its point of no return — is reported done.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
/** The test's work by payload key: this server's `delete_data` handler runs it (jobs run from their payload). */
const work = new Map<string, (signal: AbortSignal) => Promise<Record<string, unknown>>>();
beforeAll(async () => {
  s = await startServer();
  s.app.services.jobs.register('delete_data', (_job, p: { key: string }, signal) => work.get(p.key)!(signal));
});
afterAll(async () => {
  await s?.close();
});

async function settled(id: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const r = await (await s.req('GET', `/v0/jobs/${id}`)).json();
    if (['done', 'error', 'cancelled'].includes(r.status)) return r;
    await new Promise((res) => setTimeout(res, 25));
  }
  throw new Error(`job ${id} did not settle`);
}

describe('cancelling a working job', () => {
  const ws = () => s.app.services.access.defaultWorkspace;

  it('a job that stops on the cancel (throws) is cancelled', async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    work.set('stops', async (signal) => {
      started();
      await new Promise((_res, rej) => signal.addEventListener('abort', () => rej(new Error('The job was cancelled'))));
      return {};
    });
    const job = await s.app.services.jobs.create(ws(), 'delete_data', { is_cancellable_while_working: true }, { key: 'stops' });
    await running;
    expect((await s.req('POST', `/v0/jobs/${job.id}/cancel`)).status).toBe(200);
    expect((await settled(job.id)).status).toBe('cancelled');
  });

  it('a job whose work completed although a cancel arrived (past its point of no return) is done', async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    let finish!: () => void;
    const published = new Promise<void>((r) => (finish = r));
    work.set('completes', async () => {
      started();
      await published; // publishing is not interrupted by a cancel
      return { rows: 42 };
    });
    const job = await s.app.services.jobs.create(ws(), 'delete_data', { is_cancellable_while_working: true }, { key: 'completes' });
    await running;
    expect((await s.req('POST', `/v0/jobs/${job.id}/cancel`)).status).toBe(200);
    finish();
    const done = await settled(job.id);
    expect(done.status).toBe('done');
    expect(done.rows).toBe(42);
  });
});
