/**
 * Data Sources: the catalog record, the engine objects behind it (table, quarantine, ingest
 * stages), and every lifecycle operation. Names are checked here; engine DDL runs before the
 * catalog commit and is undone if either fails, so a change is applied whole or not at all.
 * Each ingest stage is made when a process first inserts through it (ensureStage).
 */
import { NO_OPS_LOG, type OpsLog } from '../observability/observability.js';
import { checkTtlKeepsNewRows } from './ttl-check.js';
import { type Catalog, type DatasourceRecord, newNamedRecord, UniqueViolation, type Workspace } from '../catalog/catalog.js';
import type { Engine } from '../engine/engine.js';
import { EngineError } from '../engine/engine.js';
import { ident, name, sql, trusted } from '../engine/sql.js';
import {
  createQuarantineSql,
  createTableSql,
  createTablesSql,
  dropAllSql,
  dropStagesSql,
  physicalNames,
  type StageDdl,
  type StageKind,
  STAGES_DATABASE,
  stageObjectNames,
  stagesDdl,
  userFacingNames,
} from '../ingest/physical.js';
import { isJsonSchema, validateResourceName } from '../schema/index.js';
import type { Column, EngineSpec, IndexSpec } from '../basics/types.js';
import { isDiskFull } from '../basics/disk.js';
import { badRequest, conflict, notFound } from '../basics/errors.js';
import { byNameOrId } from '../basics/ids.js';
import { nowIso } from '../basics/time.js';
import { Journal } from './journal.js';
import { WorkspaceCache } from '../catalog/workspace-cache.js';

export interface NewDatasource {
  name: string;
  columns: Column[];
  engine: EngineSpec;
  indexes: IndexSpec[];
  description: string;
}

/** What the start-up repair of the engine found (EmbeddedEngine.lost, EmbeddedEngine.dataUuid). */
export interface EngineDamage {
  /** Tables whose metadata was set aside. */
  lost: ReadonlyArray<{ database: string; table: string; uuid: string | null }>;
  /** The UUID of a table's data directory, still known after its metadata is gone. */
  dataUuid(database: string, table: string): string | null;
}

export interface DatasourceStats {
  rowCount: number | null;
  bytes: number | null;
}

export class DatasourceService {
  /** workspace id → (id → record); the catalog is the truth, this is its cache (coherent across copies). */
  private readonly cache: WorkspaceCache<Map<string, DatasourceRecord>>;

  /** Intents of multi-step changes (every service that changes engine and catalog state uses it). */
  readonly journal: Journal;

  /** Stage table name → the stage this process made or found whole in the engine, by definition version (ensureStage). */
  private readonly stages = new Map<string, { version: string; ready: Promise<void> }>();
  /** Data source id → the last change of its stages: ensures and rebuilds of one data source run one at a time. */
  private readonly stageChanges = new Map<string, Promise<unknown>>();
  private stagesDatabase: Promise<void> | null = null;
  private readonly stagesDdlOf = new WeakMap<DatasourceRecord, StageDdl[]>();

  constructor(
    private readonly catalog: Catalog,
    private readonly engine: Engine,
    /** Where operations on data sources are recorded (tinybird.datasources_ops_log); imports and alters report here too. */
    readonly ops: OpsLog = NO_OPS_LOG,
  ) {
    this.journal = new Journal(catalog);
    this.cache = new WorkspaceCache(catalog, ['datasources'], async (wsId) => new Map((await catalog.listDatasources(wsId)).map((d) => [d.id, d])));
  }

  private async refusePipeName(ws: Workspace, name: string, status: 'bad_request' | 'conflict'): Promise<void> {
    // Pipes and data sources share one namespace; the catalog is asked, not another service's cache.
    if (!(await this.catalog.listPipes(ws.id)).some((p) => p.name === name)) return;
    const msg = `A Pipe with the "${name}" name exists, Pipe and Data Source names are unique`;
    throw status === 'conflict' ? conflict(msg) : badRequest(msg);
  }

  /** Calls `listener` when a workspace's records change (null: every workspace's), see WorkspaceCache.onChange. */
  onChange(listener: (workspaceId: string | null) => void): void {
    this.cache.onChange(listener);
  }

  private async byId(ws: Workspace): Promise<Map<string, DatasourceRecord>> {
    return this.cache.get(ws.id);
  }

  /** Name of a data source by id, from the cache of any workspace (for error messages). */
  nameOfId(id: string): string | undefined {
    for (const m of this.cache.loaded()) {
      const d = m.get(id);
      if (d) return d.name;
    }
    return undefined;
  }

