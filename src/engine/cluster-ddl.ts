/**
 * DDL for a ClickHouse cluster (PIPIT_ENGINE_CLUSTER): the one place where Pipit's statements
 * become cluster-wide. The remote engine passes every statement it runs through `clusterStatement`,
 * so the generators (src/ingest/physical.ts, src/domain/schema/engine.ts, materialize, copy, atomic
 * writes, recovery) stay engine-agnostic. With a cluster name:
 * - DDL (CREATE/DROP/ALTER/TRUNCATE/RENAME/EXCHANGE, lightweight DELETE, SYSTEM STOP|START MERGES,
 *   KILL QUERY) runs `ON CLUSTER <name>` on every replica;
 * - MergeTree-family engines become their Replicated variants (`ReplicatedMergeTree('/clickhouse/
 *   tables/{uuid}/{shard}', '{replica}', ...)`), so every replica holds all data and reads can go to
 *   any replica (Tinybird's own layout). Null, Memory and Join engines stay as they are.
 * Statements are Pipit's own (trusted, of known shapes); anything else passes unchanged.
 *
 * @example
 * clusterStatement('CREATE TABLE w.t (a Int32) ENGINE = MergeTree ORDER BY a', 'c')
 * // → "CREATE TABLE w.t ON CLUSTER `c` (a Int32) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}') ORDER BY a"
 */
import { quoteIdent } from './engine.js';

/** A possibly database-qualified, possibly backquoted name. */
const NAME = String.raw`(?:\`(?:[^\`\\]|\\.)*\`|[A-Za-z_][\w$]*)(?:\.(?:\`(?:[^\`\\]|\\.)*\`|[A-Za-z_][\w$]*))?`;
const LEAD = String.raw`^((?:\s|/\*[\s\S]*?\*/)*)`;

/** Statement heads after which `ON CLUSTER` goes: the captured prefix ends right after the object name. */
const AFTER_NAME: RegExp[] = [
  new RegExp(`${LEAD}(CREATE\\s+(?:OR\\s+REPLACE\\s+)?(?:TABLE|DATABASE|VIEW|MATERIALIZED\\s+VIEW|DICTIONARY)\\s+(?:IF\\s+NOT\\s+EXISTS\\s+)?${NAME})`, 'i'),
  new RegExp(`${LEAD}(DROP\\s+(?:TABLE|VIEW|DATABASE|DICTIONARY)\\s+(?:IF\\s+EXISTS\\s+)?${NAME})`, 'i'),
  new RegExp(`${LEAD}(ALTER\\s+TABLE\\s+${NAME})`, 'i'),
  new RegExp(`${LEAD}(TRUNCATE\\s+(?:TABLE\\s+)?(?:IF\\s+EXISTS\\s+)?${NAME})`, 'i'),
  new RegExp(`${LEAD}(DELETE\\s+FROM\\s+${NAME})`, 'i'),
];
/** Heads where `ON CLUSTER` comes before the object name (or the WHERE). */
const BEFORE_NAME: RegExp[] = [new RegExp(`${LEAD}(SYSTEM\\s+(?:STOP|START)\\s+MERGES)(?=\\s)`, 'i'), new RegExp(`${LEAD}(KILL\\s+QUERY)(?=\\s)`, 'i')];
/** Statements whose `ON CLUSTER` follows the whole name list: `RENAME TABLE a TO b`, `EXCHANGE TABLES a AND b`. */
const AT_END = new RegExp(
  `${LEAD}((?:RENAME\\s+(?:TABLE|DATABASE)\\s+${NAME}\\s+TO\\s+${NAME}(?:\\s*,\\s*${NAME}\\s+TO\\s+${NAME})*)|(?:EXCHANGE\\s+(?:TABLES|DICTIONARIES)\\s+${NAME}\\s+AND\\s+${NAME}))`,
  'i',
);

const MERGE_TREE = /\bENGINE\s*=\s*(Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite)?MergeTree\b(\s*\()?/i;

/** The ZooKeeper/Keeper path and replica name of a replicated table: ClickHouse's own defaults, from server macros. */
export const REPLICA_ARGS = `'/clickhouse/tables/{uuid}/{shard}', '{replica}'`;

/** `ENGINE = XMergeTree(args)` → `ENGINE = ReplicatedXMergeTree('<path>', '<replica>', args)`. */
export function replicatedEngine(sql: string): string {
  const m = MERGE_TREE.exec(sql);
  if (!m) return sql;
  const kind = m[1] ?? '';
  const start = m.index;
  const head = `ENGINE = Replicated${kind}MergeTree(${REPLICA_ARGS}`;
  if (!m[2]) return `${sql.slice(0, start)}${head})${sql.slice(start + m[0].length)}`;
  // Engine arguments follow: keep them after the replication ones.
  const open = start + m[0].length;
  let depth = 1;
  let i = open;
  for (; i < sql.length && depth > 0; i++) {
    const ch = sql[i];
    if (ch === "'") {
      for (i++; i < sql.length && sql[i] !== "'"; i++) if (sql[i] === '\\') i++;
    } else if (ch === '(') depth++;
    else if (ch === ')') depth--;
  }
  const args = sql.slice(open, i - 1).trim();
  return `${sql.slice(0, start)}${head}${args ? `, ${args}` : ''})${sql.slice(i)}`;
}

/** A statement made cluster-wide (see the module comment); `cluster` null leaves it unchanged. */
export function clusterStatement(sql: string, cluster: string | null): string {
  if (!cluster) return sql;
  const on = ` ON CLUSTER ${quoteIdent(cluster)}`;
  for (const re of AFTER_NAME) {
    const m = re.exec(sql);
    if (!m) continue;
    const out = m[1] + m[2] + on + sql.slice(m[0].length);
    return /^(?:\s|\/\*[\s\S]*?\*\/)*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\b/i.test(out) ? replicatedEngine(out) : out;
  }
  for (const re of BEFORE_NAME) {
    const m = re.exec(sql);
    if (m) return m[1] + m[2] + on + sql.slice(m[0].length);
  }
  const m = AT_END.exec(sql);
  if (m) return m[1] + m[2] + on + sql.slice(m[0].length);
  return sql;
}
