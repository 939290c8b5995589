/**
 * A published two-node endpoint with required and optional parameters, arrays, sql_and,
 * column(), conditional blocks and error(), called with many parameter combinations; every
 * answer is checked against rows computed here, in JSON, CSV, NDJSON and Parquet (read back
 * with an independent Parquet reader).
 */
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

let s: TestServer;

interface Row {
  day: string;
  country: string;
  product: string;
  units: number;
  price: number;
}
const rows: Row[] = [];
for (let i = 0; i < 60; i++) {
  rows.push({
    day: `2024-01-${String(1 + (i % 28)).padStart(2, '0')}`,
    country: ['ES', 'FR', 'US', 'DE'][i % 4],
    product: ['apple', 'pear', "o'range"][i % 3],
    units: (i * 7) % 23,
    price: Math.round(((i * 13) % 50) * 10) / 10 + 0.5,
  });
}

const FILTERED = `%
SELECT * FROM sales
WHERE day >= {{ Date(start_date, '2024-01-01') }}
  {% if defined(countries) or defined(min_units) or defined(max_units) %}
    AND {{ sql_and(country__in=Array(countries, 'String', defined=False), units__gte=Int32(min_units, defined=False), units__lt=Int32(max_units, defined=False)) }}
  {% end %}
  AND day <= {{ Date(end_date, '2024-01-31') }}
  AND price >= {{ Float64(min_price, description='required: no default') }}
  {% if defined(product) %} AND product = {{ String(product) }} {% end %}`;

const ENDPOINT = `%
{% if defined(limit) and Int32(limit, 10) > 1000 %}
  {{ error('limit is too large', 400) }}
{% end %}
SELECT {{ column(group_by, 'country') }} AS k, count() AS c, sum(units) AS u
FROM filtered
GROUP BY k
ORDER BY k
LIMIT {{ Int32(limit, 100) }}`;

interface Params {
  countries?: string[];
  min_units?: number;
  max_units?: number;
  start_date?: string;
  end_date?: string;
  min_price?: number;
  product?: string;
  group_by?: 'country' | 'product' | 'day';
  limit?: number;
}

function expected(p: Params): Array<{ k: string; c: number; u: number }> {
  const start = p.start_date ?? '2024-01-01';
  const end = p.end_date ?? '2024-01-31';
  const by = p.group_by ?? 'country';
  const groups = new Map<string, { c: number; u: number }>();
  for (const r of rows) {
    if (p.countries && !p.countries.includes(r.country)) continue;
    if (p.min_units !== undefined && r.units < p.min_units) continue;
    if (p.max_units !== undefined && r.units >= p.max_units) continue;
    if (r.day < start || r.day > end) continue;
    if (r.price < (p.min_price as number)) continue;
    if (p.product !== undefined && r.product !== p.product) continue;
    const k = String(r[by]);
    const g = groups.get(k) ?? { c: 0, u: 0 };
    g.c++;
    g.u += r.units;
    groups.set(k, g);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, p.limit ?? 100)
    .map(([k, g]) => ({ k, ...g }));
}

function query(p: Params): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) u.set(k, v.join(','));
    else u.set(k, String(v));
  }
  return u.toString();
}

beforeAll(async () => {
  s = await startServer();
  const schema =
    'day Date `json:$.day`, country LowCardinality(String) `json:$.country`, product String `json:$.product`, units Int32 `json:$.units`, price Float64 `json:$.price`';
  let r = await s.req('POST', '/v0/datasources?name=sales&mode=create', { body: new URLSearchParams({ schema }) });
  expect(r.status).toBe(200);
  r = await s.req('POST', '/v0/events?name=sales&wait=true', { body: rows.map((x) => JSON.stringify(x)).join('\n') });
  expect(await r.json()).toEqual({ successful_rows: rows.length, quarantined_rows: 0 });
  const pipe = {
    name: 'sales_api',
    nodes: [
      { name: 'filtered', sql: FILTERED },
      { name: 'endpoint', sql: ENDPOINT, type: 'endpoint' },
    ],
  };
  r = await s.req('POST', '/v0/pipes', { body: JSON.stringify(pipe), headers: { 'content-type': 'application/json' } });
  expect(r.status, await r.clone().text()).toBe(200);
}, 60_000);

afterAll(async () => {
  await s?.close();
});

