/**
 * The address table of url= imports: every special IPv4 range, every IPv6 form that embeds an
 * IPv4 address, and the host spellings the URL parser turns into them.
 */
import { describe, expect, it } from 'vitest';
import { blockedReason, isLoopbackAddress, parseV6 } from './address-policy.js';
import { checkUrl } from './routes/url-fetch.js';

const BLOCKED: Array<[string, RegExp]> = [
  // IPv4 special ranges
  ['0.0.0.0', /this network/],
  ['0.1.2.3', /this network/],
  ['10.0.0.1', /private/],
  ['10.255.255.255', /private/],
  ['100.64.0.1', /CGNAT/],
  ['100.127.255.254', /CGNAT/],
  ['127.0.0.1', /loopback/],
  ['127.255.0.9', /loopback/],
  ['169.254.169.254', /link-local/],
  ['172.16.0.1', /private/],
  ['172.31.255.255', /private/],
  ['192.0.0.8', /IETF/],
  ['192.0.2.1', /documentation/],
  ['192.88.99.1', /6to4 relay/],
  ['192.168.1.1', /private/],
  ['198.18.0.1', /benchmarking/],
  ['198.19.255.255', /benchmarking/],
  ['198.51.100.7', /documentation/],
  ['203.0.113.9', /documentation/],
  ['224.0.0.1', /multicast/],
  ['239.255.255.250', /multicast/],
  ['240.0.0.1', /reserved/],
  ['255.255.255.255', /reserved/],
  // IPv6
  ['::', /unspecified/],
  ['::1', /loopback/],
  ['[::1]', /loopback/],
  ['::ffff:127.0.0.1', /IPv4-mapped of 127\.0\.0\.1 \(loopback\)/],
  ['::ffff:7f00:1', /IPv4-mapped of 127\.0\.0\.1/],
  ['::ffff:10.1.2.3', /IPv4-mapped of 10\.1\.2\.3 \(private\)/],
  ['::ffff:a9fe:a9fe', /169\.254\.169\.254/],
  ['::127.0.0.1', /IPv4-compatible of 127\.0\.0\.1/],
  ['::10.0.0.1', /IPv4-compatible of 10\.0\.0\.1/],
  ['::8.8.8.8', /IPv4-compatible/], // deprecated form: refused even for a public address
  ['::ffff:0:127.0.0.1', /SIIT/],
  ['64:ff9b::127.0.0.1', /NAT64 of 127\.0\.0\.1/],
  ['64:ff9b::a9fe:a9fe', /NAT64 of 169\.254\.169\.254/],
  ['64:ff9b:1::1', /local-use NAT64/],
  ['2002:7f00:1::', /6to4 of 127\.0\.0\.1/],
  ['2002:c0a8:101::1', /6to4 of 192\.168\.1\.1/],
  ['2001:0:7f00:1::', /Teredo server of 127\.0\.0\.1/],
  ['2001:0:4136:e378:8000:63bf:f5ff:fffe', /Teredo client of 10\.0\.0\.1/], // client 10.0.0.1 stored inverted
  ['2001:db8::1', /documentation/],
  ['2001:2::1', /benchmarking/],
  ['2001:10::1', /ORCHID/],
  ['100::1', /discard/],
  ['fc00::1', /ULA/],
  ['fd12:3456:789a::1', /ULA/],
  ['fe80::1', /link-local/],
  ['fe80::1%eth0', /link-local/],
  ['febf::1', /link-local/],
  ['fec0::1', /site-local/],
  ['ff02::1', /multicast/],
  ['ff05::1:3', /multicast/],
  ['4000::1', /reserved/],
  // not an address at all
  ['localhost', /not an IP/],
  ['', /not an IP/],
];

const PUBLIC = [
  '8.8.8.8',
  '1.1.1.1',
  '100.63.255.255',
  '100.128.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '192.169.0.1',
  '198.17.255.255',
  '198.20.0.0',
  '223.255.255.255',
  '169.253.0.1',
  '2606:4700:4700::1111',
  '2001:4860:4860::8888',
  '::ffff:8.8.8.8',
  '64:ff9b::808:808',
  '2002:808:808::1',
  '2001:0:4136:e378:8000:63bf:f7f7:f7f7', // Teredo with public server 65.54.227.120 and client 8.8.8.8
];

describe('blockedReason', () => {
  it.each(BLOCKED)('%s is refused', (ip, why) => {
    expect(blockedReason(ip)).toMatch(why);
  });
  it.each(PUBLIC)('%s is public', (ip) => {
    expect(blockedReason(ip)).toBeNull();
  });
});

describe('parseV6', () => {
  it('expands :: and embedded IPv4', () => {
    expect(parseV6('::ffff:1.2.3.4')).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
    expect(parseV6('2001:db8::1')).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    expect(parseV6('1:2:3:4:5:6:7:8')).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(parseV6('1:2:3')).toBeNull();
    expect(parseV6('1::2::3')).toBeNull();
  });
});

describe('isLoopbackAddress', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1', '::ffff:7f00:2'])('%s is loopback', (ip) => expect(isLoopbackAddress(ip)).toBe(true));
  it.each(['10.0.0.1', '::', '::2', '::ffff:10.0.0.1', 'localhost', '', '0.0.0.0'])('%s is not', (ip) => expect(isLoopbackAddress(ip)).toBe(false));
});

describe('checkUrl: host spellings the URL parser turns into blocked addresses', () => {
  const spellings = [
    'http://2130706433/', // 127.0.0.1 as one decimal number
    'http://0x7f.1/', // hex first part, short form
    'http://0x7f000001/',
    'http://0177.0.0.1/', // octal
    'http://017700000001/',
    'http://127.1/',
    'http://0/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[0:0:0:0:0:ffff:127.0.0.1]/',
    'http://[::127.0.0.1]/',
    'http://[64:ff9b::7f00:1]/',
    'http://[2002:7f00:1::1]/',
    'http://[fd00::1]/',
    'http://[fe80::1]/',
    'http://[ff02::1]/',
    'http://100.64.0.1/',
    'http://198.18.0.1/',
    'http://224.0.0.251/',
    'http://255.255.255.255/',
    'http://169.254.169.254/latest/meta-data/',
    'https://localhost:8443/x.csv',
    'http://LOCALHOST./x.csv',
  ];
  it.each(spellings)('%s → 400 Invalid url', async (url) => {
    await expect(checkUrl(url, false)).rejects.toMatchObject({ code: 'bad_request', message: 'Invalid url' });
  });
  it('allowed when private urls are allowed (development)', async () => {
    await expect(checkUrl('http://2130706433/', true)).resolves.toBeInstanceOf(URL);
  });
  it('other schemes are refused', async () => {
    await expect(checkUrl('file:///etc/passwd', false)).rejects.toMatchObject({ message: /only http, and https/ });
    await expect(checkUrl('gopher://127.0.0.1/', true)).rejects.toMatchObject({ message: /only http, and https/ });
  });
});
