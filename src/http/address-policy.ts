/**
 * Which IP addresses the server may connect to on a user's behalf (url= imports, analyze, object
 * storage endpoints): only public unicast. Everything else is refused: private, loopback,
 * link-local, shared (CGNAT), benchmarking, documentation, multicast, reserved and broadcast
 * ranges, and IPv6 forms that embed an IPv4 address (IPv4-mapped, -compatible, SIIT, NAT64,
 * 6to4, Teredo) are judged by the IPv4 address inside them.
 */
import net from 'node:net';

/** IPv4 ranges that are not public unicast: [first address, prefix bits, why]. */
const V4_BLOCKED: ReadonlyArray<readonly [string, number, string]> = [
  ['0.0.0.0', 8, 'this network'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared address space (CGNAT)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay anycast'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'], // includes the broadcast address 255.255.255.255
];

const V4_RANGES = V4_BLOCKED.map(([a, bits, why]) => {
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return { base: (parseV4(a)! & mask) >>> 0, mask, why };
});

/** Dotted-decimal IPv4 to a 32-bit unsigned number, or null. */
export function parseV4(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    n = n * 256 + Number(p);
  }
  return n;
}

/** An IPv6 address (optionally with an embedded dotted IPv4 and a zone) as 8 16-bit groups, or null. */
export function parseV6(input: string): number[] | null {
  let s = input
    .replace(/^\[|\]$/g, '')
    .split('%')[0]
    .toLowerCase();
  const lastColon = s.lastIndexOf(':');
  if (lastColon < 0) return null;
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseV4(tail);
    if (v4 === null) return null;
    s = `${s.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  const fill = 8 - head.length - rest.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0) return null;
  const all = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...rest];
  const out: number[] = [];
  for (const g of all) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
    out.push(parseInt(g, 16));
  }
  return out.length === 8 ? out : null;
}

function v4Reason(n: number): string | null {
  for (const r of V4_RANGES) if ((n & r.mask) >>> 0 === r.base) return r.why;
  return null;
}

const v4Of = (hi: number, lo: number) => ((hi << 16) | lo) >>> 0;
const v4Text = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

function v6Reason(g: number[]): string | null {
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  const embedded = (kind: string, n: number) => {
    const why = v4Reason(n);
    return why ? `${kind} of ${v4Text(n)} (${why})` : null;
  };
  if (zeros(0, 8)) return 'unspecified';
  if (zeros(0, 7) && g[7] === 1) return 'loopback';
  if (zeros(0, 5) && g[5] === 0xffff) return embedded('IPv4-mapped', v4Of(g[6], g[7]));
  if (zeros(0, 6)) return embedded('IPv4-compatible', v4Of(g[6], g[7])) ?? 'IPv4-compatible (deprecated)';
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return embedded('SIIT-translated', v4Of(g[6], g[7]));
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return embedded('NAT64', v4Of(g[6], g[7]));
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return 'local-use NAT64';
  if (g[0] === 0x100 && zeros(1, 4)) return 'discard-only';
  if (g[0] === 0x2002) return embedded('6to4', v4Of(g[1], g[2]));
  if (g[0] === 0x2001 && g[1] === 0) {
    // Teredo: server address in bits 32-63, client address (inverted) in bits 96-127.
    return embedded('Teredo server', v4Of(g[2], g[3])) ?? embedded('Teredo client', ~v4Of(g[6], g[7]) >>> 0);
  }
  if (g[0] === 0x2001 && g[1] === 0x0db8) return 'documentation';
  if (g[0] === 0x2001 && g[1] === 2 && g[2] === 0) return 'benchmarking';
  if (g[0] === 0x2001 && (g[1] & 0xffe0) === 0x0020) return 'ORCHIDv2';
  if (g[0] === 0x2001 && (g[1] & 0xfff0) === 0x0010) return 'ORCHID';
  if ((g[0] & 0xfe00) === 0xfc00) return 'unique local (ULA)';
  if ((g[0] & 0xffc0) === 0xfe80) return 'link-local';
  if ((g[0] & 0xffc0) === 0xfec0) return 'site-local';
  if ((g[0] & 0xff00) === 0xff00) return 'multicast';
  if ((g[0] & 0xe000) !== 0x2000) return 'reserved (outside global unicast 2000::/3)';
  return null;
}

/**
 * Why `ip` is not a public unicast address the server may connect to (e.g. `loopback`,
 * `IPv4-mapped of 10.0.0.1 (private)`), or null when it is. Input that is not an IP is refused.
 */
export function blockedReason(ip: string): string | null {
  const host = ip.replace(/^\[|\]$/g, '');
  if (net.isIPv4(host)) return v4Reason(parseV4(host)!);
  const g = net.isIPv6(host.split('%')[0]) ? parseV6(host) : null;
  if (!g) return 'not an IP address';
  return v6Reason(g);
}

/** Whether `ip` is a loopback address: 127.0.0.0/8, ::1, or IPv4-mapped 127.x. */
export function isLoopbackAddress(ip: string): boolean {
  const host = ip.replace(/^\[|\]$/g, '');
  if (net.isIPv4(host)) return host.startsWith('127.');
  const g = net.isIPv6(host.split('%')[0]) ? parseV6(host) : null;
  if (!g) return false;
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return true;
  return g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff && g[6] >>> 8 === 127;
}
