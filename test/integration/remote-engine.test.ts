/**
 * The remote engine (PIPIT_ENGINE_URL) against the ClickHouse-compatible test server, in both test
 * modes: what only a remote engine does (no shared filesystem, the version check, an unreachable
 * server), and the refusal of Debian's ClickHouse 18.16 when it is installed.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { MIN_SERVER_VERSION, RemoteEngine } from '../../src/engine/remote-engine.js';
import { type EngineTestServerProcess, startEngineTestServerProcess } from '../helpers/server.js';

const form = (o: Record<string, string>) => new URLSearchParams(o);

function configFor(engineUrl: string) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-remote-'));
  return loadConfig({}, { dataDir, port: 0, logLevel: 'silent', engineSessions: 2, engineUrl });
}

describe('a Pipit app on the remote engine', () => {
  let engine: EngineTestServerProcess;
  let app: Awaited<ReturnType<typeof createApp>>;
  let url: string;
  let token: string;
  let dataDir: string;
  const req = (method: string, p: string, body?: BodyInit) => fetch(url + p, { method, body, headers: { authorization: `Bearer ${token}` } });

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-remote-engine-'));
    engine = await startEngineTestServerProcess(path.join(dataDir, 'engine-server'));
    const config = configFor(engine.url);
    app = await createApp(config);
    await app.http.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.http.server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    token = app.services.localTokens.workspace_admin_token;
  });

  afterAll(async () => {
    await app?.close();
    await engine?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('uses the server named by PIPIT_ENGINE_URL, whose files Pipit can not reach', async () => {
    expect(app.services.engine).toBeInstanceOf(RemoteEngine);
    expect(app.services.engine.localFiles).toBe(false);
    // The workspace database lives on the server, not under Pipit's data directory.
    expect(fs.existsSync(path.join(app.services.config.dataDir, 'engine'))).toBe(false);
    const r = await req('GET', `/v0/sql?q=${encodeURIComponent('SELECT 1 AS one FORMAT JSON')}`);
    expect(r.status).toBe(200);
    expect((await r.json()).data).toEqual([{ one: 1 }]);
  });

  it('user SQL runs read-only in the empty sandbox database', async () => {
    const sel = await app.services.engine.select('SELECT currentDatabase() AS d', {
      format: 'JSONEachRow',
      queryId: 'sandbox-check',
      limits: { maxExecutionTime: 5, maxResultBytes: 1e6, maxMemoryUsage: 1e8 },
    });
    let out = '';
    for await (const c of sel) out += c.toString();
    expect(JSON.parse(out)).toEqual({ d: 'pipit_sandbox' });
    await expect(
      app.services.engine.select('CREATE TABLE x (a Int8) ENGINE = Memory', {
        format: 'TSV',
        queryId: 'ro',
        limits: { maxExecutionTime: 5, maxResultBytes: 1e6, maxMemoryUsage: 1e8 },
      }),
    ).rejects.toMatchObject({ chType: 'READONLY' });
  });

  it('local-directory connections answer a clear 400: the server can not write to Pipit’s disk', async () => {
    const r = await req('POST', '/v0/connectors', form({ service: 'local', name: 'l', directory: 'out' }));
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/work only with the embedded engine.*PIPIT_ENGINE_URL/);
  });

  it('a Parquet body is streamed to the server (no shared filesystem) and leaves nothing behind', async () => {
    // A Parquet file made by the engine itself, read back through the API.
    const parquet = (await app.services.engine.query('SELECT number AS n, toString(number) AS s FROM numbers(3) FORMAT Parquet')).bytes;
    const r = await req('POST', '/v0/datasources?name=pq&mode=create&format=parquet', new Uint8Array(parquet));
    expect(r.status, await r.clone().text()).toBe(200);
    const rows = await (await req('GET', `/v0/sql?q=${encodeURIComponent('SELECT n, s FROM pq ORDER BY n FORMAT JSON')}`)).json();
    expect(rows.data).toEqual([
      { n: 0, s: '0' },
      { n: 1, s: '1' },
      { n: 2, s: '2' },
    ]);
    expect(await app.services.engine.rows("SELECT name FROM system.tables WHERE database = 'pipit_files'")).toEqual([]);
  });

  it('engine errors keep their code and type at the boundary', async () => {
    const r = await req('GET', `/v0/sql?q=${encodeURIComponent("SELECT throwIf(1, 'boom') FORMAT JSON")}`);
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/boom/);
    await expect(app.services.engine.rows('SELECT * FROM system.no_such_table')).rejects.toMatchObject({ chCode: 60, chType: 'UNKNOWN_TABLE' });
  });

  it('a query cancelled by its client is killed on the server by its query id', async () => {
    const ac = new AbortController();
    const p = fetch(`${url}/v0/sql?q=${encodeURIComponent('SELECT count() FROM numbers_mt(1000000000000) FORMAT JSON')}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: ac.signal,
    }).catch(() => null);
    const running = async () => (await engine.processes()).filter((id) => id.startsWith('pipit:')).length;
    for (let i = 0; i < 100 && (await running()) === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await running()).toBe(1);
    ac.abort();
    await p;
    for (let i = 0; i < 100 && (await running()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await running()).toBe(0);
  });
});

describe('the server version check', () => {
  it(`refuses a server older than ${MIN_SERVER_VERSION}, naming the minimum`, async () => {
    // Answers SELECT version() as ClickHouse 18.16 does, and nothing else.
    const old = http.createServer((req, res) => res.end(req.url?.includes('query=') ? '18.16.1\n' : 'Ok.\n'));
    await new Promise<void>((r) => old.listen(0, '127.0.0.1', () => r()));
    const port = (old.address() as { port: number }).port;
    try {
      await expect(createApp(configFor(`http://127.0.0.1:${port}`))).rejects.toThrow(
        `is version 18.16.1; Pipit needs ClickHouse ${MIN_SERVER_VERSION} or newer`,
      );
    } finally {
      old.close();
    }
  });

  it('says so when nothing answers at PIPIT_ENGINE_URL', async () => {
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as { port: number }).port;
    await new Promise<void>((r) => s.close(() => r()));
    await expect(createApp(configFor(`http://127.0.0.1:${port}`))).rejects.toThrow(/does not answer/);
  });

  it('checks the settings at boot', () => {
    expect(() => loadConfig({ PIPIT_ENGINE_URL: 'ftp://x' })).toThrow(/PIPIT_ENGINE_URL must be an http\(s\)/);
    expect(() => loadConfig({ PIPIT_ENGINE_URL: 'http://u:p@x:8123' })).toThrow(/must not carry credentials/);
    expect(() => loadConfig({ PIPIT_ENGINE_CLUSTER: 'c' })).toThrow(/PIPIT_ENGINE_CLUSTER needs PIPIT_ENGINE_URL/);
    const c = loadConfig({
      PIPIT_ENGINE_URL: 'https://ch.example:8443/',
      PIPIT_ENGINE_USER: 'pipit',
      PIPIT_ENGINE_PASSWORD: 'pw',
      PIPIT_ENGINE_CLUSTER: 'main',
    });
    expect([c.engineUrl, c.engineUser, c.enginePassword, c.engineCluster]).toEqual(['https://ch.example:8443', 'pipit', 'pw', 'main']);
  });

  // Debian's clickhouse-server (18.16, from 2018) is the only ClickHouse server these machines can
  // install (`apt-get install clickhouse-server`); .ci/run installs it. Without it there is nothing to run.
  const binary = ['/usr/sbin/clickhouse-server', '/usr/bin/clickhouse-server'].find((b) => fs.existsSync(b));
  it.skipIf(!binary)('refuses the real ClickHouse 18.16 server with the same message', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipit-ch18-'));
    const port = 20000 + Math.floor(Math.random() * 20000);
    fs.writeFileSync(
      path.join(dir, 'config.xml'),
      `<yandex><logger><level>warning</level><console>1</console></logger><http_port>${port}</http_port><tcp_port>${port + 1}</tcp_port>` +
        `<listen_host>127.0.0.1</listen_host><path>${dir}/data/</path><tmp_path>${dir}/tmp/</tmp_path><user_files_path>${dir}/files/</user_files_path>` +
        `<users_config>${dir}/users.xml</users_config><default_profile>default</default_profile><default_database>default</default_database>` +
        '<mark_cache_size>5368709</mark_cache_size></yandex>',
    );
    fs.writeFileSync(
      path.join(dir, 'users.xml'),
      '<yandex><profiles><default/></profiles><users><default><password></password><networks><ip>127.0.0.1</ip></networks>' +
        '<profile>default</profile><quota>default</quota></default></users><quotas><default/></quotas></yandex>',
    );
    const child = spawn(binary!, ['--config-file', `${dir}/config.xml`], {
      stdio: 'ignore',
    });
    try {
      let version = '';
      for (let i = 0; i < 100 && !version; i++) {
        await new Promise((r) => setTimeout(r, 100));
        version = await RemoteEngine.serverVersion({ url: `http://127.0.0.1:${port}` }).catch(() => '');
      }
      expect(version).toMatch(/^18\./);
      await expect(createApp(configFor(`http://127.0.0.1:${port}`))).rejects.toThrow(`Pipit needs ClickHouse ${MIN_SERVER_VERSION} or newer`);
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
