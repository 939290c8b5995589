/**
 * Schemas of the Pipes API routes (src/http/route-docs.ts: they describe and type; the handlers
 * keep Tinybird's checks and messages). Wire names are Tinybird's snake_case.
 */
import { boolParam, type JsonSchema, pathParams, queryParams, type RouteSchema } from '../route-docs.js';

export interface PipeRoute {
  Params: { pipe: string };
}
export interface NodeRoute {
  Params: { pipe: string; node: string };
}

const FORM = ['application/x-www-form-urlencoded'];

const NODE: JsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    sql: { type: 'string', description: 'Absent for tokens that may only read the endpoint' },
    description: { type: ['string', 'null'] },
    materialized: { type: ['string', 'null'], description: 'The target Data Source id of a materialized node' },
    node_type: { type: 'string', enum: ['standard', 'endpoint', 'materialized', 'copy', 'sink'] },
    dependencies: { type: 'array', items: { type: 'string' } },
    params: { type: 'array', items: { type: 'object' } },
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
  },
};

const PIPE: JsonSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    description: { type: ['string', 'null'] },
    endpoint: { type: ['string', 'null'], description: 'The id of the published node' },
    type: { type: 'string', enum: ['default', 'endpoint', 'materialized', 'copy', 'sink'] },
    parent: { type: ['string', 'null'] },
    url: { type: 'string' },
    nodes: { type: 'array', items: NODE },
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
  },
};

const MATERIALIZE_ARGS = {
  datasource: 'Target Data Source of a materialized node (created from the node output when it does not exist)',
  override_datasource: boolParam('Replace an existing target'),
  engine: 'Engine of a new target',
  populate: boolParam('Run a populate job over the existing rows'),
  populate_subset: { type: 'string', description: 'Fraction of the rows to populate (a number)' },
  populate_condition: 'SQL condition the populated rows match',
  unlink_on_populate_error: boolParam('Unlink the view when its populate fails'),
};

const NODE_BODY: JsonSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    sql: { type: 'string' },
    description: { type: 'string' },
    type: { type: 'string', enum: ['standard', 'default', 'endpoint', 'materialized', 'copy', 'sink'] },
    datasource: { type: 'string' },
    target_datasource: { type: 'string' },
    copy_schedule: { type: 'string' },
    mode: { type: 'string', enum: ['append', 'replace'] },
  },
  additionalProperties: true,
};

export const listPipes: RouteSchema = {
  summary: 'The pipes the token may read',
  querystring: queryParams({
    dependencies: boolParam("Include each node's dependencies"),
    attrs: 'Comma-separated pipe attributes to keep',
    node_attrs: 'Comma-separated node attributes to keep',
  }),
  response: { 200: { type: 'object', properties: { pipes: { type: 'array', items: PIPE } } } },
};

export const createPipe: RouteSchema = {
  summary: 'Create a pipe (or with force=true replace one), whole or not at all',
  description:
    'The nodes come as a JSON body (the shape `tb push` sends), as `sql=` (one node), or as `from=` (a copy of another pipe). Materialized, copy and sink nodes get their settings in the same request; a refused setting undoes the whole request.',
  querystring: queryParams({
    name: 'Pipe name',
    description: 'Pipe description',
    sql: 'SQL of a single node',
    from: 'Copy the nodes of this pipe',
    force: boolParam('Replace a pipe of that name'),
  }),
  body: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      description: { type: 'string' },
      force: { type: ['string', 'boolean'] },
      nodes: { type: 'array', items: NODE_BODY },
    },
  },
  consumes: FORM,
  response: { 200: PIPE },
};

export const pipe: RouteSchema = { summary: 'A pipe, its `.pipe` datafile or its endpoint data', params: pathParams('pipe') };
export const updatePipe: RouteSchema = {
  ...pipeAction('Rename a pipe or change its description', { name: 'New name', description: 'New description' }),
  body: { type: 'object', properties: { name: { type: 'string' }, description: { type: 'string' } } },
  response: { 200: PIPE },
};
export const dropPipe: RouteSchema = { summary: 'Delete a pipe (its views stop; their targets keep their rows)', params: pathParams('pipe') };

export const appendNode: RouteSchema = {
  summary: 'Append a node; the body is its SQL or a JSON node',
  params: pathParams('pipe'),
  querystring: queryParams({ name: 'Node name', description: 'Node description', type: 'Node type', ...MATERIALIZE_ARGS }),
  body: NODE_BODY,
  consumes: ['text/plain'],
  response: { 200: NODE },
};
export const updateNode: RouteSchema = {
  summary: "Change a node's SQL, name or description",
  params: pathParams('pipe', 'node'),
  querystring: queryParams({ name: 'New name', description: 'New description' }),
  body: NODE_BODY,
  consumes: ['text/plain'],
  response: { 200: NODE },
};
/** A route on a pipe or one of its nodes, with form or query-string arguments. */
function action(params: string[], summary: string, query: Record<string, string | JsonSchema>): RouteSchema {
  return { summary, params: pathParams(...params), ...(Object.keys(query).length ? { querystring: queryParams(query), consumes: FORM } : {}) };
}
export const nodeAction = (summary: string, query: Record<string, string | JsonSchema> = {}) => action(['pipe', 'node'], summary, query);
export function pipeAction(summary: string, query: Record<string, string | JsonSchema> = {}): RouteSchema {
  return action(['pipe'], summary, query);
}

export const materialize = nodeAction('Materialize a node into a Data Source', MATERIALIZE_ARGS);
export const copySettings = {
  target_datasource: 'Data Source the copy writes',
  schedule_cron: 'Cron schedule (UTC); empty or @on-demand for none',
  mode: { type: 'string', enum: ['append', 'replace'] },
};