  async list(ws: Workspace): Promise<DatasourceRecord[]> {
    return [...(await this.byId(ws)).values()];
  }

  /** By name or id (also decorated ids); null when absent. */
  async find(ws: Workspace, nameOrId: string): Promise<DatasourceRecord | null> {
    return this.cache.find(ws.id, (m) => byNameOrId(m, nameOrId));
  }

  async get(ws: Workspace, nameOrId: string): Promise<DatasourceRecord> {
    const ds = await this.find(ws, nameOrId);
    if (!ds) throw notFound(`Data Source "${nameOrId}" does not exist`);
    return ds;
  }

  async ensureDatabase(ws: Workspace): Promise<void> {
    await this.engine.exec(sql`CREATE DATABASE IF NOT EXISTS ${ident(ws.database)}`.text);
  }

  /**
   * Makes the engine hold every object the catalog records for the workspace's data sources,
   * after a start-up repair set damaged metadata aside (a full disk). A missing table or
   * quarantine table is attached again over its old data (`ATTACH TABLE ... UUID`, the UUID of
   * its data directory) under the definition the catalog records, or created empty when its data
   * is unknown (the ingest stages are made at first insert). Returns what it did and what it could not do.
   */
  async restore(ws: Workspace, damage: EngineDamage): Promise<string[]> {
    const report: string[] = [];
    const mine = damage.lost.filter((l) => l.database === ws.database);
    const present = new Set(
      (await this.engine.rows<{ name: string }>(sql`SELECT name FROM system.tables WHERE database = ${ws.database}`.text)).map((r) => r.name),
    );
    const uuidOf = (table: string) => mine.find((l) => l.table === table)?.uuid ?? damage.dataUuid(ws.database, table);
    const attach = (createSql: string, table: string): string => {
      const uuid = uuidOf(table);
      return uuid ? createSql.replace(/^CREATE TABLE (?:IF NOT EXISTS )?(\S+)/, (_m, name: string) => `ATTACH TABLE ${name} UUID '${uuid}'`) : createSql;
    };
    for (const ds of await this.list(ws)) {
      const q = `${ds.id}_quarantine`;
      for (const [table, sql] of [
        [ds.id, createTableSql(ds, ws.database)],
        [q, createQuarantineSql(ds, ws.database)],
      ] as const) {
        if (present.has(table)) continue;
        const what = `${ds.name}: ${table === q ? 'quarantine ' : ''}table`;
        try {
          if (uuidOf(table)) {
            try {
              await this.engine.exec(attach(sql, table));
              report.push(`${what} attached again over its data`);
              continue;
            } catch (err) {
              // Its data directory is damaged too (e.g. created on a full disk): start it empty.
              if (isDiskFull(err)) throw err;
              report.push(`${what}: its data could not be attached (${(err as Error).message})`);
            }
          }
          await this.engine.exec(sql);
          report.push(`${what} was missing and was created empty`);
        } catch (err) {
          report.push(`${what} could not be restored: ${(err as Error).message}`);
        }
      }
    }
    const known = new Set((await this.list(ws)).flatMap((ds) => [ds.id, `${ds.id}_quarantine`]));
    for (const l of mine) {
      if (!known.has(l.table))
        report.push(
          `engine object ${l.database}.${l.table} lost its metadata and is not a data source's: not restored (its data, if any, is in store/${l.uuid ?? '?'})`,
        );
    }
    return report;
  }

  /** Creates the record and its engine objects; 400 on a taken or invalid name. */
  async create(ws: Workspace, spec: NewDatasource): Promise<DatasourceRecord> {
    validateResourceName(spec.name);
    if (await this.find(ws, spec.name)) throw badRequest(`Data Source "${spec.name}" already exists, use mode=append`);
    await this.refusePipeName(ws, spec.name, 'bad_request');
    if (spec.columns.length === 0) throw badRequest('The schema must have at least one column');
    if (spec.engine.params.ttl) await checkTtlKeepsNewRows(this.engine, spec.columns, spec.engine.params.ttl);
    const started = performance.now();
    const ds: DatasourceRecord = {
      ...newNamedRecord(ws, spec.name),
      description: spec.description,
      columns: spec.columns,
      engine: spec.engine,
      indexes: spec.indexes,
      format: isJsonSchema(spec.columns) ? 'ndjson' : 'csv',
      headers: {},
    };
    await this.ensureDatabase(ws);
    await this.applyDdl(createTablesSql(ds, ws.database), dropAllSql(ds, ws.database));
    try {
      await this.catalog.insertDatasource(ds);
    } catch (err) {
      await this.runAll(dropAllSql(ds, ws.database));
      if (err instanceof UniqueViolation) throw badRequest(`Data Source "${spec.name}" already exists, use mode=append`);
      throw err;
    }
    await this.cache.update(ws.id, (m) => m.set(ds.id, ds));
    this.ops.op(ws.id, { eventType: 'create', datasource: ds, result: 'ok', elapsed: (performance.now() - started) / 1000, rows: 0 });
    return ds;
  }

