/**
 * Sink Pipes against a real S3-compatible server on loopback (s3rver, fresh directory): connections
 * and their checks (401 credentials, 404 bucket, 400 parameters), every format, compression and
 * write strategy, partitioned file templates, template variables, scheduled sinks on a controllable
 * clock, local-directory connections (and their path checks), job results. Every written object is
 * read back with an independent reader: the AWS SDK for the bytes, hyparquet for Parquet.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { CreateBucketCommand, DeleteBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
// @ts-expect-error s3rver ships no types
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { holdJobs, startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
let s3srv: { run(): Promise<{ port: number }>; close(): Promise<void> };
let s3dir: string;
let endpoint: string;
let client: S3Client;
const BUCKET = 'sink-bucket';
const rows = Array.from({ length: 60 }, (_, i) => ({ country: ['ES', 'FR', 'US'][i % 3], n: i, ts: `2024-0${1 + (i % 2)}-15 10:00:00` }));
const form = (o: Record<string, string | undefined>) => ({
  body: new URLSearchParams(Object.entries(o).filter((e): e is [string, string] => e[1] !== undefined)),
});
const JSON_HDR = { 'content-type': 'application/json' };
// biome-ignore lint/suspicious/noExplicitAny: response bodies of many shapes
type Json = any;

async function j(r: Promise<Response> | Response): Promise<{ status: number; body: Json }> {
  const res = await r;
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* text */
  }
  return { status: res.status, body };
}

async function waitJob(id: string): Promise<Json> {
  for (let i = 0; i < 600; i++) {
    const job = (await j(s.req('GET', `/v0/jobs/${id}`))).body;
    if (['done', 'error', 'cancelled'].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('job did not finish');
}

/** Keys under a prefix, without the object connection checks write. */
async function keys(prefix: string, bucket = BUCKET): Promise<string[]> {
  const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (r.Contents ?? [])
    .map((o) => o.Key!)
    .filter((k) => !k.endsWith('/_pipit_write_check'))
    .sort();
}

async function object(key: string, bucket = BUCKET): Promise<Buffer> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

/** A fresh pipe reading the data source, with its node named `n`. */
async function pipe(name: string, sql = 'SELECT country, n, ts FROM events ORDER BY n'): Promise<void> {
  const r = await j(s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify({ name, nodes: [{ name: 'n', sql }] }) }));
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}

async function setSink(name: string, o: Record<string, string>): Promise<{ status: number; body: Json }> {
  return j(s.req('POST', `/v0/pipes/${name}/nodes/n/sink`, form({ connection: 's3conn', ...o })));
}

async function run(name: string, o: Record<string, string> = {}): Promise<Json> {
  const r = await j(s.req('POST', `/v0/pipes/${name}/sink`, form(o)));
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return waitJob(r.body.job.id);
}

const csvLines = (b: Buffer) => b.toString('utf8').trim().split('\n');

beforeAll(async () => {
  s3dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-s3rver-'));
  s3srv = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: s3dir });
  const { port } = (await s3srv.run()) as { port: number };
  endpoint = `http://127.0.0.1:${port}`;
  client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  for (const b of [BUCKET, 'gcs-bucket', 'doomed-bucket']) await client.send(new CreateBucketCommand({ Bucket: b }));
  s = await startServer({ config: { awsAccountId: '123456789012' } });
  expect(
    (
      await s.req(
        'POST',
        '/v0/datasources?name=events&mode=create',
        form({ schema: 'country String `json:$.country`, n Int32 `json:$.n`, ts DateTime `json:$.ts`' }),
      )
    ).status,
  ).toBe(200);
  expect((await s.req('POST', '/v0/events?name=events&wait=true', { body: rows.map((r) => JSON.stringify(r)).join('\n') })).status).toBe(200);
  const c = await j(
    s.req(
      'POST',
      '/v0/connectors',
      form({
        service: 's3',
        name: 's3conn',
        s3_endpoint: endpoint,
        s3_region: 'us-east-1',
        s3_access_key_id: 'S3RVER',
        s3_secret_access_key: 'S3RVER',
        bucket: BUCKET,
      }),
    ),
  );
  expect(c.status, JSON.stringify(c.body)).toBe(200);
}, 60_000);

afterAll(async () => {
  await s?.close();
  await s3srv?.close();
  client?.destroy();
  fs.rmSync(s3dir, { recursive: true, force: true });
});

