/**
 * A first guard for user SQL expressions that reach the engine inside server-built statements
 * (delete_condition, replace_condition, engine keys, TTL): one expression, no statement
 * separators, no SETTINGS/FORMAT/INTO OUTFILE, no functions that reach outside the engine. The
 * full SQL safety layer (parser-based) replaces this with the Query API.
 */
import { badRequest } from '../domain/errors.js';

const DENIED_FUNCTIONS = /\b(file|url|urlCluster|s3|s3Cluster|gcs|azureBlobStorage|hdfs|remote|remoteSecure|cluster|clusterAllReplicas|mysql|postgresql|sqlite|odbc|jdbc|mongodb|redis|executable|input|merge|dictionary|dictGet\w*|joinGet\w*|getSetting\w*|hasColumnInTable|currentDatabase|currentUser|fuzzQuery|loop|view|iceberg\w*|deltaLake\w*|hudi\w*|format|system\w*)\s*\(/i;

/** Throws a 400 naming `what` when the expression is not a plain, self-contained expression. */
export function guardExpression(expr: string, what: string): string {
  const e = expr.trim();
  if (!e) throw badRequest(`${what} can't be empty`);
  const noStrings = e.replace(/'(?:[^'\\]|\\.)*'/g, "''");
  if (/;/.test(noStrings)) throw badRequest(`${what} must be a single SQL expression`);
  if (/\b(SETTINGS|FORMAT|INTO\s+OUTFILE|SELECT|UNION)\b/i.test(noStrings)) throw badRequest(`${what} must be a plain SQL expression: subqueries, SETTINGS, FORMAT and INTO OUTFILE are not allowed`);
  if (/\b\w+\s*\.\s*\w+\s*\(/.test(noStrings) || /\bsystem\s*\./i.test(noStrings)) throw badRequest(`${what} can't reference other databases`);
  const m = DENIED_FUNCTIONS.exec(noStrings);
  if (m) throw badRequest(`${what} uses the function ${m[1]}, which is not allowed`);
  return e;
}
