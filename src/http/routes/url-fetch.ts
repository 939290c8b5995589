/**
 * Fetches a remote file for url= imports and analyze: http(s) only, and (unless the server is
 * configured for development with PIPIT_ALLOW_PRIVATE_URLS) only public addresses, so imports
 * can't reach internal services.
 *
 * The address checked is the address connected to: the host name is resolved once, inside the
 * connection's own `lookup`, every resolved address is checked (address-policy.ts), and the
 * socket connects to those checked addresses; there is no second lookup an attacker's DNS could
 * answer differently (DNS rebinding). Redirects are followed by hand, each hop checked the same
 * way, at most MAX_REDIRECTS.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { LookupFunction } from 'node:net';
import { badRequest, PipitError } from '../../basics/errors.js';
import { blockedReason } from '../address-policy.js';

export const MAX_REDIRECTS = 5;
/** A fetch that sends nothing for this long (connecting, headers or body) fails. */
const IDLE_TIMEOUT_MS = 60_000;

/** How names are resolved and addresses judged; replaceable in tests (a resolver that answers differently each time, a policy that treats one loopback address as public). */
export interface FetchPolicy {
  lookup: (host: string, family: number, cb: (err: Error | null, addrs: dns.LookupAddress[]) => void) => void;
  blocked: (ip: string) => string | null;
}

const SYSTEM: FetchPolicy = {
  lookup: (host, family, cb) => dns.lookup(host, { all: true, family }, cb),
  blocked: blockedReason,
};

class BlockedAddress extends Error {
  constructor(
    readonly host: string,
    readonly address: string,
    readonly why: string,
  ) {
    super(`${host} resolves to ${address} (${why})`);
  }
}

/** Parses a url and checks its scheme; 400 otherwise. */
function parseHttpUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw badRequest('Invalid url');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw badRequest('Url is not supported, only http, and https schemes are');
  return u;
}

/** `host` of a URL without IPv6 brackets. The WHATWG parser already turned `2130706433`, `0x7f.1`, `0177.0.0.1` into dotted IPv4. */
const hostOf = (u: URL) => u.hostname.replace(/^\[|\]$/g, '');

/** Resolves `host` once and checks every address; the addresses returned are the ones to connect to. */
function resolveChecked(
  host: string,
  allowPrivate: boolean,
  family: number | undefined,
  policy: FetchPolicy,
  cb: (err: Error | null, addrs?: dns.LookupAddress[]) => void,
): void {
  policy.lookup(host, family ?? 0, (err, addrs) => {
    if (err) return cb(err);
    if (!addrs.length) return cb(new Error(`${host} has no address`));
    if (!allowPrivate) {
      for (const a of addrs) {
        const why = policy.blocked(a.address);
        if (why) return cb(new BlockedAddress(host, a.address, why));
      }
    }
    cb(null, addrs);
  });
}

/** The connection's `lookup`: the one resolution whose checked result the socket connects to. */
function checkedLookup(allowPrivate: boolean, policy: FetchPolicy): LookupFunction {
  return ((host: string, options: dns.LookupOptions, cb: (err: Error | null, address: string | dns.LookupAddress[], family?: number) => void) => {
    resolveChecked(host, allowPrivate, typeof options.family === 'number' ? options.family : undefined, policy, (err, addrs) => {
      if (err) return cb(err, '');
      if (options.all) return cb(null, addrs!);
      cb(null, addrs![0].address, addrs![0].family);
    });
  }) as LookupFunction;
}

/** Refuses a URL whose host is, or resolves to, a non-public address (400 `Invalid url`). */
export async function checkUrl(url: string, allowPrivate: boolean, policy: FetchPolicy = SYSTEM): Promise<URL> {
  const u = parseHttpUrl(url);
  if (!allowPrivate) {
    const host = hostOf(u);
    if (net.isIP(host)) {
      if (policy.blocked(host)) throw badRequest('Invalid url');
    } else {
      await new Promise<void>((resolve, reject) =>
        resolveChecked(host, false, undefined, policy, (err) => (err ? reject(badRequest('Invalid url')) : resolve())),
      );
    }
  }
  return u;
}

/** One GET, connected only to checked addresses. */
function get(u: URL, allowPrivate: boolean, policy: FetchPolicy): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const host = hostOf(u);
    if (!allowPrivate && net.isIP(host)) {
      const why = policy.blocked(host);
      if (why) return reject(new BlockedAddress(host, host, why));
    }
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(u, {
      agent: false, // no pooled socket: each fetch connects to the addresses it checked itself
      lookup: checkedLookup(allowPrivate, policy),
      headers: { 'accept-encoding': 'gzip', 'user-agent': 'Pipit' },
      timeout: IDLE_TIMEOUT_MS,
    });
    req.on('timeout', () => req.destroy(new Error(`no data for ${IDLE_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.on('response', resolve);
  });
}

export async function fetchUrl(
  url: string,
  allowPrivate: boolean,
  policy: FetchPolicy = SYSTEM,
): Promise<{ stream: AsyncIterable<Buffer>; filename: string; contentEncoding?: string; close(): void }> {
  const first = parseHttpUrl(url);
  let u = first;
  for (let hop = 0; ; hop++) {
    let res: http.IncomingMessage;
    try {
      res = await get(u, allowPrivate, policy);
    } catch (err) {
      if (err instanceof BlockedAddress)
        throw badRequest(hop === 0 ? 'Invalid url' : `Invalid url: it redirects to ${u.origin}, which is not a public address`);
      if (err instanceof PipitError) throw err;
      throw badRequest(`Trying to fetch ${url} failed with ${(err as Error).message}`);
    }
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if ([301, 302, 303, 307, 308].includes(status) && location) {
      res.resume();
      if (hop >= MAX_REDIRECTS) throw badRequest(`Trying to fetch ${url} failed: more than ${MAX_REDIRECTS} redirects`);
      let next: URL;
      try {
        next = new URL(location, u);
      } catch {
        throw badRequest(`Trying to fetch ${url} failed: invalid redirect location`);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw badRequest(`Trying to fetch ${url} failed: it redirects to a ${next.protocol} url`);
      u = next;
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw badRequest(`Trying to fetch ${url} returns ${status}: ${res.statusMessage ?? ''}`);
    }
    // A body the caller stops reading is destroyed by the idle timeout: its error must not be unhandled.
    // (A reader iterating the stream still receives it.)
    res.on('error', () => undefined);
    // close(): a caller that needs only the start (a sample) releases the download and its socket.
    return { stream: res, filename: first.pathname.split('/').pop() ?? '', contentEncoding: res.headers['content-encoding'], close: () => res.destroy() };
  }
}
