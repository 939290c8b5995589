/**
 * fetchUrl connects to the address its own check approved (no second lookup), and checks every
 * redirect hop. Real HTTP servers on loopback; the policy treats 127.0.0.1 as "public" and every
 * other address as blocked, and the resolver is scripted, so DNS rebinding can be replayed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type dns from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkUrl, fetchUrl, MAX_REDIRECTS, type FetchPolicy } from './url-fetch.js';

let server: http.Server;
let port: number;
const hits: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/redirect') return void res.writeHead(302, { location: u.searchParams.get('to') ?? '/' }).end();
    if (u.pathname === '/loop') return void res.writeHead(307, { location: '/loop' }).end();
    res.writeHead(200).end('1,a\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** A policy where only 127.0.0.1 counts as public; `answers` are what successive lookups return. */
function policy(answers: string[][]): FetchPolicy & { lookups: number } {
  const p = {
    lookups: 0,
    lookup(_host: string, _family: number, cb: (err: Error | null, addrs: dns.LookupAddress[]) => void) {
      const a = answers[Math.min(p.lookups++, answers.length - 1)];
      queueMicrotask(() =>
        cb(
          null,
          a.map((address) => ({ address, family: 4 })),
        ),
      );
    },
    blocked: (ip: string) => (ip === '127.0.0.1' ? null : 'private (test)'),
  };
  return p;
}

const read = async (s: AsyncIterable<Buffer>) => {
  let out = '';
  for await (const c of s) out += c.toString();
  return out;
};

describe('fetchUrl', () => {
  it('resolves once and connects to the checked address', async () => {
    const p = policy([['127.0.0.1']]);
    const r = await fetchUrl(`http://files.test:${port}/a.csv`, false, p);
    expect(await read(r.stream)).toBe('1,a\n');
    expect(r.filename).toBe('a.csv');
    expect(p.lookups).toBe(1);
  });

  it('DNS rebinding: the name passed the submit-time check, then resolves to a blocked address: refused, nothing fetched', async () => {
    const p = policy([['127.0.0.1'], ['127.0.0.2']]);
    await checkUrl(`http://rebind.test:${port}/a.csv`, false, p); // the early check sees a public address
    hits.length = 0;
    await expect(fetchUrl(`http://rebind.test:${port}/a.csv`, false, p)).rejects.toMatchObject({ code: 'bad_request', message: 'Invalid url' });
    expect(hits).toEqual([]);
  });

  it('a name with one blocked address among public ones is refused', async () => {
    const p = policy([['127.0.0.1', '10.0.0.1']]);
    await expect(fetchUrl(`http://mixed.test:${port}/a.csv`, false, p)).rejects.toMatchObject({ message: 'Invalid url' });
  });

  it('every redirect hop is checked: a redirect to a blocked address is refused before connecting', async () => {
    hits.length = 0;
    const p = policy([['127.0.0.1']]);
    const to = encodeURIComponent(`http://127.0.0.2:${port}/secret`);
    await expect(fetchUrl(`http://files.test:${port}/redirect?to=${to}`, false, p)).rejects.toMatchObject({
      code: 'bad_request',
      message: /redirects to http:\/\/127\.0\.0\.2/,
    });
    expect(hits).toEqual([`/redirect?to=${to}`]);
  });

  it('a redirect to a name resolving to a blocked address is refused', async () => {
    const p = policy([['127.0.0.1'], ['127.0.0.3']]);
    const to = encodeURIComponent(`http://inner.test:${port}/secret`);
    await expect(fetchUrl(`http://files.test:${port}/redirect?to=${to}`, false, p)).rejects.toMatchObject({ message: /not a public address/ });
  });

  it('a redirect to a public address is followed', async () => {
    const p = policy([['127.0.0.1']]);
    const to = encodeURIComponent(`http://other.test:${port}/b.csv`);
    const r = await fetchUrl(`http://files.test:${port}/redirect?to=${to}`, false, p);
    expect(await read(r.stream)).toBe('1,a\n');
    expect(p.lookups).toBe(2);
  });

  it('redirect loops and non-http redirects end with a 400', async () => {
    const p = policy([['127.0.0.1']]);
    await expect(fetchUrl(`http://files.test:${port}/loop`, false, p)).rejects.toMatchObject({ message: new RegExp(`more than ${MAX_REDIRECTS} redirects`) });
    const to = encodeURIComponent('file:///etc/passwd');
    await expect(fetchUrl(`http://files.test:${port}/redirect?to=${to}`, false, p)).rejects.toMatchObject({ message: /redirects to a file: url/ });
  });

  it('with private urls allowed (development), loopback is fetched', async () => {
    const r = await fetchUrl(`http://localhost:${port}/a.csv`, true);
    expect(await read(r.stream)).toBe('1,a\n');
  });

  it('the system policy refuses loopback by literal and by name', async () => {
    await expect(fetchUrl(`http://127.0.0.1:${port}/a.csv`, false)).rejects.toMatchObject({ message: 'Invalid url' });
    await expect(fetchUrl(`http://localhost:${port}/a.csv`, false)).rejects.toMatchObject({ message: 'Invalid url' });
    await expect(fetchUrl(`http://[::ffff:127.0.0.1]:${port}/a.csv`, false)).rejects.toMatchObject({ message: 'Invalid url' });
  });
});