describe('connections', () => {
  it('checks credentials, bucket and parameters when created, and never returns secrets', async () => {
    const base = { service: 's3', s3_endpoint: endpoint, s3_access_key_id: 'S3RVER', s3_secret_access_key: 'S3RVER' };
    let r = await j(s.req('POST', '/v0/connectors', form({ ...base, name: 'bad_key', s3_access_key_id: 'WRONG', bucket: BUCKET })));
    expect(r.status).toBe(401);
    expect(r.body.error).toMatch(/^Invalid credentials/);
    r = await j(s.req('POST', '/v0/connectors', form({ ...base, name: 'no_bucket', bucket: 'missing-bucket' })));
    expect(r.status).toBe(404);
    expect(r.body.error).toContain('missing-bucket');
    for (const bad of [
      { ...base, name: 'x', service: 'ftp' },
      { ...base, name: 'x', s3_region: 'mars' },
      { ...base, name: 'x', s3_endpoint: 'ftp://127.0.0.1:1' },
      { ...base, name: 'x', s3_endpoint: `${endpoint}/path'` },
      { ...base, name: 'x', s3_secret_access_key: '' },
      { ...base, name: "x'y" },
      { service: 's3_iamrole', name: 'x', s3_iamrole_arn: 'arn:nope' },
    ]) {
      r = await j(s.req('POST', '/v0/connectors', form(bad)));
      expect(r.status, JSON.stringify(bad)).toBe(400);
    }
    r = await j(s.req('POST', '/v0/connectors', form({ ...base, name: 's3conn' })));
    expect(r.status).toBe(409);
    const list = await j(s.req('GET', '/v0/connectors'));
    expect(list.status).toBe(200);
    const conn = list.body.connectors.find((c: { name: string }) => c.name === 's3conn');
    expect(conn).toMatchObject({ service: 's3', settings: { s3_endpoint: endpoint, s3_region: 'us-east-1', s3_access_key_id: '****' } });
    expect(JSON.stringify(list.body)).not.toContain('S3RVER');
    expect((await j(s.req('GET', `/v0/connectors/${conn.id}`))).body.name).toBe('s3conn');
    // Stored encrypted: the catalog row does not have the secret either.
    const stored = await s.app.services.catalog.listConnections(s.app.services.access.defaultWorkspace.id);
    expect(JSON.stringify(stored)).not.toContain('S3RVER');
    // GCS through its S3-compatible HMAC interface (the emulator stands in for storage.googleapis.com).
    r = await j(
      s.req(
        'POST',
        '/v0/connectors',
        form({ service: 'gcs_hmac', name: 'gcsconn', gcs_endpoint: endpoint, gcs_hmac_access_id: 'S3RVER', gcs_hmac_secret: 'S3RVER', bucket: 'gcs-bucket' }),
      ),
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    // Deleting an unused connection.
    const tmp = await j(s.req('POST', '/v0/connectors', form({ ...base, name: 'short_lived' })));
    expect(tmp.status).toBe(200);
    expect((await s.req('DELETE', `/v0/connectors/${tmp.body.id}`)).status).toBe(204);
    expect((await s.req('GET', '/v0/connectors/short_lived')).status).toBe(404);
    // Only admins manage connections.
    const tok = (await j(s.req('POST', '/v0/tokens?name=pc&scope=PIPES:CREATE'))).body.token;
    expect((await s.req('GET', '/v0/connectors', { token: tok })).status).toBe(403);
  });

  it('keeps local directories inside the sink root: no "..", no absolute paths outside, no symbolic links', async () => {
    const root = s.app.services.config.sinkLocalRoot;
    for (const directory of ['../outside', 'a/../../b', '/etc', 'a//b', "a'b"]) {
      const r = await j(s.req('POST', '/v0/connectors', form({ service: 'local', name: 'l_bad', directory })));
      expect(r.status, directory).toBe(400);
    }
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-outside-'));
    fs.mkdirSync(root, { recursive: true });
    fs.symlinkSync(outside, path.join(root, 'link'));
    let r = await j(s.req('POST', '/v0/connectors', form({ service: 'local', name: 'l_link', directory: 'link/sub' })));
    expect(r.status).toBe(400);
    expect(r.body.error).toContain('symbolic links');
    expect(fs.readdirSync(outside)).toEqual([]);
    r = await j(s.req('POST', '/v0/connectors', form({ service: 'local', name: 'localconn', directory: 'dev/out' })));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(fs.statSync(path.join(root, 'dev/out')).isDirectory()).toBe(true);
    fs.rmSync(outside, { recursive: true, force: true });
  });

  it("answers the integration endpoints with this server's values and a stable per-workspace external id", async () => {
    const trust = await j(s.req('GET', '/v0/integrations/s3/policies/trust-policy'));
    expect(trust.status).toBe(200);
    const ext = trust.body.Statement[0].Condition.StringEquals['sts:ExternalId'];
    expect(ext).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(trust.body).toMatchObject({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { AWS: 'arn:aws:iam::123456789012:root' } }],
    });
    expect((await j(s.req('GET', '/v0/integrations/s3/settings'))).body).toEqual({ principal: 'arn:aws:iam::123456789012:root', external_id: ext });
    expect((await j(s.req('GET', '/v0/integrations/s3/policies/trust-policy'))).body.Statement[0].Condition.StringEquals['sts:ExternalId']).toBe(ext);
    const wap = await j(s.req('GET', '/v0/integrations/s3/policies/write-access-policy?bucket=test-bucket'));
    expect(wap.body.Statement.map((x: { Resource: string }) => x.Resource)).toEqual(['arn:aws:s3:::test-bucket', 'arn:aws:s3:::test-bucket/*']);
    expect((await j(s.req('GET', '/v0/integrations/s3/policies/write-access-policy'))).body.Statement[0].Resource).toBe('arn:aws:s3:::<bucket>');
    expect((await j(s.req('GET', '/v0/datasources-bigquery-credentials'))).status).toBe(503);
    // A role connection records the external id; assuming roles needs AWS credentials this server has not.
    const role = await j(
      s.req(
        'POST',
        '/v0/connectors',
        form({ service: 's3_iamrole', name: 'rolec', s3_iamrole_arn: 'arn:aws:iam::111122223333:role/sink', s3_iamrole_region: 'eu-west-1' }),
      ),
    );
    expect(role.status).toBe(200);
    expect(role.body.settings.s3_iamrole_external_id).toBe(ext);
    await pipe('p_role');
    const r = await j(s.req('POST', '/v0/pipes/p_role/nodes/n/sink', form({ connection: 'rolec', path: 's3://any-bucket/x', file_template: 'f' })));
    expect(r.status).toBe(403);
    expect(r.body.error).toMatch(/assume/);
  });
});

