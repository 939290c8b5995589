/**
 * Fetches a remote file for url= imports: http(s) only, and no private or loopback addresses
 * (unless the server is configured for development), so imports can't reach internal services.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { Readable } from 'node:stream';
import { badRequest } from '../../domain/errors.js';

function isPrivate(ip: string): boolean {
  if (net.isIPv4(ip)) {
    const [a, b] = ip.split('.').map(Number);
    return a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  const l = ip.toLowerCase();
  return l === '::1' || l === '::' || l.startsWith('fc') || l.startsWith('fd') || l.startsWith('fe80') || l.startsWith('::ffff:127.') || l.startsWith('::ffff:10.') || l.startsWith('::ffff:192.168.');
}

export async function fetchUrl(url: string, allowPrivate: boolean): Promise<{ stream: AsyncIterable<Buffer>; filename: string; contentEncoding?: string }> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badRequest('Invalid url');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw badRequest('Url is not supported, only http, and https schemes are');
  if (!allowPrivate) {
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const addrs = net.isIP(host) ? [host] : (await dns.lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
    if (!addrs.length || addrs.some(isPrivate)) throw badRequest('Invalid url');
  }
  let res: Response;
  try {
    res = await fetch(u, { redirect: allowPrivate ? 'follow' : 'error' });
  } catch (err) {
    throw badRequest(`Trying to fetch ${url} failed with ${(err as Error).message}`);
  }
  if (!res.ok || !res.body) throw badRequest(`Trying to fetch ${url} returns ${res.status}: ${res.statusText}`);
  const stream = Readable.fromWeb(res.body as never) as AsyncIterable<Buffer>;
  return { stream, filename: u.pathname.split('/').pop() ?? '', contentEncoding: res.headers.get('content-encoding') ?? undefined };
}
