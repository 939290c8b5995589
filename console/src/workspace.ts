/** What the console knows about the workspace: data sources and pipes, for lists and completion. */
import { api } from './api';
import type { CompletionSchema } from './editor';

export interface Column {
  name: string;
  type: string;
  nullable?: boolean;
  default_value?: string | null;
  jsonpath?: string | null;
}

export interface Datasource {
  id: string;
  name: string;
  type: string;
  created_at: string;
  updated_at: string;
  description?: string;
  columns?: Column[];
  schema?: { columns: Column[]; sql_schema: string };
  statistics?: { bytes: number | null; row_count: number | null };
  engine?: Record<string, string>;
  quarantine_rows?: number;
  used_by?: Array<{ id: string; name: string }>;
}

export interface PipeNode {
  id: string;
  name: string;
  sql: string;
  description?: string | null;
  node_type: string;
  materialized?: string | null;
  dependencies?: string[];
  params?: Array<{ name: string; type: string; default?: unknown; required?: boolean; description?: string }>;
  mode?: string;
}

export interface Pipe {
  id: string;
  name: string;
  description?: string | null;
  type: string;
  endpoint: string | null;
  created_at: string;
  updated_at: string;
  url?: string;
  nodes: PipeNode[];
  copy_target_datasource?: string;
  schedule?: { cron?: string; status?: string };
}

export async function listDatasources(): Promise<Datasource[]> {
  return (
    await api<{ datasources: Datasource[] }>('GET', '/v0/datasources', {
      query: { attrs: 'id,name,type,created_at,updated_at,columns,statistics,quarantine_rows,description' },
    })
  ).datasources;
}

export async function listPipes(): Promise<Pipe[]> {
  return (await api<{ pipes: Pipe[] }>('GET', '/v0/pipes')).pipes;
}

/** Names (and columns, where known) for the editor's completion. */
export async function completionSchema(extra: Record<string, string[]> = {}): Promise<CompletionSchema> {
  const tables: Record<string, string[]> = {};
  const [ds, pipes] = await Promise.all([listDatasources().catch(() => []), listPipes().catch(() => [])]);
  for (const d of ds) {
    const cols = (d.columns ?? []).map((c) => c.name);
    tables[d.name] = cols;
    tables[`${d.name}_quarantine`] = [...cols, 'c__error_column', 'c__error', 'c__import_id', 'insertion_date'];
  }
  for (const p of pipes) tables[p.name] ??= [];
  return { tables: { ...tables, ...extra } };
}
