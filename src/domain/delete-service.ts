/**
 * Deleting rows by condition (`POST /v0/datasources/:name/delete`): a dry run counts the rows; a
 * real run is a `delete_data` job that applies a synchronous mutation and reports rows_affected.
 */
import type { DatasourceRecord, JobRecord, Workspace } from '../catalog/catalog.js';
import type { Engine } from '../engine/engine.js';
import { name, sql, trusted } from '../engine/sql.js';
import { EngineError } from '../engine/engine.js';
import { physicalNames, userFacingNames } from '../ingest/physical.js';
import type { JobService } from '../jobs/job-service.js';
import { checkExpression } from '../schema/index.js';
import { badRequest } from '../basics/errors.js';
import { isMergeTreeFamily } from '../schema/index.js';

export class DeleteService {
  constructor(
    private readonly engine: Engine,
    private readonly jobs: JobService,
  ) {}

  async start(
    ws: Workspace,
    ds: DatasourceRecord,
    quarantine: boolean,
    condition: string,
    dryRun: boolean,
  ): Promise<JobRecord | { rows_to_be_deleted: number }> {
    if (!quarantine && !isMergeTreeFamily(ds.engine.engine)) {
      throw badRequest(`The data source engine (${ds.engine.engine}) is not supported. Deletion of data is supported for engines from the family MergeTree`);
    }
    const cond = checkExpression(condition, 'delete_condition');
    const n = physicalNames(ws.database, ds.id);
    const table = name(quarantine ? n.quarantine : n.table);
    const count = async () => {
      try {
        const r = await this.engine.rows<{ c: string }>(sql`SELECT count() AS c FROM ${table} WHERE ${trusted(cond)}`.text);
        return Number(r[0].c);
      } catch (err) {
        if (err instanceof EngineError)
          throw badRequest(`Failed to apply delete_condition='${condition}': ${userFacingNames(err.message, (id) => (id === ds.id ? ds.name : undefined))}`);
        throw err;
      }
    };
    const rows = await count();
    if (dryRun) return { rows_to_be_deleted: rows };
    const shown = quarantine ? `${ds.name}_quarantine` : ds.name;
    return this.jobs.create(ws, 'delete_data', { datasource: { id: ds.id, name: shown }, delete_condition: condition }, async () => {
      const before = await count();
      await this.engine.exec(sql`ALTER TABLE ${table} DELETE WHERE ${trusted(cond)} SETTINGS mutations_sync = 2`.text);
      const after = await count();
      return { rows_affected: before - after };
    });
  }
}
