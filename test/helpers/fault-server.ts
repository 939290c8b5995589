/**
 * A Pipit server for fault tests, run as a child process (`node --import tsx test/helpers/fault-server.ts`)
 * so the parent can SIGKILL it. Configuration from the environment (PIPIT_DATA_DIR, and
 * PIPIT_TEST_PAUSE_AT to stop an operation at a journal checkpoint). Before it listens it prints
 * what a consistency check of the started (recovered) data directory found:
 *
 *   PIPIT_CHECK {"intents":0,"orphans":[],"missing":[],"mismatched":[],"views":[]}
 *   PIPIT_READY <port> <admin token>
 *   PIPIT_PAUSED <checkpoint>            (when an operation reaches PIPIT_TEST_PAUSE_AT)
 */
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import type { Services } from '../../src/app.js';
import { quoteString } from '../../src/engine/engine.js';

export interface ConsistencyReport {
  /** Intents still open after start (recovery failed). */
  intents: number;
  /** Engine objects of workspace databases that no catalog record names. */
  orphans: string[];
  /** Objects the catalog names that the engine lacks. */
  missing: string[];
  /** Data sources whose engine table or quarantine columns differ from the catalog's schema. */
  mismatched: string[];
  /** Materialized nodes whose engine view is missing. */
  views: string[];
}

/** Catalog = engine, checked from the outside of the recovery code. */
export async function consistency(s: Services): Promise<ConsistencyReport> {
  const report: ConsistencyReport = { intents: (await s.catalog.listIntents()).length, orphans: [], missing: [], mismatched: [], views: [] };
  for (const ws of await s.catalog.listWorkspaces()) {
    const tables = new Set((await s.engine.rows<{ name: string }>(`SELECT name FROM system.tables WHERE database = ${quoteString(ws.database)}`)).map((r) => r.name));
    const expected = new Set<string>();
    for (const ds of await s.catalog.listDatasources(ws.id)) {
      const json = ds.format === 'ndjson';
      const names = [ds.id, `${ds.id}_quarantine`, `${ds.id}_sc`, `${ds.id}_sc_ok`, `${ds.id}_sc_bad`, ...(json ? [`${ds.id}_sj`, `${ds.id}_sj_ok`, `${ds.id}_sj_bad`] : [])];
      for (const n of names) {
        expected.add(n);
        if (!tables.has(n)) report.missing.push(`${ds.name}: ${n}`);
      }
      const cols = await s.engine.rows<{ table: string; name: string; type: string }>(
        `SELECT table, name, type FROM system.columns WHERE database = ${quoteString(ws.database)} AND table IN (${quoteString(ds.id)}, ${quoteString(`${ds.id}_quarantine`)}) ORDER BY table, position`,
      );
      const engineTable = cols.filter((c) => c.table === ds.id).map((c) => `${c.name} ${c.type}`).join(', ');
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
  return report;
}

async function main(): Promise<void> {
  const config = loadConfig(process.env, { port: 0, host: '127.0.0.1', logLevel: process.env.PIPIT_LOG_LEVEL || 'silent' });
  const app = await createApp(config);
  process.stdout.write(`PIPIT_CHECK ${JSON.stringify(await consistency(app.services))}\n`);
  await app.http.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.http.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.stdout.write(`PIPIT_READY ${port} ${app.services.localTokens.workspace_admin_token}\n`);
}

main().catch((err) => {
  process.stderr.write(`fault server failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