  /** Runs DDL statements in order; on failure runs `undo` and rethrows the engine error as a 400. */
  private async applyDdl(statements: string[], undo: string[]): Promise<void> {
    try {
      for (const s of statements) await this.engine.exec(s);
    } catch (err) {
      await this.runAll(undo);
      if (err instanceof EngineError) throw badRequest(`Invalid data source definition: ${userFacingNames(err.message, (id) => this.nameOfId(id))}`);
      throw err;
    }
  }

  private async runAll(statements: string[]): Promise<void> {
    for (const s of statements) {
      try {
        await this.engine.exec(s);
      } catch {
        /* best effort cleanup */
      }
    }
  }

  async rename(ws: Workspace, ds: DatasourceRecord, newName: string): Promise<DatasourceRecord> {
    if (newName === ds.name) return ds;
    validateResourceName(newName);
    const other = await this.find(ws, newName);
    if (other && other.id !== ds.id) throw conflict(`There is already a Data Source with name "${newName}"`);
    await this.refusePipeName(ws, newName, 'conflict');
    const updated = await this.update(ws, { ...ds, name: newName, updatedAt: nowIso() });
    this.ops.op(ws.id, { eventType: 'rename', datasource: updated, result: 'ok', elapsed: 0, options: { old_name: ds.name, new_name: newName } });
    return updated;
  }

  /** Saves a changed record (built from the one read: a change by another request in between is a 409). */
  async update(ws: Workspace, ds: DatasourceRecord): Promise<DatasourceRecord> {
    const saved = await this.catalog.updateDatasource(ds);
    await this.cache.update(ws.id, (m) => m.set(ds.id, saved));
    return saved;
  }

  async drop(ws: Workspace, ds: DatasourceRecord): Promise<void> {
    await this.catalog.deleteDatasource(ws.id, ds.id);
    await this.cache.update(ws.id, (m) => m.delete(ds.id));
    // Engine objects left by a crash from here on have no catalog record: swept on start.
    await this.journal.checkpoint('datasource:drop');
    await this.stageChange(ds.id, async () => {
      this.forgetStages(ds.id);
      await this.runAll(dropAllSql(ds, ws.database));
    });
  }

  async truncate(ws: Workspace, ds: DatasourceRecord, quarantine: boolean): Promise<void> {
    if (!quarantine && ds.engine.engine === 'Null') return;
    const n = physicalNames(ws.database, ds.id);
    const started = performance.now();
    await this.engine.exec(sql`TRUNCATE TABLE ${name(quarantine ? n.quarantine : n.table)}`.text);
    if (!quarantine) await this.touch(ws, ds);
    this.ops.op(ws.id, {
      eventType: 'truncate',
      datasource: ds,
      result: 'ok',
      elapsed: (performance.now() - started) / 1000,
      options: quarantine ? { quarantine: 'true' } : undefined,
    });
  }

  /**
   * Marks a data change (updated_at). Bookkeeping after the data is written: a catalog that can
   * not take it (a full disk) must not turn an applied append into an error the client retries.
   */
  async touch(ws: Workspace, ds: DatasourceRecord): Promise<void> {
    try {
      const saved = await this.catalog.touchDatasource(ws.id, ds.id, nowIso());
      if (saved) await this.cache.update(ws.id, (m) => m.set(ds.id, saved));
    } catch (err) {
      if (!isDiskFull(err)) throw err;
    }
  }

  /** The database of the ingest stages (STAGES_DATABASE), made once per process: in memory only when the engine lives in this process. */
  ensureStagesDatabase(): Promise<void> {
    this.stagesDatabase ??= this.engine
      .exec(sql`CREATE DATABASE IF NOT EXISTS ${ident(STAGES_DATABASE)}${trusted(this.engine.inProcess ? ' ENGINE = Memory' : '')}`.text)
      .catch((err: unknown) => {
        this.stagesDatabase = null;
        throw err;
      });
    return this.stagesDatabase;
  }

