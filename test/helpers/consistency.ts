/**
 * Catalog = engine, checked from outside the recovery code: used by the fault suite's child
 * server (test/helpers/fault-server.ts) and by in-process recovery tests.
 */
import type { Services } from '../../src/app.js';
import { quoteString } from '../../src/engine/engine.js';

export interface ConsistencyReport {
  /** Intents still open after start (recovery failed). */
  intents: number;
  /** Engine objects of workspace databases (and ingest stages, as `pipit_stages.<name>`) that no catalog record names. */
  orphans: string[];
  /** Objects the catalog names that the engine lacks (ingest stages: of a stage made only in part). */
  missing: string[];
  /** Data sources whose engine table or quarantine columns differ from the catalog's schema. */
  mismatched: string[];
  /** Materialized nodes whose engine view is missing. */
  views: string[];
}

/** Catalog = engine, checked from the outside of the recovery code. */
export async function consistency(s: Services): Promise<ConsistencyReport> {
  const report: ConsistencyReport = { intents: (await s.catalog.listIntents()).length, orphans: [], missing: [], mismatched: [], views: [] };
  // Each ingest stage is made at the first insert of a process through it: absent, or whole.
  const stages = new Set((await s.engine.rows<{ name: string }>(`SELECT name FROM system.tables WHERE database = 'pipit_stages'`)).map((r) => r.name));
  const expectedStages = new Set<string>();
  for (const ws of await s.catalog.listWorkspaces()) {
    const tables = new Set(
      (await s.engine.rows<{ name: string }>(`SELECT name FROM system.tables WHERE database = ${quoteString(ws.database)}`)).map((r) => r.name),
    );
    const expected = new Set<string>();
    for (const ds of await s.catalog.listDatasources(ws.id)) {
      const writable = ds.columns.filter((c) => !/^(MATERIALIZED|ALIAS|EPHEMERAL)\b/i.test(c.defaultValue ?? ''));
      const json = writable.length > 0 && writable.every((c) => c.jsonpath);
      for (const n of [ds.id, `${ds.id}_quarantine`]) {
        expected.add(n);
        if (!tables.has(n)) report.missing.push(`${ds.name}: ${n}`);
      }
      for (const stage of [`${ds.id}_sc`, ...(json ? [`${ds.id}_sj`] : [])]) {
        const stageNames = [stage, `${stage}_ok`, `${stage}_bad`];
        for (const n of stageNames) expectedStages.add(n);
        if (stageNames.some((n) => stages.has(n))) for (const n of stageNames) if (!stages.has(n)) report.missing.push(`${ds.name}: pipit_stages.${n}`);
      }
      const cols = await s.engine.rows<{ table: string; name: string; type: string }>(
        `SELECT table, name, type FROM system.columns WHERE database = ${quoteString(ws.database)} AND table IN (${quoteString(ds.id)}, ${quoteString(`${ds.id}_quarantine`)}) ORDER BY table, position`,
      );
      const engineTable = cols
        .filter((c) => c.table === ds.id)
        .map((c) => `${c.name} ${c.type}`)
        .join(', ');
      const catalogTable = ds.columns.map((c) => `${c.name} ${c.type}`).join(', ');
      if (engineTable !== catalogTable) report.mismatched.push(`${ds.name}: engine (${engineTable}) catalog (${catalogTable})`);
      const q = new Set(cols.filter((c) => c.table === `${ds.id}_quarantine`).map((c) => c.name));
      const qWant = new Set([...ds.columns.map((c) => c.name), 'c__error_column', 'c__error', 'c__import_id', 'insertion_date']);
      if (q.size !== qWant.size || [...qWant].some((n) => !q.has(n))) report.mismatched.push(`${ds.name}_quarantine: ${[...q].join(', ')}`);
    }
    for (const p of await s.catalog.listPipes(ws.id)) {
      for (const n of p.nodes) {
        if (n.nodeType !== 'materialized') continue;
        const view = String(n.data.view).split('.').pop()!;
        expected.add(view);
        if (!tables.has(view)) report.views.push(`${p.name}.${n.name}`);
      }
    }
    for (const t of tables) if (!expected.has(t)) report.orphans.push(t);
  }
  for (const t of stages) if (!expectedStages.has(t)) report.orphans.push(`pipit_stages.${t}`);
  return report;
}