describe('sink pipes', () => {
  it('refuses bad parameters, missing buckets and connections, and other roles', async () => {
    await pipe('p_err');
    const cases: Array<[Record<string, string>, number, RegExp?]> = [
      [{ connection: '', path: `s3://${BUCKET}/x`, file_template: 'f' }, 400, /connection/],
      [{ connection: 'nope', path: `s3://${BUCKET}/x`, file_template: 'f' }, 404, /not found/],
      [{ path: `s3://${BUCKET}/x` }, 400, /file_template/],
      [{ file_template: 'f' }, 400, /path/],
      [{ path: `s3://${BUCKET}/x`, file_template: 'a/../b' }, 400, /segments/],
      [{ path: `s3://${BUCKET}/x`, file_template: "f'); DROP TABLE x; --" }, 400],
      [{ path: `s3://${BUCKET}/x`, file_template: 'f_{country' }, 400, /unclosed/],
      [{ path: `s3://${BUCKET}/x`, file_template: "f_{n, '%Y'}" }, 400, /formats a date/],
      [{ path: `s3://${BUCKET}/x`, file_template: 'f_{nocol}', schedule_cron: '0 * * * *' }, 400, /nocol/],
      [{ path: `s3://${BUCKET}/../x`, file_template: 'f' }, 400],
      [{ path: "s3://sink-bucket'/x", file_template: 'f' }, 400, /bucket name/],
      [{ path: `http://${BUCKET}/x`, file_template: 'f' }, 400],
      [{ path: `s3://${BUCKET}/x`, file_template: 'f', format: 'xml' }, 400, /format/],
      [{ path: `s3://${BUCKET}/x`, file_template: 'f', compression: 'lzma' }, 400, /compression/],
      [{ path: `s3://${BUCKET}/x`, file_template: 'f', write_strategy: 'append' }, 400, /write_strategy/],
      [{ path: `s3://${BUCKET}/x`, file_template: 'f', schedule_cron: 'often' }, 400, /schedule_cron/],
      [{ path: 's3://no-such-bucket/x', file_template: 'f' }, 404, /doesn't exist/],
    ];
    for (const [o, status, msg] of cases) {
      const r = await setSink('p_err', o);
      expect(r.status, JSON.stringify(o) + JSON.stringify(r.body)).toBe(status);
      if (msg) expect(r.body.error).toMatch(msg);
    }
    expect((await j(s.req('GET', '/v0/pipes/p_err'))).body.type).toBe('default');
    // Roles: a published, copying or sinking pipe can not become a sink.
    await pipe('p_pub');
    expect((await s.req('POST', '/v0/pipes/p_pub/nodes/n/endpoint')).status).toBe(200);
    expect((await setSink('p_pub', { path: `s3://${BUCKET}/x`, file_template: 'f' })).status).toBe(403);
    expect((await s.req('POST', '/v0/datasources?name=copy_t&mode=create', form({ schema: 'country String, n Int32, ts DateTime' }))).status).toBe(200);
    await pipe('p_copy');
    expect((await s.req('POST', '/v0/pipes/p_copy/nodes/n/copy', form({ target_datasource: 'copy_t' }))).status).toBe(200);
    expect((await setSink('p_copy', { path: `s3://${BUCKET}/x`, file_template: 'f' })).status).toBe(403);
    expect((await setSink('p_err', { path: `s3://${BUCKET}/roles`, file_template: 'f' })).status).toBe(200);
    const again = await setSink('p_err', { path: `s3://${BUCKET}/roles`, file_template: 'f' });
    expect(again.status).toBe(403);
    expect(again.body.error).toMatch(/already a Sink/);
    expect((await s.req('POST', '/v0/pipes/p_err/nodes/n/endpoint')).status).toBe(403);
    expect((await s.req('POST', '/v0/pipes/p_err/nodes/n/copy', form({ target_datasource: 'copy_t' }))).status).toBe(403);
    // Only PIPES:CREATE sets a sink; reading the pipe is enough to run it.
    const reader = (await j(s.req('POST', '/v0/tokens?name=reader&scope=PIPES:READ:p_err'))).body.token;
    expect(
      (await s.req('POST', '/v0/pipes/p_err/nodes/n/sink', { ...form({ connection: 's3conn', path: `s3://${BUCKET}/x`, file_template: 'f' }), token: reader }))
        .status,
    ).toBe(403);
    const started = await j(s.req('POST', '/v0/pipes/p_err/sink', { token: reader }));
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect((await waitJob(started.body.job.id)).status).toBe('done');
    const other = (await j(s.req('POST', '/v0/tokens?name=other&scope=PIPES:READ:p_pub'))).body.token;
    expect((await s.req('POST', '/v0/pipes/p_err/sink', { token: other })).status).toBe(403);
    expect((await s.req('POST', '/v0/pipes/p_pub/sink')).status).toBe(400);
    // A connection in use is not deleted.
    expect((await s.req('DELETE', '/v0/connectors/s3conn')).status).toBe(409);
  });

  it("sets a sink (the seed's shapes), runs it with overrides, and removes it", async () => {
    await pipe('p_shape');
    const r = await setSink('p_shape', {
      path: `s3://${BUCKET}/shape`,
      file_template: 'export',
      format: 'csv',
      compression: 'gz',
      schedule_cron: '0 */1 * * *',
      write_strategy: 'new',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({
      name: 'p_shape',
      type: 'sink',
      sink_node: r.body.nodes[0].id,
      schedule: { timezone: 'Etc/UTC', cron: '0 */1 * * *', status: 'running' },
    });
    expect(r.body.nodes[0]).toMatchObject({ name: 'n', node_type: 'sink', dependencies: ['events'] });
    const datafile = await (await s.req('GET', '/v0/pipes/p_shape.pipe')).text();
    expect(datafile).toContain('TYPE sink');
    expect(datafile).toContain(`EXPORT_BUCKET_URI "s3://${BUCKET}/shape"`);
    const started = await j(s.req('POST', '/v0/pipes/p_shape/sink', form({ file_template: 'override', format: 'ndjson', compression: 'none' })));
    expect(started.status).toBe(200);
    expect(started.body).toMatchObject({
      id: r.body.nodes[0].id,
      node_type: 'sink',
      job: { kind: 'sink', status: 'waiting', is_cancellable: true, pipe: { name: 'p_shape' } },
    });
    expect(started.body.job.job_url).toBe(`${s.url}/v0/jobs/${started.body.job.id}`);
    const job = await waitJob(started.body.job.id);
    expect(job).toMatchObject({ kind: 'sink', status: 'done', pipe_name: 'p_shape', statistics: { rows: 60, files: 1 } });
    expect(job.files).toEqual([{ path: `s3://${BUCKET}/shape/override.ndjson`, size: job.statistics.bytes }]);
    expect(await keys('shape/')).toEqual(['shape/override.ndjson']);
    const lines = (await object('shape/override.ndjson'))
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ country: 'ES', n: 0, ts: '2024-01-15 10:00:00' });
    expect(lines).toHaveLength(60);
    // Pause and resume the schedule.
    expect((await j(s.req('POST', '/v0/pipes/p_shape/sink/pause'))).body.schedule.status).toBe('paused');
    expect((await j(s.req('POST', '/v0/pipes/p_shape/sink/resume'))).body.schedule.status).toBe('running');
    // Cancel: the cancelled jobs are answered with their job fields (both job slots held, so the run waits).
    const { release } = await holdJobs(s, 'delete_data', 2);
    let cancel: { status: number; body: Record<string, unknown> };
    let waiting: string;
    try {
      waiting = (await j(s.req('POST', '/v0/pipes/p_shape/sink'))).body.job.id;
      cancel = await j(s.req('POST', '/v0/pipes/p_shape/sink/cancel'));
    } finally {
      release();
      await s.app.services.jobs.drain();
    }
    expect(cancel.status).toBe(200);
    expect(cancel.body.cancelled_jobs).toEqual([
      expect.objectContaining({
        id: waiting,
        kind: 'sink',
        status: 'cancelled',
        pipe_name: 'p_shape',
        job_url: `${s.url}/v0/jobs/${waiting}`,
        created_at: expect.any(String),
      }),
    ]);
    const del = await j(s.req('DELETE', '/v0/pipes/p_shape/nodes/n/sink'));
    expect(del.status).toBe(200);
    expect(del.body.type).toBe('default');
    expect(del.body.nodes[0].node_type).toBe('standard');
    expect(del.body.sink_node).toBeUndefined();
    expect((await s.req('DELETE', '/v0/pipes/p_shape/nodes/n/sink')).status).toBe(400);
    expect((await s.req('POST', '/v0/pipes/p_shape/sink')).status).toBe(400);
  });

  it('takes sink nodes in a JSON pipe (tb push) and as an appended node', async () => {
    const doc = {
      name: 'p_push',
      nodes: [
        {
          name: 'n',
          sql: 'SELECT n FROM events',
          type: 'sink',
          export_connection_name: 's3conn',
          export_bucket_uri: `s3://${BUCKET}/push`,
          export_file_template: 'pushed',
          export_format: 'ndjson',
          export_schedule: '@hourly',
        },
      ],
    };
    let r = await j(s.req('POST', '/v0/pipes', { headers: JSON_HDR, body: JSON.stringify(doc) }));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ type: 'sink', schedule: { cron: '@hourly', status: 'running' } });
    expect((await j(s.req('POST', '/v0/pipes/p_push/sink/pause'))).body.schedule.status).toBe('paused');
    // A sink that can not be set leaves no pipe behind.
    r = await j(
      s.req('POST', '/v0/pipes', {
        headers: JSON_HDR,
        body: JSON.stringify({ ...doc, name: 'p_push2', nodes: [{ ...doc.nodes[0], export_bucket_uri: 's3://no-such-bucket/x' }] }),
      }),
    );
    expect(r.status).toBe(404);
    expect((await s.req('GET', '/v0/pipes/p_push2')).status).toBe(404);
    await pipe('p_append');
    r = await j(
      s.req('POST', `/v0/pipes/p_append/nodes?name=out&type=sink&connection=s3conn&path=s3://${BUCKET}/append&file_template=appended`, {
        body: 'SELECT n FROM n',
      }),
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.node_type).toBe('sink');
    const job = await run('p_append');
    expect(job.files.map((f: { path: string }) => f.path)).toEqual([`s3://${BUCKET}/append/appended.csv`]);
  });

  it('writes every format and compression, read back independently', async () => {
    await pipe('p_fmt');
    expect((await setSink('p_fmt', { path: `s3://${BUCKET}/fmt`, file_template: 'base', write_strategy: 'truncate' })).status).toBe(200);
    const cases = [
      { format: 'csv', compression: 'none', key: 'fmt/plain.csv' },
      { format: 'csv', compression: 'gz', key: 'fmt/plain.csv.gz' },
      { format: 'csv', compression: 'zstd', key: 'fmt/plain.csv.zst' },
      { format: 'ndjson', compression: 'gz', key: 'fmt/plain.ndjson.gz' },
      { format: 'ndjson', compression: 'zstd', key: 'fmt/plain.ndjson.zst' },
      { format: 'parquet', compression: 'none', key: 'fmt/plain.parquet' },
      { format: 'parquet', compression: 'zstd', key: 'fmt/z.parquet' },
    ];
    for (const c of cases) {
      const name = path.basename(c.key).split('.')[0];
      const job = await run('p_fmt', { format: c.format, compression: c.compression, file_template: name });
      expect(job.status, JSON.stringify(job)).toBe('done');
      expect(job.files.map((f: { path: string }) => f.path)).toEqual([`s3://${BUCKET}/${c.key}`]);
      expect(job.statistics.rows).toBe(60);
      const raw = await object(c.key);
      expect(job.statistics.bytes).toBe(raw.length);
      let text: string | null = null;
      if (c.compression === 'gz' && c.format !== 'parquet') {
        expect([raw[0], raw[1]]).toEqual([0x1f, 0x8b]);
        text = zlib.gunzipSync(raw).toString('utf8');
      } else if (c.compression === 'zstd' && c.format !== 'parquet') {
        expect(raw.subarray(0, 4).toString('hex')).toBe('28b52ffd');
        text = Buffer.from(compressors.ZSTD!(new Uint8Array(raw), 0)).toString('utf8');
      } else if (c.format !== 'parquet') text = raw.toString('utf8');
      if (c.format === 'csv') {
        const lines = text!.trim().split('\n');
        expect(lines[0]).toBe('"country","n","ts"');
        expect(lines[1]).toBe('"ES",0,"2024-01-15 10:00:00"');
        expect(lines).toHaveLength(61);
      } else if (c.format === 'ndjson') {
        const objs = text!
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        expect(objs).toHaveLength(60);
        expect(objs[59]).toEqual({ country: 'US', n: 59, ts: '2024-02-15 10:00:00' });
      } else {
        expect(raw.subarray(0, 4).toString()).toBe('PAR1');
        const buf = new Uint8Array(raw).buffer;
        const objs = await parquetReadObjects({ file: buf, compressors });
        expect(objs).toHaveLength(60);
        expect(Object.keys(objs[0])).toEqual(['country', 'n', 'ts']);
        // Strings are Parquet STRING (UTF8), not bare bytes, whatever the server's default.
        expect(parquetMetadata(buf).schema.find((e) => e.name === 'country')?.converted_type).toBe('UTF8');
        expect({ country: objs[1].country, n: Number(objs[1].n), ts: new Date(objs[1].ts as Date).toISOString() }).toEqual({
          country: 'FR',
          n: 1,
          ts: '2024-02-15T10:00:00.000Z',
        });
      }
    }
  });

  it('write strategies: truncate replaces, new never overwrites', async () => {
    await pipe('p_ws', '%\nSELECT n FROM events WHERE n < {{ Int32(lim, 60) }} ORDER BY n');
    expect((await setSink('p_ws', { path: `s3://${BUCKET}/ws`, file_template: 'out', write_strategy: 'truncate' })).status).toBe(200);
    await run('p_ws', { lim: '5' });
    const first = await run('p_ws', { lim: '3' });
    expect(first.statistics.rows).toBe(3);
    expect(await keys('ws/')).toEqual(['ws/out.csv']);
    expect(csvLines(await object('ws/out.csv'))).toEqual(['"n"', '0', '1', '2']);
    const a = await run('p_ws', { lim: '2', write_strategy: 'new' });
    const b = await run('p_ws', { lim: '1', write_strategy: 'new' });
    expect(a.files.map((f: { path: string }) => f.path)).toEqual([`s3://${BUCKET}/ws/out.1.csv`]);
    expect(b.files.map((f: { path: string }) => f.path)).toEqual([`s3://${BUCKET}/ws/out.2.csv`]);
    expect(await keys('ws/')).toEqual(['ws/out.1.csv', 'ws/out.2.csv', 'ws/out.csv']);
    expect(csvLines(await object('ws/out.csv'))).toEqual(['"n"', '0', '1', '2']);
    expect(csvLines(await object('ws/out.2.csv'))).toEqual(['"n"', '0']);
  });

  it('partitions by column values, date formats and buckets; fills variables and the job time', async () => {
    await pipe('p_part');
    expect(
      (await setSink('p_part', { path: `s3://${BUCKET}/part`, file_template: "{country}/sales_{ts, '%Y%m'}", format: 'csv', compression: 'gz' })).status,
    ).toBe(200);
    const job = await run('p_part');
    expect(job.status, JSON.stringify(job)).toBe('done');
    const want = ['ES', 'FR', 'US'].flatMap((c) => ['202401', '202402'].map((m) => `part/${c}/sales_${m}.csv.gz`)).sort();
    expect(await keys('part/')).toEqual(want);
    expect(job.files.map((f: { path: string }) => f.path)).toEqual(want.map((k) => `s3://${BUCKET}/${k}`));
    expect(job.statistics).toMatchObject({ rows: 60, files: 6 });
    let total = 0;
    for (const k of want) {
      const lines = zlib
        .gunzipSync(await object(k))
        .toString()
        .trim()
        .split('\n');
      expect(lines[0]).toBe('"country","n","ts"');
      const [, c, m] = /part\/(\w+)\/sales_(\d+)/.exec(k)!;
      for (const l of lines.slice(1)) {
        expect(l.startsWith(`"${c}",`)).toBe(true);
        expect(l).toContain(`"${m.slice(0, 4)}-${m.slice(4)}-15`);
      }
      total += lines.length - 1;
    }
    expect(total).toBe(60);
    // Buckets and request variables, job time formatted.
    const v = await run('p_part', { file_template: "v_{customer}_{job_timestamp, '%Y'}_{n, 4}", customer: 'acme', compression: 'none', format: 'ndjson' });
    expect(v.status, JSON.stringify(v)).toBe('done');
    const year = new Date().getUTCFullYear();
    expect(await keys('part/v_')).toEqual([0, 1, 2, 3].map((i) => `part/v_acme_${year}_${i}.ndjson`));
    for (const i of [0, 1, 2, 3]) {
      const ns = (await object(`part/v_acme_${year}_${i}.ndjson`))
        .toString()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).n);
      expect(ns.every((n: number) => n % 4 === i)).toBe(true);
      expect(ns).toHaveLength(15);
    }
    // A placeholder that is neither a column nor a variable: 400 at trigger time, no job.
    const bad = await j(s.req('POST', '/v0/pipes/p_part/sink', form({ file_template: 'x_{customer}' })));
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/customer/);
    // Variable values are checked like the template.
    expect((await j(s.req('POST', '/v0/pipes/p_part/sink', form({ file_template: 'x_{customer}', customer: "a'b" })))).status).toBe(400);
    expect((await j(s.req('POST', '/v0/pipes/p_part/sink', form({ file_template: '{customer}/x', customer: '..' })))).status).toBe(400);
  });

  it('writes through GCS HMAC connections', async () => {
    await pipe('p_gcs');
    expect(
      (
        await j(
          s.req(
            'POST',
            '/v0/pipes/p_gcs/nodes/n/sink',
            form({ connection: 'gcsconn', path: 'gs://gcs-bucket/exports', file_template: 'g', format: 'parquet' }),
          ),
        )
      ).status,
    ).toBe(200);
    const job = await run('p_gcs');
    expect(job.files.map((f: { path: string }) => f.path)).toEqual(['gs://gcs-bucket/exports/g.parquet']);
    expect(await keys('exports/', 'gcs-bucket')).toEqual(['exports/g.parquet']);
  });

  it('fails the job with the storage error when the bucket is gone', async () => {
    await pipe('p_gone');
    expect((await setSink('p_gone', { path: 's3://doomed-bucket/x', file_template: 'f' })).status).toBe(200);
    // The set-up's check object was deleted again: the bucket is empty and can go.
    await client.send(new DeleteBucketCommand({ Bucket: 'doomed-bucket' }));
    const job = await run('p_gone');
    expect(job.status).toBe('error');
    expect(job.error).toMatch(/doomed-bucket.*doesn't exist/);
    expect(job.files).toEqual([]);
  });

  it('runs scheduled sinks once per tick of a controllable clock', async () => {
    const clock = s.app.services.clock;
    const t0 = new Date('2031-03-01T10:00:30Z');
    const at = (min: number) => new Date(t0.getTime() + min * 60_000);
    clock.now = () => t0;
    try {
      await pipe('p_cron_t');
      await pipe('p_cron_n');
      expect(
        (
          await setSink('p_cron_t', {
            path: `s3://${BUCKET}/cron`,
            file_template: "t_{job_timestamp, '%H'}",
            schedule_cron: '*/10 * * * *',
            write_strategy: 'truncate',
          })
        ).status,
      ).toBe(200);
      expect(
        (await setSink('p_cron_n', { path: `s3://${BUCKET}/cron`, file_template: 'n', schedule_cron: '*/10 * * * *', write_strategy: 'new' })).status,
      ).toBe(200);
      clock.now = () => at(5);
      expect(await s.app.services.scheduler.tick()).toHaveLength(0);
      for (const m of [10, 20]) {
        clock.now = () => at(m);
        const jobs = await s.app.services.scheduler.tick();
        expect(jobs.map((x) => x.kind)).toEqual(['sink', 'sink']);
        for (const x of jobs) expect((await waitJob(x.id)).status).toBe('done');
        expect(await s.app.services.scheduler.tick()).toHaveLength(0);
      }
      // truncate: one file per hour-name, rewritten; new: a new file per tick.
      expect(await keys('cron/')).toEqual(['cron/n.1.csv', 'cron/n.csv', 'cron/t_10.csv']);
      expect((await j(s.req('POST', '/v0/pipes/p_cron_n/sink/pause'))).status).toBe(200);
      clock.now = () => at(30);
      expect((await s.app.services.scheduler.tick()).map((x) => x.data.pipe_name)).toEqual(['p_cron_t']);
      await s.app.services.jobs.drain();
      expect(await keys('cron/n')).toEqual(['cron/n.1.csv', 'cron/n.csv']);
    } finally {
      clock.now = () => new Date();
    }
  });

  it('/v0/sink_pipes lists the sink pipes; POST {name, schedule} schedules one (seed 003)', async () => {
    const clock = s.app.services.clock;
    const t0 = new Date('2032-05-01T08:00:30Z');
    clock.now = () => t0;
    try {
      await pipe('p_sp');
      await pipe('p_sp_plain');
      expect((await setSink('p_sp', { path: `s3://${BUCKET}/sp`, file_template: 'sp', write_strategy: 'new' })).status).toBe(200);
      let r = await j(s.req('GET', '/v0/sink_pipes'));
      expect(r.status).toBe(200);
      const names = r.body.pipes.map((p: { name: string }) => p.name);
      expect(names).toContain('p_sp');
      expect(names).not.toContain('p_sp_plain');
      const listed = r.body.pipes.find((p: { name: string }) => p.name === 'p_sp');
      expect(listed).toMatchObject({ name: 'p_sp', type: 'sink', sink_node: expect.any(String) });
      expect(listed).not.toHaveProperty('schedule');
      r = await j(s.req('POST', '/v0/sink_pipes', { headers: JSON_HDR, body: JSON.stringify({ name: 'p_sp', schedule: '0 * * * *' }) }));
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.schedule).toEqual({ timezone: 'Etc/UTC', cron: '0 * * * *', status: 'running' });
      clock.now = () => new Date(t0.getTime() + 60 * 60_000);
      const jobs = (await s.app.services.scheduler.tick()).filter((x) => x.data.pipe_name === 'p_sp');
      expect(jobs).toHaveLength(1);
      expect((await waitJob(jobs[0].id)).status).toBe('done');
      // Removing the schedule; errors for what is not a sink pipe or a bad body.
      r = await j(s.req('POST', '/v0/sink_pipes', form({ name: 'p_sp', schedule: '@on-demand' })));
      expect(r.status).toBe(200);
      expect(r.body).not.toHaveProperty('schedule');
      for (const [body, status, error] of [
        [{ name: 'p_sp_plain', schedule: '0 * * * *' }, 400, "The pipe 'p_sp_plain' is not a Sink pipe"],
        [{ name: 'nope', schedule: '0 * * * *' }, 404, undefined],
        [{ name: 'p_sp', schedule: 'every hour' }, 400, undefined],
        [{ schedule: '0 * * * *' }, 400, undefined],
        [{ name: 'p_sp' }, 400, undefined],
      ] as const) {
        r = await j(s.req('POST', '/v0/sink_pipes', { headers: JSON_HDR, body: JSON.stringify(body) }));
        expect(r.status, JSON.stringify(body)).toBe(status);
        if (error) expect(r.body.error).toBe(error);
      }
      // A read token sees the sink pipes it can read; scheduling needs PIPES:CREATE.
      const t = await j(s.req('POST', '/v0/tokens?name=sp_reader&scope=PIPES:READ:p_sp'));
      r = await j(s.req('GET', '/v0/sink_pipes', { token: t.body.token }));
      expect(r.body.pipes.map((p: { name: string }) => p.name)).toEqual(['p_sp']);
      r = await j(s.req('POST', '/v0/sink_pipes', { headers: JSON_HDR, body: JSON.stringify({ name: 'p_sp', schedule: '0 * * * *' }), token: t.body.token }));
      expect(r.status).toBe(403);
    } finally {
      clock.now = () => new Date();
    }
  });

  it("a file_template placeholder takes the node parameter's default; checks leave no _pipit_write_check behind", async () => {
    await pipe('p_pdef', "%\nSELECT country, n FROM events WHERE country = {{ String(region, 'ES') }} ORDER BY n");
    // Scheduled: no request variables, so {region} must come from the parameter's default.
    let r = await setSink('p_pdef', { path: `s3://${BUCKET}/pdef`, file_template: 'by_{region}', schedule_cron: '0 0 1 1 *', write_strategy: 'truncate' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    let job = await run('p_pdef');
    expect(job.status, JSON.stringify(job)).toBe('done');
    job = await run('p_pdef', { region: 'FR' });
    expect(job.status, JSON.stringify(job)).toBe('done');
    expect(await keys('pdef/')).toEqual(['pdef/by_ES.csv', 'pdef/by_FR.csv']);
    expect(
      csvLines(await object('pdef/by_ES.csv'))
        .slice(1)
        .every((l) => l.startsWith('"ES"')),
    ).toBe(true);
    expect(
      csvLines(await object('pdef/by_FR.csv'))
        .slice(1)
        .every((l) => l.startsWith('"FR"')),
    ).toBe(true);
    // A parameter without a default still needs the request's value.
    await pipe('p_pnodef', '%\nSELECT country, n FROM events WHERE country = {{ String(region) }} ORDER BY n');
    r = await setSink('p_pnodef', { path: `s3://${BUCKET}/pdef`, file_template: 'nd_{region}', schedule_cron: '0 0 1 1 *' });
    expect(r.status).toBe(400);
    // Connection checks (connector creation with bucket=, every sink set-up) delete their object.
    const all = await client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect((all.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('_pipit_write_check'))).toEqual([]);
    const c = await j(
      s.req(
        'POST',
        '/v0/connectors',
        form({
          service: 's3',
          name: 's3conn_root',
          s3_endpoint: endpoint,
          s3_region: 'us-east-1',
          s3_access_key_id: 'S3RVER',
          s3_secret_access_key: 'S3RVER',
          bucket: 'gcs-bucket',
        }),
      ),
    );
    expect(c.status, JSON.stringify(c.body)).toBe(200);
    const root = await client.send(new ListObjectsV2Command({ Bucket: 'gcs-bucket' }));
    expect((root.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('_pipit_write_check'))).toEqual([]);
  });

  it('writes local directories inside the root only, with both strategies', async () => {
    await pipe('p_local');
    const root = s.app.services.config.sinkLocalRoot;
    for (const p of ['../escape', 'a/../../b', '/etc', 'x//y']) {
      const r = await j(s.req('POST', '/v0/pipes/p_local/nodes/n/sink', form({ connection: 'localconn', path: p, file_template: 'f' })));
      expect(r.status, p).toBe(400);
    }
    fs.symlinkSync(os.tmpdir(), path.join(root, 'dev/out/tmp_link'));
    expect((await j(s.req('POST', '/v0/pipes/p_local/nodes/n/sink', form({ connection: 'localconn', path: 'tmp_link/x', file_template: 'f' })))).status).toBe(
      400,
    );
    const r = await j(
      s.req('POST', '/v0/pipes/p_local/nodes/n/sink', form({ connection: 'localconn', path: 'daily', file_template: 'by_{country}', write_strategy: 'new' })),
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const a = await run('p_local');
    expect(a.status, JSON.stringify(a)).toBe('done');
    await run('p_local');
    const dir = path.join(root, 'dev/out/daily');
    expect(fs.readdirSync(dir).sort()).toEqual(['by_ES.1.csv', 'by_ES.csv', 'by_FR.1.csv', 'by_FR.csv', 'by_US.1.csv', 'by_US.csv']);
    expect(a.files.map((f: { path: string }) => f.path)).toEqual(['ES', 'FR', 'US'].map((c) => `local://dev/out/daily/by_${c}.csv`));
    expect(a.statistics.rows).toBe(60);
    expect(csvLines(fs.readFileSync(path.join(dir, 'by_FR.csv')))).toHaveLength(21);
    const t = await run('p_local', { write_strategy: 'truncate', file_template: 'by_{country}' });
    expect(t.status).toBe('done');
    expect(fs.readdirSync(dir)).toHaveLength(6);
    // Nothing staged is left behind.
    expect(fs.readdirSync(path.join(root, '.pipit-staging'))).toEqual([]);
  });

  it('cancels a working sink job inside the engine', async () => {
    // Long to compute, little to write (a failed cancel must not fill the disk).
    await pipe('p_long', 'SELECT number AS x FROM numbers(30000000000) WHERE x % 1000000000 = 0');
    expect((await j(s.req('POST', '/v0/pipes/p_long/nodes/n/sink', form({ connection: 'localconn', path: 'long', file_template: 'big' })))).status).toBe(200);
    const started = await j(s.req('POST', '/v0/pipes/p_long/sink'));
    const id = started.body.job.id;
    for (let i = 0; i < 200 && (await j(s.req('GET', `/v0/jobs/${id}`))).body.status !== 'working'; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 300));
    const t = Date.now();
    expect((await j(s.req('POST', `/v0/jobs/${id}/cancel`))).body.status).toBe('cancelling');
    expect((await waitJob(id)).status).toBe('cancelled');
    expect(Date.now() - t).toBeLessThan(3_000);
    const root = s.app.services.config.sinkLocalRoot;
    expect(fs.readdirSync(path.join(root, 'dev/out/long'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, '.pipit-staging'))).toEqual([]);
  });

  it('cleans column values before they name files: no separators, traversal or glob characters', async () => {
    const values = ['a/b', '..', '.', '{x}', 'ok', 'a\\b', 'sp ace', '*?'];
    await pipe('p_hostile', `SELECT arrayJoin([${values.map((v) => `'${v.replace(/\\/g, '\\\\')}'`).join(', ')}]) AS v, 1 AS one`);
    expect(
      (await j(s.req('POST', '/v0/pipes/p_hostile/nodes/n/sink', form({ connection: 'localconn', path: 'hostile', file_template: '{v}/f' })))).status,
    ).toBe(200);
    const job = await run('p_hostile');
    expect(job.status, JSON.stringify(job)).toBe('done');
    const root = s.app.services.config.sinkLocalRoot;
    const dir = path.join(root, 'dev/out/hostile');
    expect(fs.readdirSync(dir).sort()).toEqual(['_', '_x_', 'a_b', 'ok', 'sp ace', '__'].sort());
    expect(job.statistics.rows).toBe(values.length);
    await pipe('p_hostile2', `SELECT arrayJoin([${values.map((v) => `'${v.replace(/\\/g, '\\\\')}'`).join(', ')}]) AS v`);
    expect((await setSink('p_hostile2', { path: `s3://${BUCKET}/hostile`, file_template: 'h_{v}' })).status).toBe(200);
    const j2 = await run('p_hostile2');
    expect(j2.status, JSON.stringify(j2)).toBe('done');
    expect(await keys('hostile/')).toEqual(['_', '__', '_x_', 'a_b', 'ok', 'sp ace'].map((v) => `hostile/h_${v}.csv`).sort());
    expect(j2.statistics).toMatchObject({ rows: values.length, files: 6 });
  });
});