const combos: Params[] = [
  { min_price: 0 },
  { min_price: 10 },
  { min_price: 25.5 },
  { min_price: 0, countries: ['ES'] },
  { min_price: 0, countries: ['ES', 'US'] },
  { min_price: 0, countries: ['FR', 'DE', 'XX'] },
  { min_price: 0, min_units: 10 },
  { min_price: 0, max_units: 5 },
  { min_price: 0, min_units: 3, max_units: 15 },
  { min_price: 5, start_date: '2024-01-10' },
  { min_price: 5, end_date: '2024-01-05' },
  { min_price: 0, start_date: '2024-01-07', end_date: '2024-01-14' },
  { min_price: 0, product: 'apple' },
  { min_price: 0, product: "o'range" },
  { min_price: 0, product: 'nothing' },
  { min_price: 0, group_by: 'product' },
  { min_price: 0, group_by: 'day', limit: 5 },
  { min_price: 0, limit: 2 },
  { min_price: 12, countries: ['US'], group_by: 'product', min_units: 2 },
  { min_price: 0, countries: ['ES', 'FR'], product: 'pear', group_by: 'day' },
  { min_price: 1, max_units: 20, start_date: '2024-01-03', end_date: '2024-01-25', group_by: 'product', limit: 1 },
  { min_price: 0, countries: ['DE'], min_units: 22 },
];

describe('parameter combinations', () => {
  for (const [i, p] of combos.entries()) {
    it(`#${i} ${query(p)}`, async () => {
      const want = expected(p);
      const qs = query(p);
      // JSON
      const j = await (await s.req('GET', `/v0/pipes/sales_api.json?${qs}`)).json();
      expect(j.data).toEqual(want);
      expect(j.rows).toBe(want.length);
      // CSV (with header)
      const csv = await (await s.req('GET', `/v0/pipes/sales_api.csv?${qs}`)).text();
      expect(csv).toBe(['"k","c","u"', ...want.map((w) => `"${w.k.replace(/"/g, '""')}",${w.c},${w.u}`)].join('\n') + '\n');
      // NDJSON
      const nd = await (await s.req('GET', `/v0/pipes/sales_api.ndjson?${qs}`)).text();
      expect(
        nd
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      ).toEqual(want);
      // Parquet, read back independently
      const buf = await (await s.req('GET', `/v0/pipes/sales_api.parquet?${qs}&output_format_parquet_string_as_string=1`)).arrayBuffer();
      const objs = await parquetReadObjects({ file: buf, compressors });
      expect(objs.map((o) => ({ k: o.k instanceof Date ? o.k.toISOString().slice(0, 10) : String(o.k), c: Number(o.c), u: Number(o.u) }))).toEqual(want);
    });
  }

  it('POST with a JSON body takes arrays as lists', async () => {
    const r = await s.req('POST', '/v0/pipes/sales_api.json', {
      body: JSON.stringify({ min_price: 0, countries: ['ES', 'DE'] }),
      headers: { 'content-type': 'application/json' },
    });
    expect((await r.json()).data).toEqual(expected({ min_price: 0, countries: ['ES', 'DE'] }));
  });

  it('repeated keys are an array', async () => {
    const r = await s.req('GET', '/v0/pipes/sales_api.json?min_price=0&countries=US&countries=FR');
    expect((await r.json()).data).toEqual(expected({ min_price: 0, countries: ['US', 'FR'] }));
  });
});

describe('parameter errors', () => {
  it('a required parameter that is missing', async () => {
    const r = await s.req('GET', '/v0/pipes/sales_api.json');
    expect(r.status).toBe(400);
    const body = await r.json();
    expect(body.error).toMatch(/^Template Syntax Error: Required parameter is not defined/);
    expect(body.error).toContain('min_price');
  });

  it('values that do not validate', async () => {
    let r = await s.req('GET', '/v0/pipes/sales_api.json?min_price=0&limit=abc');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe("Template Syntax Error: Error validating 'abc' to type Int32");
    r = await s.req('GET', '/v0/pipes/sales_api.json?min_price=0&start_date=yesterday');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/Error validating 'yesterday' to type Date/);
  });

  it('error() in a conditional block', async () => {
    const r = await s.req('GET', '/v0/pipes/sales_api.json?min_price=0&limit=5000');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toBe('limit is too large');
  });

  it('a hostile value stays a value', async () => {
    const r = await s.req('GET', `/v0/pipes/sales_api.json?min_price=0&product=${encodeURIComponent("x' OR 1=1 --")}`);
    expect(r.status).toBe(200);
    expect((await r.json()).data).toEqual([]);
  });

  it('column() with a column that does not exist is a 400 naming it', async () => {
    const r = await s.req('GET', '/v0/pipes/sales_api.json?min_price=0&group_by=nope');
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/nope/);
  });
});
