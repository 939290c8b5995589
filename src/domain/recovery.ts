/**
 * Start-up repair after a crash (`kill -9`, power loss, full disk), run once by createApp before
 * the server takes requests, the WAL is replayed or the scheduler runs:
 *
 * 1. **Intents** (src/domain/journal.ts): every change a previous process left half-done is rolled
 *    forward or back by the service that owns it, oldest first; the job that ran it is settled
 *    (`done` when it was finished here, an error saying nothing was written when it was undone).
 * 2. **Orphan sweep**: in each workspace database, engine objects named like Pipit's
 *    (`t_<32 hex>` with an optional suffix: tables, quarantine, materialized views, shadow and
 *    staging tables, and ingest stages of the layout before STAGES_DATABASE) that no catalog
 *    record names are dropped, views first; so are the ingest stages (in STAGES_DATABASE) of data
 *    sources that no longer exist. Objects with other names are only reported; the catalog's are
 *    never touched.
 * 3. **Missing objects**: a data source whose quarantine table is missing gets it back (it holds no
 *    data of its own); a missing table is re-created empty and logged as an error, so the data
 *    source works again instead of failing every request. The ingest stages are not checked here:
 *    the first insert of the process makes what is missing or out of date
 *    (DatasourceService.ensureStage), so a start makes none of them.
 *
 * An intent whose recovery fails stays (tried again at the next start, or once its lease lapses
 * with a shared catalog), and the objects it names are kept. With a shared catalog a starting copy
 * takes over only the intents whose copy is gone (lease lapsed) and keeps the objects of the
 * others; the live copies also settle a dead copy's intents while they run (`keepIntents`).
 */
import type { IntentRecord, Workspace } from '../catalog/catalog.js';
import { name, sql, trusted } from '../engine/sql.js';
import { createQuarantineSql, createTableSql, physicalNames, STAGES_DATABASE } from '../ingest/physical.js';
import type { Catalog } from '../catalog/catalog.js';
import type { Config } from '../config/config.js';
import type { Engine } from '../engine/engine.js';
import type { AlterService } from './alter-service.js';
import type { DatasourceService } from './datasource-service.js';
import type { MaterializeService } from './materialize-service.js';
import type { PipeService } from './pipe-service.js';
import { recoverAppend, recoverReplace } from './atomic-writes.js';
import type { JobService } from '../jobs/job-service.js';

export interface RecoveryLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RecoveryReport {
  forward: string[];
  back: string[];
  failed: string[];
  dropped: string[];
  repaired: string[];
}

/** Engine object names Pipit creates in a workspace database. */
const PIPIT_NAME = /^t_[0-9a-f]{32}(_[a-z_]+)?$/;
/** Names of ingest stage objects in STAGES_DATABASE: the data source id, then the stage. */
const STAGE_NAME = /^(t_[0-9a-f]{32})_s[jc](_ok|_bad)?$/;

/** What recovery reads and changes. */
export interface RecoveryServices {
  config: Pick<Config, 'testPauseAt'>;
  engine: Engine;
  catalog: Catalog;
  datasources: DatasourceService;
  pipes: PipeService;
  alters: AlterService;
  materializations: MaterializeService;
  jobs: Pick<JobService, 'settleRecovered'>;
}

export async function recoverAfterCrash(s: RecoveryServices, log: RecoveryLog): Promise<RecoveryReport> {
  const report: RecoveryReport = { forward: [], back: [], failed: [], dropped: [], repaired: [] };
  const journal = s.datasources.journal;
  journal.pauseAt = s.config.testPauseAt;
  const workspaces = new Map((await s.catalog.listWorkspaces()).map((w) => [w.id, w]));

  // 1. Intents, oldest first: every one on a single-process catalog, else those whose copy is gone.
  await recoverIntents(s, log, !s.catalog.shared, report);
  // What the intents still open name is kept: changes other copies are making, or that failed to recover.
  const kept = new Set<string>();
  for (const intent of await journal.list()) for (const v of Object.values(intent.data)) if (typeof v === 'string') kept.add(v.slice(v.indexOf('.') + 1));

  // Listed before the catalog's records: a stage made meanwhile belongs to a record listed below.
  const stageObjects = await s.engine.rows<{ name: string; engine: string }>(
    sql`SELECT name, engine FROM system.tables WHERE database = ${STAGES_DATABASE}`.text,
  );
  const datasourceIds = new Set(kept);

  // 2 and 3, per workspace database.
  for (const ws of workspaces.values()) {
    const datasources = await s.datasources.list(ws);
    for (const ds of datasources) datasourceIds.add(ds.id);
    const objects = await s.engine.rows<{ name: string; engine: string }>(sql`SELECT name, engine FROM system.tables WHERE database = ${ws.database}`.text);
    if (!objects.length) continue;
    const present = new Set(objects.map((o) => o.name));
    const named = new Set(kept);
    for (const ds of datasources) for (const suffix of ['', '_quarantine']) named.add(ds.id + suffix);
    for (const pipe of await s.pipes.list(ws)) {
      for (const node of pipe.nodes) {
        if (node.nodeType === 'materialized') {
          const view = node.data.view;
          named.add(view.slice(view.indexOf('.') + 1));
          if (!present.has(view.slice(view.indexOf('.') + 1)))
            log.error({ pipe: pipe.name, node: node.name }, 'the materialized view of a node is missing in the engine');
        }
      }
    }
    const orphans = objects.filter((o) => !named.has(o.name));
    for (const o of orphans.filter((x) => !PIPIT_NAME.test(x.name)))
      log.warn({ database: ws.database, name: o.name }, 'engine object not made by Pipit left in place');
    const pipit = orphans.filter((o) => PIPIT_NAME.test(o.name));
    for (const o of await dropOrphans(s.engine, ws.database, pipit, log)) {
      report.dropped.push(`${ws.database}.${o}`);
      present.delete(o);
    }

    for (const ds of datasources) {
      const n = physicalNames(ws.database, ds.id);
      try {
        if (!present.has(ds.id)) {
          log.error({ datasource: ds.name, id: ds.id }, 'the table of a data source was missing in the engine: re-created empty');
          await s.engine.exec(createTableSql(ds, ws.database));
          report.repaired.push(n.table);
        }
        if (!present.has(`${ds.id}_quarantine`)) {
          await s.engine.exec(createQuarantineSql(ds, ws.database));
          report.repaired.push(n.quarantine);
        }
      } catch (err) {
        log.error({ err, datasource: ds.name }, 'could not repair the engine objects of a data source');
      }
    }
  }
  // The ingest stages of data sources that are gone (a crash between a drop's catalog and engine steps).
  const stageOrphans = stageObjects.filter((o) => {
    const id = STAGE_NAME.exec(o.name)?.[1];
    if (!id) log.warn({ database: STAGES_DATABASE, name: o.name }, 'engine object not made by Pipit left in place');
    return id && !datasourceIds.has(id);
  });
  for (const o of await dropOrphans(s.engine, STAGES_DATABASE, stageOrphans, log)) report.dropped.push(`${STAGES_DATABASE}.${o}`);
  if (report.repaired.length) log.warn({ repaired: report.repaired }, 're-created missing engine objects');
  return report;
}

