/**
 * Parsing of stored documents into typed records, once, as they leave the catalog: a document
 * that does not have the shape its type promises (written by an older version, or damaged) is
 * refused here rather than deep inside a service.
 */
import type { NodeRecord, NodeType } from './catalog.js';

const NODE_TYPES: ReadonlySet<string> = new Set<NodeType>(['standard', 'endpoint', 'materialized', 'copy', 'sink']);

/** A node of a stored pipe; unknown node types are an error of the stored data. */
export function parseNode(raw: unknown): NodeRecord {
  const n = raw as Partial<NodeRecord> | null;
  if (!n || typeof n !== 'object' || typeof n.id !== 'string' || typeof n.sql !== 'string') throw new Error('catalog: a stored pipe node is malformed');
  const nodeType = n.nodeType ?? 'standard';
  if (!NODE_TYPES.has(nodeType)) throw new Error(`catalog: a stored pipe node has the unknown type "${nodeType}"`);
  return { ...(n as NodeRecord), nodeType, dependencies: n.dependencies ?? [], data: n.data ?? {} };
}
