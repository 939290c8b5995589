/**
 * What the jobs of a pipe's node (copy, sink, populate) share: the payload that names the pipe,
 * the node and who started the job (stored with the job, so any copy of the server runs it; the
 * node is read and prepared again when the job starts, so no secret is stored), and running the
 * job's engine statements so that a cancel stops them inside the engine.
 */
import type { NodeRecord, PipeRecord } from '../catalog/catalog.js';
import type { Engine } from '../engine/engine.js';
import { Auth, type AuthorityRecord } from './access.js';
import type { PipeService } from './pipe-service.js';
import type { ParamValue } from '../template/index.js';
import type { QueryService } from './query-service.js';
import type { JobService } from '../jobs/job-service.js';

/** The services the jobs of a pipe's nodes are made and run with. */
export interface NodeJobServices {
  engine: Engine;
  pipes: PipeService;
  queries: QueryService;
  jobs: JobService;
}

export interface PipeJobPayload {
  /** Who started the job (a scheduled run: the workspace's admin token), as it was then. */
  authority: AuthorityRecord;
  pipeId: string;
  nodeId: string;
}

/** The payload of a run of a scheduled node (copy, sink): the template parameters and the run's timestamp. */
export interface RunPayload extends PipeJobPayload {
  params: Record<string, ParamValue>;
  /** ISO; `job_timestamp` of the template. */
  jobTimestamp: string;
  queryId: string;
}

export function pipeJobPayload(auth: Auth, pipe: PipeRecord, node: NodeRecord): PipeJobPayload {
  return { authority: auth.toRecord(), pipeId: pipe.id, nodeId: node.id };
}

/** The authority, pipe and node a job runs with, as they are when it starts. */
export async function jobNode<T extends NodeRecord['nodeType']>(
  pipes: PipeService,
  p: PipeJobPayload,
  nodeType: T,
): Promise<{ auth: Auth; pipe: PipeRecord; node: Extract<NodeRecord, { nodeType: T }> }> {
  const auth = Auth.fromRecord(p.authority);
  const pipe = await pipes.find(auth.workspace, p.pipeId);
  const node = pipe?.nodes.find((n): n is Extract<NodeRecord, { nodeType: T }> => n.id === p.nodeId && n.nodeType === nodeType);
  if (!pipe || !node) throw new Error(`The pipe was deleted or its node is no longer a ${nodeType} node`);
  return { auth, pipe, node };
}

/** Runs a job's work so that aborting `signal` (a cancel) stops its statements (query id: the job's) in the engine. */
export async function killedOnAbort<T>(engine: Engine, jobId: string, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  const onAbort = () => void engine.kill(jobId).catch(() => undefined);
  signal.addEventListener('abort', onAbort);
  try {
    return await work();
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
