/**
 * url= imports and analyze on a server that does not allow private urls (the default outside
 * development): loopback, private and IPv4-mapped addresses are refused with 400 `Invalid url`
 * before anything is fetched or any job exists. Its own file: chDB holds one data directory per
 * process, so this second configuration can't share a process with the other tests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;
let files: http.Server;
let port: number;
const fetched: string[] = [];

beforeAll(async () => {
  s = await startServer({ allowPrivateUrls: false });
  files = http.createServer((req, res) => {
    fetched.push(req.url ?? '');
    res.writeHead(200).end('1,a\n');
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  port = (files.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((r) => files?.close(() => r()));
  await s?.close();
});

const form = (o: Record<string, string>) => ({ body: new URLSearchParams(o).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });

describe('private urls refused', () => {
  const urls = () => [
    `http://127.0.0.1:${port}/a.csv`,
    `http://localhost:${port}/a.csv`,
    `http://[::ffff:127.0.0.1]:${port}/a.csv`, // the WHATWG parser turns this into [::ffff:7f00:1]
    `http://[::1]:${port}/a.csv`,
    `http://2130706433:${port}/a.csv`, // 127.0.0.1 as one number
    'http://10.1.2.3/a.csv',
    'http://192.168.1.1/a.csv',
    'http://169.254.169.254/latest/meta-data/',
    'http://0.0.0.0/a.csv',
    // issue 10 item 9: the ranges and spellings that were missing
    `http://0x7f.1:${port}/a.csv`, // 127.0.0.1 in hex, short form
    `http://0177.0.0.1:${port}/a.csv`, // octal
    `http://[::127.0.0.1]:${port}/a.csv`, // IPv4-compatible
    `http://[64:ff9b::7f00:1]:${port}/a.csv`, // NAT64 of 127.0.0.1
    `http://[2002:7f00:1::1]:${port}/a.csv`, // 6to4 of 127.0.0.1
    'http://[2001:0:7f00:1::1]/a.csv', // Teredo server 127.0.0.1
    'http://[fd00::1]/a.csv', // ULA
    'http://[fe80::1]/a.csv', // link-local
    'http://[ff02::1]/a.csv', // multicast
    'http://100.64.0.1/a.csv', // CGNAT
    'http://198.18.0.1/a.csv', // benchmarking
    'http://224.0.0.1/a.csv', // multicast
    'http://255.255.255.255/a.csv', // broadcast
  ];

  it('POST /v0/datasources url= → 400 Invalid url, no job, no data source', async () => {
    for (const [i, url] of urls().entries()) {
      for (const mode of ['create', 'append']) {
        const r = await s.req('POST', `/v0/datasources?name=priv_${i}&mode=${mode}`, form({ url }));
        const j = await r.json();
        expect(r.status, `${url} ${JSON.stringify(j)}`).toBe(400);
        expect(j.error).toBe('Invalid url');
      }
    }
    const jobs = await (await s.req('GET', '/v0/jobs')).json();
    expect(jobs.jobs).toEqual([]);
    const ds = await (await s.req('GET', '/v0/datasources')).json();
    expect(ds.datasources).toEqual([]);
    expect(fetched).toEqual([]);
  });

  it('POST /v0/analyze?url= → 400 Invalid url', async () => {
    for (const url of urls()) {
      const r = await s.req('POST', `/v0/analyze?url=${encodeURIComponent(url)}`);
      const j = await r.json();
      expect(r.status, `${url} ${JSON.stringify(j)}`).toBe(400);
      expect(j.error).toBe('Invalid url');
    }
    expect(fetched).toEqual([]);
  });

  it('data in the body is still accepted', async () => {
    const r = await s.req('POST', '/v0/datasources?name=priv_ok', { body: '1,a\n' });
    expect(r.status, await r.clone().text()).toBe(200);
  });
});
