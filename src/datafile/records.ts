/**
 * Datafiles of stored resources: the `.pipe` of a pipe record and the `.token` of a token record,
 * as the API serves them (`GET /v0/pipes/:name.pipe`, `GET /v0/tokens/:name.token`).
 */
import type { PipeRecord, TokenRecord } from '../catalog/catalog.js';
import { RESOURCE_SCOPES } from '../basics/scopes.js';
import type { PipeNode, TokenScope } from './model.js';
import { printPipe, printToken } from './print.js';

/**
 * The `.pipe` datafile of a pipe. `names` maps Data Source ids to names: with it, materialized and
 * copy nodes say their target (DATASOURCE / TARGET_DATASOURCE), so the file can be pushed back.
 */
export function pipeDatafile(p: PipeRecord, names?: ReadonlyMap<string, string>): string {
  const nodes: PipeNode[] = p.nodes.map((n) => {
    const node: PipeNode = { name: n.name, sql: n.sql.trim(), engineParams: {}, export: {} };
    if (n.description) node.description = n.description;
    if (n.nodeType !== 'standard') node.type = n.nodeType;
    if (n.nodeType === 'materialized' && names) node.datasource = names.get(n.data.materialized);
    if (n.nodeType === 'copy' && names) {
      const d = n.data;
      node.targetDatasource = names.get(d.copy_target);
      if (d.cron) node.copySchedule = d.cron;
      node.copyMode = d.mode;
    }
    if (n.nodeType === 'sink') {
      const d = n.data;
      node.export = {
        connection_name: d.sink_connection_name,
        bucket_uri: d.sink_path,
        file_template: d.sink_file_template,
        format: d.sink_format,
        compression: d.sink_compression,
        write_strategy: d.sink_write_strategy,
      };
      if (d.cron) node.export.schedule = d.cron;
    }
    return node;
  });
  return printPipe({ kind: 'pipe', description: p.description ?? undefined, tokens: [], nodes });
}

/** The `.token` datafile (§11.4): DESCRIPTION, then SCOPE / RESOURCE / FILTER per scope. */
export function tokenDatafile(t: TokenRecord, names: ReadonlyMap<string, string>): string {
  const scopes: TokenScope[] = [];
  for (const sc of t.scopes) {
    const scoped = sc.resource && RESOURCE_SCOPES.has(sc.type);
    // A scope whose resource was dropped grants nothing: not printed.
    if (scoped && !names.has(sc.resource!)) continue;
    scopes.push({ type: sc.type, ...(scoped ? { resource: names.get(sc.resource!) } : {}), ...(sc.filter ? { filter: sc.filter } : {}) });
  }
  return printToken({ kind: 'token', description: t.description || undefined, scopes });
}
