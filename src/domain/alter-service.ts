/**
 * `POST /v0/datasources/:name/alter`: adds columns at the end, drops non-key columns, makes
 * columns Nullable or changes their defaults, sets or removes the TTL, changes indexes and the
 * description. `dry=true` only lists the operations. The quarantine table and the ingest stages
 * follow every column change.
 */
import type { AlterIntentData, DatasourceRecord, Intent, Workspace } from '../catalog/catalog.js';
import type { Engine } from '../engine/engine.js';
import { EngineError } from '../engine/engine.js';
import { ident, name, sql, trusted } from '../engine/sql.js';
import { checkTtlKeepsNewRows } from './ttl-check.js';
import { columnDdl, physicalNames, userFacingNames } from '../ingest/physical.js';
import { checkExpression } from '../schema/index.js';
import type { DatasourceService } from './datasource-service.js';
import { badRequest } from '../basics/errors.js';
import { indexClause, isJsonSchema, isMergeTreeFamily, parseIndexes, parseSchema } from '../schema/index.js';
import type { Column } from '../basics/types.js';
import { nowIso } from '../basics/time.js';

export class AlterService {
  constructor(
    private readonly engine: Engine,
    private readonly datasources: DatasourceService,
  ) {}

  /** Engine operations on the table; REMOVE TTL runs apart (it fails when there is none left, which a replay tolerates). */
  private async applyEngine(ws: Workspace, dsId: string, ops: string[], replay: boolean): Promise<void> {
    const table = name(physicalNames(ws.database, dsId).table);
    const rest = ops.filter((o) => o !== 'REMOVE TTL');
    // The operations were built with sql`` (and journaled as text).
    if (rest.length) await this.engine.exec(sql`ALTER TABLE ${table} ${trusted(rest.join(', '))}`.text);
    if (rest.length < ops.length) {
      try {
        await this.engine.exec(sql`ALTER TABLE ${table} REMOVE TTL`.text);
      } catch (err) {
        if (!replay) throw err;
      }
    }
  }

  /** The steps after the table's ALTER: quarantine, catalog record, ingest stages. */
  private async finish(ws: Workspace, d: AlterIntentData): Promise<void> {
    if (d.quarantineOps.length)
      await this.engine.exec(sql`ALTER TABLE ${name(physicalNames(ws.database, d.ds).quarantine)} ${trusted(d.quarantineOps.join(', '))}`.text);
    await this.datasources.update(ws, d.after);
    if (d.stages) await this.datasources.rebuildStages(ws, d.after);
  }

  /**
   * Rolls an interrupted alter forward: the (idempotent) operations run again, then the rest. If
   * the engine refuses them now, the engine never took them: the catalog keeps the old record and
   * the stages are rebuilt from it.
   */
  async recover(ws: Workspace, intent: Intent<'alter'>): Promise<'forward' | 'back'> {
    const d = intent.data;
    let outcome: 'forward' | 'back' = 'forward';
    try {
      await this.applyEngine(ws, d.ds, d.engineOps, true);
    } catch (err) {
      if (!(err instanceof EngineError)) throw err;
      outcome = 'back';
    }
    if (outcome === 'forward') await this.finish(ws, d);
    else {
      await this.datasources.update(ws, d.before);
      if (d.stages) await this.datasources.rebuildStages(ws, d.before);
    }
    await this.datasources.journal.end(intent);
    return outcome;
  }

  /** Applies an alter (an `alter` operation in datasources_ops_log unless it is a dry run). */
  async alter(ws: Workspace, ds: DatasourceRecord, p: Record<string, string>): Promise<{ operations: string[] }> {
    const started = performance.now();
    const r = await this.apply(ws, ds, p);
    if (p.dry !== 'true') {
      const options: Record<string, string> = { operations: r.operations.join('; ') };
      this.datasources.ops.op(ws.id, { eventType: 'alter', datasource: ds, result: 'ok', elapsed: (performance.now() - started) / 1000, options });
    }
    return r;
  }

