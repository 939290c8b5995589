/**
 * A project on disk: the datafiles under the given paths, parsed (includes resolved against the
 * including file's folder, then the project root; `$VAR` from the environment), and their push
 * order (data sources, then pipes after what they read, then tokens).
 */
import fs from 'node:fs';
import path from 'node:path';
import { DatafileError, kindOf, parseDatafile, type DatafileWarning, type DatasourceFile, type PipeFile, type TokenFile } from '../datafile/index.js';

export interface Resource<T> {
  name: string;
  file: string;
  value: T;
}

export interface Project {
  root: string;
  datasources: Resource<DatasourceFile>[];
  pipes: Resource<PipeFile>[];
  tokens: Resource<TokenFile>[];
  warnings: DatafileWarning[];
}

const SKIP = new Set(['node_modules', '.git', '.pipit', '.tinyb', 'dist']);

export function listFiles(paths: string[], exts = /\.(datasource|pipe|token)$/i): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st) throw new DatafileError('No such file or folder', p, 0);
    if (st.isDirectory()) {
      for (const e of fs.readdirSync(p).sort()) if (!SKIP.has(e) && !e.startsWith('.')) walk(path.join(p, e));
    } else if (exts.test(p)) out.push(p);
  };
  for (const p of paths) walk(p);
  return [...new Set(out)];
}

export function loadProject(root: string, paths: string[], env: Record<string, string | undefined>): Project {
  const project: Project = { root, datasources: [], pipes: [], tokens: [], warnings: [] };
  const seen = new Map<string, string>();
  for (const abs of listFiles(paths.length ? paths : [root])) {
    const file = path.relative(process.cwd(), abs) || abs;
    const kind = kindOf(abs)!;
    const name = path.basename(abs).replace(/\.[^.]+$/, '');
    const key = `${kind === 'token' ? 'token' : 'resource'}:${name}`;
    if (seen.has(key)) throw new DatafileError(`"${name}" is defined twice (also in ${seen.get(key)})`, file, 0);
    seen.set(key, file);
    const readInclude = (p: string, from: string) => {
      const candidates = [path.resolve(path.dirname(from), p), path.resolve(root, p)];
      const found = candidates.find((c) => fs.existsSync(c));
      if (!found) throw new Error('no such file');
      return { file: path.relative(process.cwd(), found) || found, text: fs.readFileSync(found, 'utf8') };
    };
    const { value, warnings } = parseDatafile(fs.readFileSync(abs, 'utf8'), { file, env, readInclude });
    project.warnings.push(...warnings);
    if (value.kind === 'datasource') project.datasources.push({ name, file, value });
    else if (value.kind === 'pipe') project.pipes.push({ name, file, value });
    else if (value.kind === 'token') project.tokens.push({ name, file, value });
  }
  project.pipes = orderPipes(project);
  return project;
}

/** Names a pipe reads: project resources named as words in its SQL (its own nodes excluded). */
export function pipeDependencies(p: PipeFile, names: Set<string>): string[] {
  const own = new Set(p.nodes.map((n) => n.name));
  const deps = new Set<string>();
  for (const n of p.nodes) {
    for (const m of n.sql.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)) if (names.has(m[0]) && !own.has(m[0])) deps.add(m[0]);
    for (const t of [n.datasource, n.targetDatasource]) if (t && names.has(t)) deps.add(t);
  }
  return [...deps];
}

function orderPipes(project: Project): Resource<PipeFile>[] {
  const byName = new Map(project.pipes.map((p) => [p.name, p]));
  const names = new Set(byName.keys());
  const out: Resource<PipeFile>[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (p: Resource<PipeFile>, chain: string[]) => {
    if (state.get(p.name) === 'done') return;
    if (state.get(p.name) === 'visiting') throw new DatafileError(`The pipes read each other in a cycle: ${[...chain, p.name].join(' -> ')}`, p.file, 0);
    state.set(p.name, 'visiting');
    for (const d of pipeDependencies(p.value, names)) if (d !== p.name) visit(byName.get(d)!, [...chain, p.name]);
    state.set(p.name, 'done');
    out.push(p);
  };
  for (const p of project.pipes) visit(p, []);
  return out;
}
