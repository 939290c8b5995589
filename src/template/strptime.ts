/**
 * Python's datetime.strptime for the directives templates use with date_diff_* (%Y %m %d %H %M %S
 * %f %y %j %b %B %a %A %p %I %z %Z %%). Literal characters match case-insensitively and whitespace in
 * the format matches any run of whitespace, as in CPython. Returns seconds since the epoch (UTC).
 */

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const DIRECTIVES: Record<string, string> = {
  Y: '(?<Y>\\d\\d\\d\\d)',
  m: '(?<m>1[0-2]|0[1-9]|[1-9])',
  d: '(?<d>3[01]|[12]\\d|0[1-9]|[1-9]| [1-9])',
  H: '(?<H>2[0-3]|[0-1]\\d|\\d)',
  M: '(?<M>[0-5]\\d|\\d)',
  S: '(?<S>6[0-1]|[0-5]\\d|\\d)',
  f: '(?<f>[0-9]{1,6})',
  y: '(?<y>\\d\\d)',
  j: '(?<j>36[0-6]|3[0-5]\\d|[12]\\d\\d|0[1-9]\\d|00[1-9]|[1-9]\\d|0[1-9]|[1-9])',
  b: `(?<b>${MONTHS.map((m) => m.slice(0, 3)).join('|')})`,
  B: `(?<B>${MONTHS.join('|')})`,
  a: `(?<a>${DAYS.map((d) => d.slice(0, 3)).join('|')})`,
  A: `(?<A>${DAYS.join('|')})`,
  p: '(?<p>am|pm)',
  I: '(?<I>1[0-2]|0[1-9]|[1-9])',
  z: '(?<z>[+-]\\d\\d:?[0-5]\\d(:?[0-5]\\d(\\.\\d{1,6})?)?|Z)',
  Z: '(?<Z>utc|gmt)',
  '%': '%',
};

const cache = new Map<string, RegExp>();

function compile(format: string): RegExp {
  let re = cache.get(format);
  if (re) return re;
  let src = '';
  const seen = new Set<string>();
  for (let i = 0; i < format.length; i++) {
    const c = format[i];
    if (c === '%') {
      const d = format[++i];
      if (d === undefined) throw new Error("stray % in format '" + format + "'");
      const pat = DIRECTIVES[d];
      if (pat === undefined) throw new Error(`'${d}' is a bad directive in format '${format}'`);
      if (d !== '%' && seen.has(d)) src += `(?:${pat.replace(/\(\?<\w+>/, '(?:')})`;
      else src += pat;
      seen.add(d);
    } else if (/\s/.test(c)) {
      while (i + 1 < format.length && /\s/.test(format[i + 1])) i++;
      src += '\\s+';
    } else src += escapeRe(c);
  }
  re = new RegExp('^(?:' + src + ')$', 'i');
  if (cache.size > 200) cache.clear();
  cache.set(format, re);
  return re;
}

/** Parses `s` with `format`; returns microseconds since 1970-01-01 UTC and whether it has a timezone. */
export function strptime(s: string, format: string): { us: bigint; aware: boolean } {
  // dates are short; bounding both keeps the backtracking of the matcher small
  if (format.length > 64 || s.length > 64 || (format.match(/%/g) ?? []).length > 12) throw new Error('date or format too long');
  const m = compile(format).exec(s);
  if (!m) throw new Error(`time data '${s}' does not match format '${format}'`);
  const g = m.groups ?? {};
  let year = 1900;
  let month = 1;
  let day = 1;
  let hour = 0;
  if (g.Y !== undefined) year = Number(g.Y);
  else if (g.y !== undefined) {
    const y = Number(g.y);
    year = y <= 68 ? 2000 + y : 1900 + y;
  }
  if (g.m !== undefined) month = Number(g.m);
  else if (g.b !== undefined) month = MONTHS.findIndex((x) => x.startsWith(g.b.toLowerCase())) + 1;
  else if (g.B !== undefined) month = MONTHS.indexOf(g.B.toLowerCase()) + 1;
  if (g.d !== undefined) day = Number(g.d.trim());
  if (g.H !== undefined) hour = Number(g.H);
  else if (g.I !== undefined) {
    hour = Number(g.I) % 12;
    if (g.p && g.p.toLowerCase() === 'pm') hour += 12;
  }
  const minute = g.M !== undefined ? Number(g.M) : 0;
  const second = g.S !== undefined ? Number(g.S) : 0;
  if (second > 59) throw new Error('second must be in 0..59');
  const micro = g.f !== undefined ? Number(g.f.padEnd(6, '0')) : 0;
  if (g.j !== undefined && g.m === undefined && g.d === undefined) {
    const base = Date.UTC(2000, 0, 1);
    const dt = new Date(base + (Number(g.j) - 1) * 86400000);
    month = dt.getUTCMonth() + 1;
    day = dt.getUTCDate();
  }
  const dim = new Date(Date.UTC(2000, month, 0)).getUTCDate();
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const maxDay = month === 2 ? (leap ? 29 : 28) : dim;
  if (month < 1 || month > 12) throw new Error('month must be in 1..12');
  if (day < 1 || day > maxDay) throw new Error('day is out of range for month');
  if (year < 1) throw new Error('year 0 is out of range');
  const d = new Date(Date.UTC(2000, month - 1, day, hour, minute, second));
  d.setUTCFullYear(year);
  let t = BigInt(d.getTime()) * 1000n + BigInt(micro);
  const aware = g.z !== undefined;
  if (g.z !== undefined && g.z.toUpperCase() !== 'Z') {
    const zm = /^([+-])(\d\d):?(\d\d)(?::?(\d\d))?/.exec(g.z)!;
    const off = (Number(zm[2]) * 3600 + Number(zm[3]) * 60 + Number(zm[4] ?? 0)) * (zm[1] === '-' ? -1 : 1);
    t -= BigInt(off) * 1_000_000n;
  }
  return { us: t, aware };
}
