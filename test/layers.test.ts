/**
 * The layering rule of docs/architecture.md, checked over the import and re-export statements of
 * src/ (type-only imports count: they are knowledge of another layer too; Biome's formatting keeps
 * every statement at the start of a line and ending with a semicolon). Each top-level folder of src/ is a unit
 * (app.ts is the composition root, main.ts the process): imports point down LAYERS (which docs/architecture.md
 * shows), so there is no cycle between units; `basics` imports nothing else from src/; only `http`
 * (and the root, which hands it the Fastify instance) imports Fastify. A failure names the import lines.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../src');

/** Top-level units of src/, highest first; a unit imports only units of lower rows. */
const LAYERS = [
  ['main', 'cli'],
  ['app'],
  ['http'],
  ['domain'],
  ['ingest', 'jobs', 'datafile', 'observability'],
  ['catalog'],
  ['schema'],
  ['sql', 'config'],
  ['engine', 'template'],
  ['basics'],
];
const rank = (unit: string) => LAYERS.findIndex((row) => row.includes(unit));

interface Import {
  from: string;
  to: string;
  file: string;
  spec: string;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** The unit of a file: its top-level folder, or `app`/`main` for the root files. */
const unitOf = (file: string) =>
  path
    .relative(SRC, file)
    .split(path.sep)[0]
    .replace(/\.(ts|js)$/, '');

function imports(): Import[] {
  const out: Import[] = [];
  for (const file of sourceFiles(SRC)) {
    const text = fs.readFileSync(file, 'utf8');
    const specs = [...text.matchAll(/^(?:import|export)\b[^;]*?(?:from\s+)?'([^']+)';/gms), ...text.matchAll(/\bimport\('([^']+)'\)/g)].map((m) => m[1]);
    for (const spec of specs) {
      const from = unitOf(file);
      if (!spec.startsWith('.')) {
        out.push({ from, to: `npm:${spec}`, file: path.relative(SRC, file), spec });
        continue;
      }
      const target = path.resolve(path.dirname(file), spec);
      if (!target.startsWith(SRC + path.sep)) continue;
      out.push({ from, to: unitOf(target), file: path.relative(SRC, file), spec });
    }
  }
  return out;
}

/** Unit cycles: each strongly connected component of more than one unit (Tarjan). */
function cycles(edges: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) visit(v);
  return out;
}

describe('layering of src/ (docs/architecture.md)', () => {
  const all = imports();
  const local = all.filter((i) => !i.to.startsWith('npm:') && i.from !== i.to);

  it('reads the imports it checks', () => {
    expect(local.some((i) => i.from === 'http' && i.to === 'domain')).toBe(true);
    expect(
      cycles(
        new Map([
          ['a', new Set(['b'])],
          ['b', new Set(['a'])],
        ]),
      ),
    ).toEqual([['a', 'b']]);
  });

  it('has no cycle between top-level folders', () => {
    const edges = new Map<string, Set<string>>();
    for (const i of local) edges.set(i.from, (edges.get(i.from) ?? new Set()).add(i.to));
    const found = cycles(edges).map((scc) => {
      const lines = local.filter((i) => scc.includes(i.from) && scc.includes(i.to)).map((i) => `  ${i.file} imports ${i.spec}`);
      return `cycle between ${scc.join(', ')}:\n${lines.join('\n')}`;
    });
    expect(found.join('\n')).toBe('');
  });

  it('every import points down the layers', () => {
    const units = new Set(local.flatMap((i) => [i.from, i.to]));
    expect([...units].filter((u) => rank(u) < 0).map((u) => `src/${u} is in no layer: add it to LAYERS here and in docs/architecture.md`)).toEqual([]);
    expect(local.filter((i) => rank(i.to) <= rank(i.from)).map((i) => `${i.file} imports ${i.spec} (${i.from} may not import ${i.to})`)).toEqual([]);
  });

  it('basics import nothing else from src/', () => {
    expect(local.filter((i) => i.from === 'basics').map((i) => `${i.file} imports ${i.spec}`)).toEqual([]);
  });

  it('only http (and the root that hands Fastify to it) imports Fastify', () => {
    const fastify = all.filter((i) => /^npm:(fastify|@fastify\/)/.test(i.to) && i.from !== 'http' && i.from !== 'app');
    expect(fastify.map((i) => `${i.file} imports ${i.spec}`)).toEqual([]);
  });
});