/** Drops engine objects of a database, views first (a table is only dropped once nothing writes into it); returns the names dropped. */
async function dropOrphans(engine: Engine, database: string, objects: { name: string; engine: string }[], log: RecoveryLog): Promise<string[]> {
  const dropped: string[] = [];
  const sorted = [...objects].sort((a, b) => Number(/View/.test(b.engine)) - Number(/View/.test(a.engine)));
  for (const o of sorted) {
    const kind = /View/.test(o.engine) ? 'VIEW' : 'TABLE';
    try {
      await engine.exec(sql`DROP ${trusted(kind)} IF EXISTS ${name(database, o.name)} SYNC`.text);
      dropped.push(o.name);
    } catch (err) {
      log.error({ err, name: o.name }, 'could not drop an orphan engine object');
    }
  }
  if (dropped.length) log.warn({ database, dropped }, 'dropped engine objects no catalog record names');
  return dropped;
}

/**
 * Rolls forward or back the intents this copy takes over (`Journal.claimAbandoned`), oldest first,
 * and settles their jobs. One that fails is released: it is tried again once its lease lapses.
 */
export async function recoverIntents(s: RecoveryServices, log: RecoveryLog, all: boolean, report?: RecoveryReport): Promise<void> {
  const journal = s.datasources.journal;
  const claimed = await journal.claimAbandoned(all);
  if (!claimed.length) return;
  const workspaces = new Map((await s.catalog.listWorkspaces()).map((w) => [w.id, w]));
  for (const intent of claimed) {
    const ws = workspaces.get(intent.workspaceId);
    const what = `${intent.kind} ${intent.id}`;
    try {
      if (!ws) {
        await journal.end(intent);
        continue;
      }
      const outcome = await recoverIntent(s, ws, intent);
      report?.[outcome].push(what);
      if (typeof intent.data.job === 'string') await s.jobs.settleRecovered(intent.data.job, outcome);
      log.warn({ intent: intent.id, kind: intent.kind, outcome, data: summary(intent) }, `recovered an interrupted ${intent.kind} (rolled ${outcome})`);
    } catch (err) {
      journal.release(intent);
      report?.failed.push(what);
      log.error({ err, intent: intent.id, kind: intent.kind }, `could not recover an interrupted ${intent.kind}; it is tried again later`);
    }
  }
}

/**
 * With a shared catalog, while the copy runs: renews the leases of the intents it holds and
 * recovers those of copies that died (lease lapsed), every `everyMs`. Returns the stop function.
 */
export function keepIntents(s: RecoveryServices, log: RecoveryLog, everyMs: number): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<void> | undefined;
  const tick = () => {
    pass = (async () => {
      try {
        await s.datasources.journal.renew();
        await recoverIntents(s, log, false);
      } catch (err) {
        log.error({ err }, 'renewing or recovering intents failed');
      }
    })().finally(() => {
      if (!stopped) {
        timer = setTimeout(tick, everyMs);
        timer.unref();
      }
    });
  };
  timer = setTimeout(tick, everyMs);
  timer.unref();
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await pass;
  };
}

async function recoverIntent(s: RecoveryServices, ws: Workspace, intent: IntentRecord): Promise<'forward' | 'back'> {
  const journal = s.datasources.journal;
  switch (intent.kind) {
    case 'append':
      return recoverAppend(s.engine, journal, intent);
    case 'replace': {
      const outcome = await recoverReplace(s.engine, journal, intent);
      const ds = await s.datasources.find(ws, intent.data.target);
      if (outcome === 'forward' && ds) await s.datasources.touch(ws, ds);
      return outcome;
    }
    case 'alter':
      return s.alters.recover(ws, intent);
    case 'materialize':
      await s.materializations.recoverMaterialize(ws, intent);
      return 'back';
    case 'unlink':
      await s.materializations.recoverUnlink(ws, intent);
      return 'forward';
  }
}

function summary(intent: IntentRecord): Record<string, unknown> {
  if (intent.kind !== 'alter') return { ...intent.data };
  const { before: _b, after: _a, ...rest } = intent.data;
  return rest;
}