  private async apply(ws: Workspace, ds: DatasourceRecord, p: Record<string, string>): Promise<{ operations: string[] }> {
    if (p.schema === undefined && p.description === undefined && p.ttl === undefined && p.indexes === undefined) {
      throw badRequest('Alter operation requires additional parameters: schema, description, ttl or indexes');
    }
    if (ds.engine.engine !== 'Null' && !isMergeTreeFamily(ds.engine.engine) && (p.schema !== undefined || p.ttl !== undefined || p.indexes !== undefined)) {
      throw badRequest(
        `The data source engine (${ds.engine.engine}) is not supported. Schema modifications are only supported for the Null engine and the engines from the MergeTree family.`,
      );
    }
    const ops: string[] = [];
    const quarantineOps: string[] = [];
    let columns = ds.columns;
    if (p.schema !== undefined) {
      const next = parseSchema(p.schema);
      const old = new Map(ds.columns.map((c) => [c.name, c]));
      const nextNames = new Set(next.map((c) => c.name));
      const keys = `${ds.engine.params.sorting_key ?? ''} ${ds.engine.params.partition_key ?? ''} ${ds.engine.params.primary_key ?? ''}`;
      for (const c of ds.columns) {
        if (nextNames.has(c.name)) continue;
        if (new RegExp(`\\b${c.name}\\b`).test(keys)) throw badRequest(`Column '${c.name}' is part of the engine keys and can't be dropped`);
        ops.push(sql`DROP COLUMN ${ident(c.name)}`.text);
      }
      let prevKnown = true;
      let modifies = 0;
      for (const c of next) {
        const o = old.get(c.name);
        if (!o) {
          prevKnown = false;
          ops.push(sql`ADD COLUMN ${trusted(columnDdl(c))}`.text);
          quarantineOps.push(sql`ADD COLUMN IF NOT EXISTS ${ident(c.name)} Nullable(String) AFTER c__import_id`.text);
          continue;
        }
        if (!prevKnown) throw badRequest(`New columns must be added at the end of the schema; '${c.name}' comes after a new column`);
        if (o.type !== c.type || (o.defaultValue ?? '') !== (c.defaultValue ?? '') || (o.codec ?? '') !== (c.codec ?? '')) {
          if (o.type !== c.type && c.type !== `Nullable(${o.type})`) {
            throw badRequest(`Column '${c.name}' can't change its type from ${o.type} to ${c.type}: only making a column Nullable is supported`);
          }
          modifies++;
          ops.push(sql`MODIFY COLUMN ${trusted(columnDdl(c))}`.text);
        }
      }
      if (modifies > 1) throw badRequest('Only one column modification (type, default or codec) is allowed per request');
      columns = next;
      if (ds.format === 'ndjson' && !isJsonSchema(next)) throw badRequest('Every column of a Data Source with JSONPaths needs a JSONPath');
      const pathsChanged = next.some((c) => old.get(c.name) && old.get(c.name)!.jsonpath !== c.jsonpath);
      if (!ops.length && pathsChanged) ops.push('-- change JSONPaths');
    }
    if (p.ttl !== undefined) {
      if (p.ttl === 'false' || p.ttl === '') {
        if (ds.engine.params.ttl) ops.push('REMOVE TTL');
      } else if (p.ttl !== ds.engine.params.ttl) {
        ops.push(sql`MODIFY TTL ${trusted(checkExpression(p.ttl, 'ttl'))}`.text);
        await checkTtlKeepsNewRows(this.engine, columns, p.ttl);
      }
    }
    let indexes = ds.indexes;
    if (p.indexes !== undefined) {
      indexes = p.indexes.trim() === '0' ? [] : parseIndexes(p.indexes);
      const oldIdx = new Map(ds.indexes.map((i) => [i.name, indexClause(i)]));
      const newIdx = new Map(indexes.map((i) => [i.name, indexClause(i)]));
      for (const [index, clause] of oldIdx) if (newIdx.get(index) !== clause) ops.push(sql`DROP INDEX ${ident(index)}`.text);
      for (const [index, clause] of newIdx) if (oldIdx.get(index) !== clause) ops.push(sql`ADD ${trusted(clause)}`.text);
    }
    const descChanged = p.description !== undefined && p.description !== ds.description;
    if (!ops.length && !descChanged) throw badRequest('There were no operations to perform, new schema, ttl and indexes are the same as the existing ones');
    if (p.dry === 'true') return { operations: ops };

    const params = { ...ds.engine.params };
    if (p.ttl !== undefined) {
      if (p.ttl === 'false' || p.ttl === '') delete params.ttl;
      else params.ttl = p.ttl;
    }
    const updated: DatasourceRecord = {
      ...ds,
      columns: columns as Column[],
      indexes,
      engine: { ...ds.engine, params },
      description: p.description ?? ds.description,
      updatedAt: nowIso(),
    };
    const engineOps = ops.filter((o) => !o.startsWith('--')).map(idempotent);
    if (!engineOps.length && !quarantineOps.length && p.schema === undefined) {
      await this.datasources.update(ws, updated); // catalog only: one step
      return { operations: ops };
    }
    // Engine table, quarantine, catalog record, ingest stages: four steps, recorded as one intent
    // so that an interruption anywhere is rolled forward (recover) now or on the next start.
    const journal = this.datasources.journal;
    const intent = await journal.begin(ws, 'alter', {
      ds: ds.id,
      before: ds,
      after: updated,
      engineOps,
      quarantineOps,
      stages: p.schema !== undefined,
    });
    try {
      await this.applyEngine(ws, ds.id, engineOps, false);
    } catch (err) {
      await journal.end(intent);
      if (err instanceof EngineError)
        throw badRequest(`Failed to alter the Data Source: ${userFacingNames(err.message, (id) => this.datasources.nameOfId(id))}`);
      throw err;
    }
    await journal.checkpoint('alter:engine');
    try {
      await this.finish(ws, intent.data);
      await journal.end(intent);
    } catch (err) {
      await this.recover(ws, intent).catch(() => undefined);
      throw err;
    }
    return { operations: ops };
  }
}

/** The form of an operation that is a no-op when it has already been applied. */
function idempotent(op: string): string {
  return op
    .replace(/^ADD COLUMN /, 'ADD COLUMN IF NOT EXISTS ')
    .replace(/^DROP COLUMN /, 'DROP COLUMN IF EXISTS ')
    .replace(/^ADD INDEX /, 'ADD INDEX IF NOT EXISTS ')
    .replace(/^DROP INDEX /, 'DROP INDEX IF EXISTS ');
}