  /**
   * Makes sure one ingest stage of `ds` is in the engine as its record defines it, before an
   * insert into it. The first call of a process for a stage (and definition) looks it up and
   * makes it when it is missing, out of date or made in part; the others wait for that one, then
   * return at once. A stage that can not be made whole is dropped again (the next call tries anew).
   * A data source without such a stage (NDJSON into one without JSONPaths) gets nothing.
   */
  ensureStage(ws: Workspace, ds: DatasourceRecord, kind: StageKind): Promise<void> {
    // Records are replaced, never changed: the DDL of one is built once (this runs on every insert).
    let all = this.stagesDdlOf.get(ds);
    if (!all) this.stagesDdlOf.set(ds, (all = stagesDdl(ds, ws.database)));
    const ddl = all.find((d) => d.kind === kind);
    if (!ddl) return Promise.resolve();
    const key = ddl.names[0];
    const known = this.stages.get(key);
    if (known?.version === ddl.version) return known.ready;
    const entry = { version: ddl.version, ready: this.stageChange(ds.id, () => this.makeStage(ds.id, ddl)) };
    this.stages.set(key, entry);
    entry.ready.catch(() => {
      if (this.stages.get(key) === entry) this.stages.delete(key);
    });
    return entry.ready;
  }

  /** The ingest stages made again from the record (after a schema change): both, whether or not they were made before. */
  async rebuildStages(ws: Workspace, ds: DatasourceRecord): Promise<void> {
    const all = stagesDdl(ds, ws.database);
    // Inserts are held back meanwhile (in every copy): one that found the stage ready would
    // otherwise reach it between the drop and the create.
    const ready = this.stageChange(ds.id, () =>
      this.engine.exclusiveWrites(async () => {
        await this.runAll(dropStagesSql(ds.id));
        for (const ddl of all) await this.makeStage(ds.id, ddl, true);
      }),
    );
    for (const ddl of all) this.stages.set(ddl.names[0], { version: ddl.version, ready });
    try {
      await ready;
    } catch (err) {
      this.forgetStages(ds.id);
      throw err;
    }
  }

  /**
   * Forgets what ensureStage knew of a data source's stages (dropped, or dropped elsewhere: a
   * replace's shadow); with `database`, of the stages' database too (found missing).
   */
  forgetStages(dsId: string, database = false): void {
    if (database) this.stagesDatabase = null;
    for (const kind of ['json', 'csv'] as const) this.stages.delete(stageObjectNames(dsId, kind)[0]);
  }

  /**
   * Makes a stage whole and current: kept when its table carries the definition's version (views
   * missing after an interrupted creation are added), else dropped and made again.
   */
  private async makeStage(dsId: string, ddl: StageDdl, fresh = false): Promise<void> {
    await this.ensureStagesDatabase();
    if (!fresh) {
      const present = await this.engine.rows<{ name: string; comment: string }>(
        sql`SELECT name, comment FROM system.tables WHERE database = ${STAGES_DATABASE} AND name IN (${ddl.names})`.text,
      );
      const current = present.find((r) => r.name === ddl.names[0])?.comment === ddl.version;
      if (current && present.length === ddl.names.length) return;
      // Nothing there (the usual case after a start) is only made; something else is dropped first.
      if (present.length && !current) await this.runAll(dropStagesSql(dsId, ddl.kind));
    }
    try {
      for (const s of ddl.statements) await this.engine.exec(s);
    } catch (err) {
      // No half stage: what this made (or found) is dropped, and made whole by the next call.
      await this.runAll(dropStagesSql(dsId, ddl.kind));
      throw err;
    }
  }

  /** Runs `fn` after every earlier stage change of the data source (ensure, rebuild, drop) has ended. */
  private stageChange<T>(dsId: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.stageChanges.get(dsId) ?? Promise.resolve()).then(fn);
    const settled = run.catch(() => undefined);
    this.stageChanges.set(dsId, settled);
    void settled.then(() => {
      if (this.stageChanges.get(dsId) === settled) this.stageChanges.delete(dsId);
    });
    return run;
  }

  async stats(ws: Workspace, ds: DatasourceRecord, quarantine = false): Promise<DatasourceStats> {
    try {
      const r = await this.engine.rows<{ rows: string; bytes: string }>(
        sql`SELECT sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts WHERE database = ${ws.database} AND table = ${quarantine ? `${ds.id}_quarantine` : ds.id} AND active`
          .text,
      );
      return { rowCount: Number(r[0]?.rows ?? 0), bytes: Number(r[0]?.bytes ?? 0) };
    } catch {
      return { rowCount: null, bytes: null };
    }
  }
}
