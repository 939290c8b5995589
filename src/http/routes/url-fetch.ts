/**
 * Fetches a remote file for url= imports: http(s) only, and no private or loopback addresses
 * (unless the server is configured for development), so imports can't reach internal services.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { Readable } from 'node:stream';
import { badRequest } from '../../domain/errors.js';

/** Private, loopback, link-local and unspecified ranges; IPv4-mapped IPv6 (`::ffff:7f00:1`) matches the IPv4 rules. */
const PRIVATE = new net.BlockList();
for (const [net4, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16]] as const) {
  PRIVATE.addSubnet(net4, bits, 'ipv4');
}
for (const [net6, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) PRIVATE.addSubnet(net6, bits, 'ipv6');

function isPrivate(ip: string): boolean {
  return PRIVATE.check(ip, net.isIPv4(ip) ? 'ipv4' : 'ipv6');
}

/** Parses and checks a url (scheme, and no private address unless allowed); 400 otherwise. */
export async function checkUrl(url: string, allowPrivate: boolean): Promise<URL> {
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
  return u;
}

export async function fetchUrl(url: string, allowPrivate: boolean): Promise<{ stream: AsyncIterable<Buffer>; filename: string; contentEncoding?: string }> {
  const u = await checkUrl(url, allowPrivate);
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
