import type { DatasourceRecord } from '../../src/catalog/catalog.js';
import type { Engine } from '../../src/engine/engine.js';
import type { EventTarget } from '../../src/ingest/event-buffer.js';
import { createTablesSql, physicalNames, STAGES_DATABASE, stagesDdl } from '../../src/ingest/physical.js';

/**
 * A real NDJSON data source `id` with one column `r` (read from `$.r`) in database `w`: its table and
 * quarantine made on `engine`, its stage made by `makeStage` (left to the caller, which may want it
 * missing for a while). `target` is where the Events API log inserts its rows.
 */
export async function ndjsonDatasource(engine: Engine, id: string, type: string) {
  const ds = {
    id,
    version: 1,
    workspaceId: 'ws',
    name: id,
    description: '',
    format: 'ndjson',
    headers: {},
    createdAt: '',
    updatedAt: '',
    indexes: [],
    engine: { engine: 'MergeTree', params: { sorting_key: 'tuple()' } },
    columns: [{ name: 'r', type, nullable: false, defaultValue: null, codec: null, jsonpath: '$.r' }],
  } as unknown as DatasourceRecord;
  await engine.exec('CREATE DATABASE IF NOT EXISTS w');
  await engine.exec(`CREATE DATABASE IF NOT EXISTS ${STAGES_DATABASE} ENGINE = Memory`);
  for (const q of createTablesSql(ds, 'w')) await engine.exec(q);
  const names = physicalNames('w', id);
  const target: EventTarget = { workspaceId: 'ws', database: 'w', datasourceId: id, stage: names.jsonStage };
  const makeStage = async () => {
    for (const q of stagesDdl(ds, 'w').find((x) => x.kind === 'json')!.statements) await engine.exec(q);
  };
  return { ds, names, target, makeStage };
}
