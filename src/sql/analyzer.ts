/**
 * The SQL safety layer's parser: it walks the token stream of one user query with the structure
 * of ClickHouse's SELECT grammar (query levels, WITH/CTEs, FROM/JOIN table expressions,
 * subqueries anywhere, IN targets, function calls) and
 *
 * - refuses everything that is not exactly one SELECT: other statements, `;` separators,
 *   SETTINGS, INTO OUTFILE, FORMAT anywhere but at the end, table functions outside the
 *   allow-list, denied scalar functions, database-qualified names other than the allowed system
 *   tables, query parameters;
 * - resolves every table reference through the caller's {@link SqlScope} (data sources, their
 *   quarantine, later pipes, nodes and service tables), so names the workspace does not own fail
 *   before the engine sees them, and collects them as the query's dependencies;
 * - re-serialises the query from the checked tokens with table references replaced by their
 *   physical names, comments dropped, and no FORMAT (the caller appends its own).
 *
 * It is deliberately fail-closed: a construct it cannot place is a syntax error, never a guess.
 * Behind it, the engine runs the result on read-only Sessions whose current database is empty,
 * so an unqualified name that slipped past would find nothing.
 */
import { forbidden, notFound, PipitError } from '../basics/errors.js';
import { identName, quoteLiteral, quoteName, SqlSyntaxError, stringValue, tokenize, type Token } from './lexer.js';
import { ALLOWED_SYSTEM_TABLES, ALLOWED_TABLE_FUNCTIONS, deniedFunction, FORMAT_LIST, looksLikeDatabase, OUTPUT_FORMATS } from './policy.js';

/** A resource a query reads, as the resolver describes it. */
export interface ResolvedTable {
  /** Name the user wrote (resource name). */
  name: string;
  kind: 'datasource' | 'quarantine' | 'pipe' | 'node' | 'service' | 'system';
  /** Stable id of the resource (empty for system tables). */
  id: string;
  /** What replaces the reference: a database-qualified table or a parenthesised subquery. */
  sql: string;
  /**
   * User-facing values of the engine's name-bearing virtual columns (`_table`, `_database`) for
   * a reference to a physical table: the rewrite puts them in place of the columns, so a query
   * sees its own names, never `t_<id>` or `w_<id>`.
   */
  virtuals?: { _table: string; _database: string };
  /** Real column names of the table (a real column shadows a virtual one of the same name). */
  columns?: readonly string[];
}

/** What a query may see: the caller's workspace, as a resolver. */
export interface SqlScope {
  /** An unqualified table name of the workspace, or undefined when it has none. */
  resolve(name: string): ResolvedTable | undefined;
  /** A qualified name other than `system.*` (e.g. `tinybird.*` service tables); undefined refuses it. */
  resolveQualified?(database: string, name: string): ResolvedTable | undefined;
  /** Physical table of a Join-engine data source, for `joinGet('name', ...)`. */
  resolveJoinTable?(name: string): string | undefined;
  /** Database names of the engine (lower-case), refused as qualifiers. */
  databases: ReadonlySet<string>;
}

export interface AnalyzedQuery {
  /** The statement to run, without FORMAT. */
  sql: string;
  /** Canonical output format named by the trailing FORMAT clause, if any. */
  format?: string;
  /** Resources the query reads, in order of first reference, without duplicates. */
  tables: ResolvedTable[];
  /** Where each unqualified resource name sits in the source text (for renames). */
  refs: Array<{ name: string; start: number; end: number; unaliased: boolean }>;
}

export interface AnalyzeOptions {
  /** Maximum nesting of parentheses and subqueries. */
  maxDepth?: number;
  /** Maximum number of tokens. */
  maxTokens?: number;
  /**
   * Treat a bare SETTINGS word as a name (expressions pasted into DDL, where a SETTINGS clause is
   * refused separately and a column may be called `settings`).
   */
  settingsAsName?: boolean;
  /** Names of engine query parameters the server binds (see LexOptions.params). */
  params?: ReadonlySet<string>;
}

const CLAUSE_WORDS = new Set([
  'WHERE',
  'PREWHERE',
  'GROUP',
  'HAVING',
  'ORDER',
  'LIMIT',
  'OFFSET',
  'WINDOW',
  'QUALIFY',
  'UNION',
  'EXCEPT',
  'INTERSECT',
  'SETTINGS',
  'FORMAT',
  'INTO',
  'ON',
  'USING',
  'FINAL',
  'SAMPLE',
  'AS',
  'JOIN',
  'LEFT',
  'RIGHT',
  'INNER',
  'OUTER',
  'FULL',
  'CROSS',
  'SEMI',
  'ANTI',
  'ANY',
  'ALL',
  'ASOF',
  'GLOBAL',
  'PASTE',
  'ARRAY',
  'SELECT',
  'FROM',
  'WITH',
  'FETCH',
  'LIMIT',
  'INTERPOLATE',
]);

/** Clause keywords that end the FROM clause / a join condition at a query level. */
const AFTER_FROM = new Set(['WHERE', 'PREWHERE', 'GROUP', 'HAVING', 'ORDER', 'LIMIT', 'OFFSET', 'WINDOW', 'QUALIFY', 'FETCH']);

/** What WITH may introduce after a query's WITH clause. */
const WITH_MODIFIERS = new Set(['TOTALS', 'FILL', 'TIES', 'ROLLUP', 'CUBE']);

/** Words after which an expression (not a clause) follows. */
const EXPECTS_EXPRESSION = new Set([
  'SELECT',
  'DISTINCT',
  'BY',
  'AS',
  'AND',
  'OR',
  'NOT',
  'WHERE',
  'PREWHERE',
  'HAVING',
  'ON',
  'USING',
  'WHEN',
  'THEN',
  'ELSE',
  'CASE',
  'IS',
  'IN',
  'LIKE',
  'ILIKE',
  'BETWEEN',
  'LIMIT',
  'OFFSET',
  'SAMPLE',
  'QUALIFY',
  'FROM',
  'JOIN',
  'TOP',
  'WITH',
  'INTERVAL',
]);

const STATEMENT_NAMES =
  /^(ALTER|ATTACH|BACKUP|CHECK|CREATE|DELETE|DESC|DESCRIBE|DETACH|DROP|EXCHANGE|EXISTS|EXPLAIN|GRANT|INSERT|KILL|MOVE|OPTIMIZE|RENAME|RESTORE|REVOKE|SET|SHOW|SYSTEM|TRUNCATE|UNDROP|UPDATE|USE|WATCH|BEGIN|COMMIT|ROLLBACK|CHECK)$/;

interface Scope {
  ctes: Set<string>;
  parent?: Scope;
  /** The SELECT of this query level being walked (a UNION starts another). */
  branch: Branch;
}

/** Virtual columns whose engine values name physical objects (`t_<id>`, `w_<id>`). */
const NAME_VIRTUALS = new Set(['_table', '_database']);

/** One SELECT (a branch of a query level): what its FROM reads, for resolving virtual columns. */
interface Branch {
  parent?: Branch;
  /** Nesting depth of the level (expressions at exactly this depth are its own, not in calls). */
  depth: number;
  /** Table expressions of FROM/JOIN; `virtual` when the engine gives the table virtual columns. */
  sources: Array<{ alias?: string; name?: string; table?: ResolvedTable; virtual: boolean }>;
  /** Virtual column names this SELECT redefines as an alias (`expr AS _table`). */
  shadowed: Set<string>;
  /** The clause whose top-level expression is being walked. */
  clause?: string;
}

/** A use of a name-bearing virtual column: tokens [start, end), optionally qualified. */
interface VirtualUse {
  branch: Branch;
  column: string;
  start: number;
  end: number;
  qualifier?: string;
  /** A whole item of the SELECT list (it then keeps its output name). */
  projection: boolean;
}

function hasCte(scope: Scope | undefined, name: string): boolean {
  for (let s = scope; s; s = s.parent) if (s.ctes.has(name)) return true;
  return false;
}

/** Analyses one user query; throws PipitError (403 forbidden / 404 not found / 400 syntax). */
export function analyzeQuery(sql: string, scope: SqlScope, opts: AnalyzeOptions = {}): AnalyzedQuery {
  let toks: Token[];
  try {
    toks = tokenize(sql, { params: opts.params });
  } catch (e) {
    throw syntax(e);
  }
  const maxTokens = opts.maxTokens ?? 200_000;
  if (toks.length > maxTokens) throw new PipitError('bad_request', `The query is too large: more than ${maxTokens} tokens`);
  const a = new Analyzer(toks, scope, opts.maxDepth ?? 128, opts.settingsAsName ?? false);
  try {
    a.run();
  } catch (e) {
    throw syntax(e);
  }
  a.resolveVirtuals();
  return { sql: a.serialize(), format: a.format, tables: a.tables, refs: a.refs };
}

function syntax(e: unknown): unknown {
  if (e instanceof SqlSyntaxError) return new PipitError('bad_request', `Syntax error: ${e.message}`);
  return e;
}

class Analyzer {
  private i = 0;
  private depth = 0;
  format?: string;
  /** Token index range [start, end) → replacement text. */
  private readonly replacements = new Map<number, { end: number; text: string }>();
  /** Index of the first token not to serialise (trailing FORMAT / `;`). */
  private stop: number;
  readonly tables: ResolvedTable[] = [];
  readonly refs: Array<{ name: string; start: number; end: number; unaliased: boolean }> = [];
  private readonly virtualUses: VirtualUse[] = [];

  constructor(
    private readonly toks: Token[],
    private readonly scope: SqlScope,
    private readonly maxDepth: number,
    private readonly settingsAsName: boolean,
  ) {
    this.stop = toks.length - 1;
  }

  private peek(k = 0): Token {
    return this.toks[Math.min(this.i + k, this.toks.length - 1)];
  }
  private next(): Token {
    const t = this.peek();
    if (t.type !== 'eof') this.i++;
    return t;
  }
  private isWord(t: Token, w: string): boolean {
    return t.type === 'word' && t.upper === w;
  }
  private isOp(t: Token, o: string): boolean {
    return t.type === 'op' && t.text === o;
  }
  private fail(msg: string, t: Token = this.peek()): never {
    throw new SqlSyntaxError(`${msg} at position ${t.pos + 1}`, t.pos);
  }
  private enter(): void {
    if (++this.depth > this.maxDepth) throw new PipitError('bad_request', `The query is too deep: more than ${this.maxDepth} levels of nesting`);
  }

  run(): void {
    const first = this.peek();
    if (first.type === 'eof') throw new PipitError('bad_request', 'The query is empty');
    this.query(undefined, false);
    const t = this.peek();
    if (t.type !== 'eof') this.fail(`unexpected '${t.text}'`);
  }

  /**
   * Whether tokens from `k` start a query: SELECT, WITH, FROM, or parentheses around one.
   * `(FROM t SELECT ...)` is a subquery wherever a parenthesis opens (ClickHouse has no other
   * `(FROM` construct), so it must be walked as one, or its table would go unchecked.
   */
  private startsQuery(k: number): boolean {
    let j = k;
    while (this.isOp(this.toks[j], '(')) j++;
    const t = this.toks[j];
    this.refuseExplain(j);
    return this.isWord(t, 'SELECT') || this.isWord(t, 'WITH') || this.isWord(t, 'FROM');
  }

  /**
   * `(EXPLAIN ...)` is a table/scalar subquery for ClickHouse (it runs the explained query's
   * analysis, e.g. over another database's table): refused wherever a parenthesis opens.
   */
  private refuseExplain(k: number): void {
    let j = k;
    while (this.isOp(this.toks[j], '(')) j++;
    if (j > 0 && this.isOp(this.toks[j - 1], '(') && this.isWord(this.toks[j], 'EXPLAIN')) {
      throw forbidden('Forbidden query: only SELECT queries are allowed, not EXPLAIN');
    }
  }

  /** One query level: from its first token to the closing `)` (inParens) or the end. */
  private query(parent: Scope | undefined, inParens: boolean): void {
    this.enter();
    const newBranch = (): Branch => ({ parent: parent?.branch, depth: this.depth, sources: [], shadowed: new Set() });
    const scope: Scope = { ctes: new Set(), parent, branch: newBranch() };
    type State = 'start' | 'with' | 'expr' | 'table' | 'afterTable';
    let state: State = 'start';
    /** Current clause, for the keywords whose meaning depends on it (FROM inside WITH FILL). */
    let clause = 'start';
    /** Inside ON/USING/SAMPLE of a join chain: a comma starts another table. */
    let inJoin = false;
    let withItemStart = false;
    let recursive = false;
    for (;;) {
      const t = this.peek();
      if (t.type === 'eof') {
        if (inParens) this.fail('unbalanced parentheses: missing )');
        break;
      }
      if (this.isOp(t, ')')) {
        if (!inParens) this.fail("unbalanced parentheses: unexpected ')'");
        break;
      }
      if (this.isOp(t, ';')) {
        if (!inParens && this.peek(1).type === 'eof') {
          this.stop = Math.min(this.stop, this.i);
          this.i++;
          break;
        }
        throw forbidden('Forbidden query: only one statement is allowed; remove the ;');
      }
      if (t.type === 'word') {
        const w = t.upper;
        if (w === 'SETTINGS' && !this.settingsAsName) throw forbidden('Forbidden query: SETTINGS clauses are not allowed');
        if (w === 'INTO') throw forbidden('Forbidden query: INTO OUTFILE is not allowed');
        if (w === 'FORMAT' && this.isFormatClause()) {
          this.formatClause(inParens);
          continue;
        }
      }
      switch (state) {
        case 'start': {
          if (this.isWord(t, 'WITH')) {
            this.next();
            if (this.isWord(this.peek(), 'RECURSIVE')) {
              this.next();
              recursive = true;
            }
            state = 'with';
            clause = 'with';
            withItemStart = true;
          } else if (this.isWord(t, 'SELECT')) {
            this.next();
            state = 'expr';
            clause = 'select';
          } else if (this.isWord(t, 'FROM')) {
            this.next();
            state = 'table';
            clause = 'from';
          } else if (this.isOp(t, '(')) {
            this.next();
            this.query(scope, true);
            this.expect(')');
            state = 'expr';
            clause = 'union';
          } else {
            const what = t.type === 'word' ? t.upper : t.text;
            if (t.type === 'word' && STATEMENT_NAMES.test(what)) throw forbidden(`Forbidden query: only SELECT queries are allowed, not ${what}`);
            // Not a statement at all (`SELEC 1`): a syntax error (400), not a refusal.
            this.fail(`expected SELECT or WITH, found '${t.text}'`, t);
          }
          break;
        }
        case 'with': {
          if (withItemStart) {
            withItemStart = false;
            // `name AS (query)` is a CTE; anything else is `expression AS alias`.
            if ((t.type === 'word' || t.type === 'qident') && this.isWord(this.peek(1), 'AS') && this.isOp(this.peek(2), '(') && this.startsQuery(this.i + 3)) {
              const name = identName(t);
              this.i += 3;
              if (recursive) scope.ctes.add(name);
              this.query(scope, true);
              this.expect(')');
              scope.ctes.add(name);
              break;
            }
          }
          if (this.isOp(t, ',')) {
            this.next();
            withItemStart = true;
          } else if (this.isWord(t, 'SELECT')) {
            this.next();
            state = 'expr';
            clause = 'select';
          } else if (this.isWord(t, 'FROM') && !this.isDistinctFrom()) {
            this.next();
            state = 'table';
            clause = 'from';
          } else this.expressionToken(scope);
          break;
        }
        case 'table': {
          this.tableExpression(scope);
          state = 'afterTable';
          break;
        }
        case 'afterTable': {
          if (t.type === 'word') {
            const w = t.upper;
            if (w === 'FINAL') {
              this.next();
              break;
            }
            if (w === 'AS') {
              this.next();
              this.alias();
              break;
            }
            if (w === 'ON' || w === 'USING' || w === 'SAMPLE') {
              this.next();
              state = 'expr';
              inJoin = true;
              if (w === 'SAMPLE') clause = 'sample';
              break;
            }
            if (!CLAUSE_WORDS.has(w) && !AFTER_FROM.has(w)) {
              this.alias();
              break;
            }
          } else if (t.type === 'qident') {
            this.alias();
            break;
          } else if (this.isOp(t, ',')) {
            this.next();
            state = 'table';
            break;
          }
          state = 'expr';
          break;
        }
        case 'expr': {
          if (t.type === 'word') {
            const w = t.upper;
            if (w === 'SELECT') {
              this.next();
              clause = 'select';
              inJoin = false;
              break;
            }
            if (w === 'FROM' && !this.isDistinctFrom()) {
              if (clause === 'select' || clause === 'start') {
                this.next();
                state = 'table';
                clause = 'from';
                break;
              }
              // Outside the SELECT list only `WITH FILL FROM` (ORDER BY) and `IS DISTINCT FROM`
              // take FROM; anything else would be a table the walker did not check.
              if (clause !== 'order') this.fail('unexpected FROM');
            }
            // ARRAY JOIN is recognised as the keyword pair, so a table aliased `array` followed by
            // a real JOIN (`FROM t AS array JOIN other`) still gets its joined table checked.
            if (w === 'ARRAY' && this.isWord(this.peek(1), 'JOIN')) {
              this.i += 2;
              clause = 'array';
              inJoin = false;
              break;
            }
            if (w === 'JOIN') {
              this.next();
              state = 'table';
              clause = 'from';
              inJoin = false;
              break;
            }
            if ((w === 'UNION' || w === 'EXCEPT' || w === 'INTERSECT') && this.isSetOperation()) {
              this.next();
              if (this.isWord(this.peek(), 'ALL') || this.isWord(this.peek(), 'DISTINCT')) this.next();
              scope.branch = newBranch();
              state = 'start';
              clause = 'start';
              inJoin = false;
              break;
            }
            // UNION/INTERSECT always combine queries (only EXCEPT doubles as `* EXCEPT (col)`).
            if (w === 'UNION' || w === 'INTERSECT') this.fail(`expected a query after ${w}`);
            // `q1 PARALLEL WITH q2` runs several statements; past the WITH clause, WITH only
            // introduces modifiers (WITH TOTALS/FILL/TIES/ROLLUP/CUBE).
            if (w === 'PARALLEL' && this.isWord(this.peek(1), 'WITH')) throw forbidden('Forbidden query: only one statement is allowed, not PARALLEL WITH');
            if (w === 'WITH' && !WITH_MODIFIERS.has(this.peek(1).upper)) this.fail('unexpected WITH');
            // `SAMPLE k OFFSET m, other_table`: the OFFSET of SAMPLE does not end the table list.
            if (w === 'OFFSET' && clause === 'sample') {
              this.expressionToken(scope);
              break;
            }
            if (AFTER_FROM.has(w)) {
              inJoin = false;
              clause = w.toLowerCase();
            }
          } else if (this.isOp(t, ',') && inJoin) {
            this.next();
            state = 'table';
            inJoin = false;
            break;
          }
          scope.branch.clause = clause;
          this.expressionToken(scope);
          break;
        }
      }
    }
    if (state === 'start' || state === 'table') this.fail('incomplete query');
    this.depth--;
  }

  /**
   * Whether FORMAT at the current token is a FORMAT clause (`... <expression end> FORMAT Name`)
   * rather than a column or function called `format`.
   */
  private isFormatClause(): boolean {
    const next = this.peek(1);
    if (next.type !== 'word' && next.type !== 'qident') return false;
    const prev = this.toks[this.i - 1];
    if (!prev) return false;
    // Found by the SQL corpus: the select list may start after `DISTINCT ON (...)`, `TOP n`,
    // `TOP n WITH TIES` and `SELECT ALL`, where `format` is a column as for ClickHouse's parser.
    if (this.startsSelectList(this.i - 1)) return false;
    if (prev.type === 'number' || prev.type === 'string' || prev.type === 'qident' || prev.type === 'param') return true;
    if (prev.type === 'op') return prev.text === ')' || prev.text === ']' || prev.text === '*';
    return prev.type === 'word' && !EXPECTS_EXPRESSION.has(prev.upper);
  }

  /** Whether the token at `k` ends a select-list prefix (`SELECT ALL`, `DISTINCT ON (..)`, `TOP n [WITH TIES]`). */
  private startsSelectList(k: number): boolean {
    const t = (j: number) => this.toks[j] as Token | undefined;
    const word = (j: number, w: string) => {
      const x = t(j);
      return x !== undefined && this.isWord(x, w);
    };
    const prev = t(k);
    if (!prev) return false;
    if (word(k, 'ALL')) return word(k - 1, 'SELECT');
    if (word(k, 'TIES')) return word(k - 1, 'WITH') && t(k - 2)?.type === 'number' && word(k - 3, 'TOP');
    if (prev.type === 'number') return word(k - 1, 'TOP');
    if (this.isOp(prev, ')')) {
      let depth = 0;
      for (let j = k; j >= 0; j--) {
        const x = this.toks[j];
        if (this.isOp(x, ')')) depth++;
        else if (this.isOp(x, '(') && --depth === 0) return word(j - 1, 'ON') && word(j - 2, 'DISTINCT');
      }
    }
    return false;
  }

  /** FROM of `a IS [NOT] DISTINCT FROM b` (an operator, not a clause). */
  private isDistinctFrom(): boolean {
    const p = (k: number) => this.toks[this.i - k];
    if (!p(1) || !this.isWord(p(1), 'DISTINCT') || !p(2)) return false;
    return this.isWord(p(2), 'IS') || (this.isWord(p(2), 'NOT') && p(3) !== undefined && this.isWord(p(3), 'IS'));
  }

  /** UNION/EXCEPT/INTERSECT followed by a query (not `* EXCEPT (col)`). */
  private isSetOperation(): boolean {
    let k = this.i + 1;
    if (this.isWord(this.toks[k], 'ALL') || this.isWord(this.toks[k], 'DISTINCT')) k++;
    return this.startsQuery(k);
  }

  private expect(op: string): void {
    const t = this.peek();
    if (!this.isOp(t, op)) this.fail(`expected '${op}'`);
    this.next();
  }

  /** `FORMAT name` is allowed once, at the very end of the outermost query. */
  private formatClause(inParens: boolean): void {
    const start = this.i;
    this.next();
    const nameTok = this.next();
    const end = this.peek();
    const atEnd = end.type === 'eof' || (this.isOp(end, ';') && this.peek(1).type === 'eof');
    if (this.isWord(end, 'SETTINGS')) throw forbidden('Forbidden query: SETTINGS clauses are not allowed');
    if (this.isWord(end, 'INTO')) throw forbidden('Forbidden query: INTO OUTFILE is not allowed');
    if (inParens || !atEnd || (nameTok.type !== 'word' && nameTok.type !== 'qident')) {
      throw forbidden('Forbidden query: FORMAT is only allowed once, at the end of the query');
    }
    const name = identName(nameTok);
    const f = OUTPUT_FORMATS[name.toLowerCase()];
    if (!f) throw forbidden(`invalid format, available ones: ${FORMAT_LIST}`);
    this.format = f.name;
    this.stop = Math.min(this.stop, start);
    if (this.isOp(end, ';')) this.next();
  }

  /** An alias after a table expression, with an optional column list `t(a, b)`. */
  private alias(): void {
    const t = this.next();
    if (t.type !== 'word' && t.type !== 'qident') this.fail('expected an alias', t);
    if (this.isOp(this.peek(), '(')) {
      this.next();
      this.group(undefined, ')');
    }
  }

  /** One table expression after FROM / JOIN / a comma. */
  private tableExpression(scope: Scope): void {
    const t = this.peek();
    if (this.isOp(t, '(')) {
      if (!this.startsQuery(this.i + 1)) this.fail('expected a subquery');
      this.next();
      this.query(scope, true);
      this.expect(')');
      // A subquery has no virtual columns.
      scope.branch.sources.push({ alias: this.aliasAhead(), virtual: false });
      return;
    }
    if ((t.type === 'word' || t.type === 'qident') && this.isOp(this.peek(1), '(')) {
      const name = identName(t);
      if (!ALLOWED_TABLE_FUNCTIONS.has(name.toLowerCase())) throw forbidden(`The query uses disabled table functions: '${name}'`);
      scope.branch.sources.push({ name, virtual: true });
      const start = this.i;
      this.i += 2;
      this.group(scope, ')');
      // Found by the SQL corpus: the engine refuses zeros()/zeros_mt() on read-only Sessions
      // (they are not registered as allowed in readonly mode, unlike numbers()), so they become the
      // same rows from numbers(): `(SELECT toUInt8(0) AS zero FROM numbers(N))`.
      const lower = name.toLowerCase();
      if (lower === 'zeros' || lower === 'zeros_mt') {
        this.replacements.set(start, { end: start + 1, text: `(SELECT toUInt8(0) AS zero FROM ${lower === 'zeros' ? 'numbers' : 'numbers_mt'}` });
        this.replacements.set(this.i - 1, { end: this.i, text: '))' });
      }
      return;
    }
    if (t.type !== 'word' && t.type !== 'qident') this.fail('expected a table');
    this.tableName(scope, true);
  }

  /**
   * A table name (`name`, `db.name`) at the current token. In FROM it must resolve; after IN it is
   * only rewritten when it names a resource (it may be a column or an alias there).
   */
  private tableName(scope: Scope, inFrom: boolean): void {
    const start = this.i;
    const first = this.next();
    const parts = [identName(first)];
    while (this.isOp(this.peek(), '.') && (this.peek(1).type === 'word' || this.peek(1).type === 'qident')) {
      this.next();
      parts.push(identName(this.next()));
    }
    const end = this.i;
    if (parts.length === 1) {
      const name = parts[0];
      if (hasCte(scope, name)) {
        if (inFrom) scope.branch.sources.push({ name, alias: this.aliasAhead(), virtual: false });
        return;
      }
      const r = this.scope.resolve(name);
      if (!r) {
        if (inFrom) throw notFound(`Resource '${name}' not found`);
        return;
      }
      // Pipes and nodes are subqueries (no virtual columns); data sources get theirs mapped.
      if (inFrom) scope.branch.sources.push({ name, alias: this.aliasAhead(), table: r, virtual: r.kind !== 'pipe' && r.kind !== 'node' });
      this.use(r);
      const aliased = inFrom && !this.hasAlias();
      this.refs.push({ name, start: this.toks[start].pos, end: this.toks[start].pos + this.toks[start].text.length, unaliased: aliased });
      this.replacements.set(start, { end, text: aliased ? `${r.sql} AS ${quoteName(name)}` : r.sql });
      return;
    }
    if (parts.length > 2) throw forbidden(`Forbidden query: the table name '${parts.join('.')}' is not allowed`);
    const [db, name] = parts;
    if (db.toLowerCase() === 'system') {
      if (!ALLOWED_SYSTEM_TABLES.has(name.toLowerCase())) throw forbidden(`Forbidden query: the system table 'system.${name}' is not allowed`);
      if (inFrom) scope.branch.sources.push({ name, alias: this.aliasAhead(), virtual: true });
      this.use({ name: `system.${name}`, kind: 'system', id: '', sql: `system.${name.toLowerCase()}` });
      this.replacements.set(start, { end, text: `system.${name.toLowerCase()}` });
      return;
    }
    const r = this.scope.resolveQualified?.(db, name);
    if (!r) throw forbidden(`Forbidden query: the database '${db}' is not accessible`);
    if (inFrom) scope.branch.sources.push({ name, alias: this.aliasAhead(), table: r, virtual: r.kind !== 'pipe' && r.kind !== 'node' });
    this.use(r);
    const aliased = inFrom && !this.hasAlias();
    this.replacements.set(start, { end, text: aliased ? `${r.sql} AS ${quoteName(name)}` : r.sql });
  }

  private hasAlias(): boolean {
    const t = this.peek();
    if (t.type === 'qident') return true;
    if (t.type !== 'word') return false;
    return t.upper === 'AS' || (!CLAUSE_WORDS.has(t.upper) && !AFTER_FROM.has(t.upper));
  }

  /** The alias after a table expression at the current token (`AS x` or `x`), if any. */
  private aliasAhead(): string | undefined {
    const t = this.peek();
    if (this.isWord(t, 'AS')) {
      const a = this.peek(1);
      return a.type === 'word' || a.type === 'qident' ? identName(a) : undefined;
    }
    if (t.type === 'qident' || (t.type === 'word' && !CLAUSE_WORDS.has(t.upper) && !AFTER_FROM.has(t.upper))) return identName(t);
    return undefined;
  }

  private use(r: ResolvedTable): void {
    if (!this.tables.some((x) => x.kind === r.kind && x.name === r.name)) this.tables.push(r);
  }

  /** Tokens up to the matching closer; a subquery if it starts with SELECT/WITH. */
  private group(scope: Scope | undefined, closer: ')' | ']'): void {
    this.enter();
    const s = scope ?? { ctes: new Set<string>(), branch: { depth: this.depth, sources: [], shadowed: new Set<string>() } };
    this.refuseExplain(this.i - 1);
    if (closer === ')' && this.startsQuery(this.i)) {
      this.query(s, true);
      this.expect(')');
      this.depth--;
      return;
    }
    for (;;) {
      const t = this.peek();
      if (t.type === 'eof') this.fail(`unbalanced brackets: missing ${closer}`);
      if (this.isOp(t, closer)) {
        this.next();
        break;
      }
      if (this.isOp(t, ')') || this.isOp(t, ']')) this.fail(`unexpected '${t.text}'`);
      if (this.isOp(t, ';')) throw forbidden('Forbidden query: only one statement is allowed; remove the ;');
      if (t.type === 'word') {
        if (t.upper === 'SETTINGS' && !this.settingsAsName) throw forbidden('Forbidden query: SETTINGS clauses are not allowed');
        if (t.upper === 'INTO') throw forbidden('Forbidden query: INTO OUTFILE is not allowed');
        if (t.upper === 'FORMAT' && this.isFormatClause()) throw forbidden('Forbidden query: FORMAT is only allowed once, at the end of the query');
        // A query keyword that does not open the group is no expression: fail closed rather than
        // let a query the walker did not enter reach the engine.
        if (t.upper === 'SELECT' || t.upper === 'UNION' || t.upper === 'INTERSECT') this.fail(`unexpected ${t.upper}`);
      }
      this.expressionToken(s);
    }
    this.depth--;
  }

  /** One step through an expression: calls, subqueries, brackets, IN targets, qualified names. */
  private expressionToken(scope: Scope): void {
    const t = this.peek();
    this.noteVirtual(scope);
    if (this.isOp(t, '(')) {
      this.next();
      this.group(scope, ')');
      return;
    }
    if (this.isOp(t, '[')) {
      this.next();
      this.group(scope, ']');
      return;
    }
    if (((t.type === 'word' && !this.isOperatorWord(t)) || t.type === 'qident') && this.isOp(this.peek(1), '(')) {
      this.call(scope);
      return;
    }
    if (t.type === 'word' && t.upper === 'IN') {
      // `in(x, db.t)` written as a function (not after an operand) reads its second argument as a
      // table, like the operator: refused as the function `in` is.
      if (this.isOp(this.peek(1), '(') && !this.afterOperand()) throw forbidden(`The query uses disabled functions: '${t.text}'`);
      this.next();
      this.inTarget(scope);
      return;
    }
    if (t.type === 'word' && t.upper === 'APPLY') {
      // `* APPLY(f)` / `* APPLY f` calls the function named f on every column.
      let k = 1;
      while (this.isOp(this.peek(k), '(')) k++;
      this.refuseFunctionReference(k);
    }
    if ((t.type === 'word' || t.type === 'qident') && this.isOp(this.peek(1), '.') && (this.peek(2).type === 'word' || this.peek(2).type === 'qident')) {
      const prev = this.toks[this.i - 1];
      // A qualifier (not a `.field` continuation of an earlier name).
      if (!prev || !this.isOp(prev, '.')) {
        const first = identName(t);
        if (first.toLowerCase() === 'system' || looksLikeDatabase(first, this.scope.databases)) {
          throw forbidden(`Forbidden query: the database '${first}' is not accessible`);
        }
      }
    }
    this.next();
  }

  /** Whether the previous token (skipping NOT/GLOBAL of `x GLOBAL NOT IN`) ends an operand. */
  private afterOperand(): boolean {
    let k = this.i - 1;
    while (k >= 0 && (this.isWord(this.toks[k], 'NOT') || this.isWord(this.toks[k], 'GLOBAL'))) k--;
    const p = this.toks[k];
    if (!p) return false;
    if (p.type === 'number' || p.type === 'string' || p.type === 'qident') return true;
    if (p.type === 'op') return p.text === ')' || p.text === ']';
    return p.type === 'word' && !EXPECTS_EXPRESSION.has(p.upper) && !CLAUSE_WORDS.has(p.upper);
  }

  /**
   * A bare name at token offset `k` that ClickHouse resolves as a function reference: after APPLY
   * and as the first argument of the higher-order array and map functions (`arrayMap(file, [...])`
   * calls file on every element). A denied function is refused there as if it were called.
   */
  private refuseFunctionReference(k: number, parens = 0, needsNextArgument = false): void {
    const t = this.peek(k);
    if (t.type !== 'word' && t.type !== 'qident') return;
    const after = this.peek(k + 1);
    if (this.isOp(after, '(') || this.isOp(after, '.')) return;
    if (needsNextArgument) {
      // `arraySum(user)` sums an array column; only `f(name, array...)` makes name a function.
      let j = k + 1;
      if (this.isWord(this.peek(j), 'AS')) j += 2;
      for (let p = 0; p < parens && this.isOp(this.peek(j), ')'); p++) j++;
      if (!this.isOp(this.peek(j), ',')) return;
    }
    const name = identName(t);
    const lower = name.toLowerCase();
    const denied = deniedFunction(name) ?? (lower === 'joinget' || lower === 'joingetornull' ? name : undefined);
    if (denied) throw forbidden(`The query uses disabled functions: '${denied}'`);
  }

  /** Keywords that may be followed by `(` without being function calls. */
  private isOperatorWord(t: Token): boolean {
    return (
      [
        'AND',
        'OR',
        'NOT',
        'IN',
        'AS',
        'THEN',
        'ELSE',
        'WHEN',
        'CASE',
        'IS',
        'LIKE',
        'ILIKE',
        'BETWEEN',
        'EXISTS',
        'ANY',
        'ALL',
        'ON',
        'USING',
        'BY',
        'OVER',
        'DISTINCT',
        'INTERVAL',
        'ARRAY',
        'SELECT',
        'WHERE',
        'PREWHERE',
        'HAVING',
        'QUALIFY',
        'FROM',
        'JOIN',
        'SAMPLE',
        'LIMIT',
        'OFFSET',
        'WITH',
        'TUPLE',
        'GLOBAL',
        'DESC',
        'ASC',
        'FILL',
        'STEP',
        'TO',
        'INTERPOLATE',
        'ROLLUP',
        'CUBE',
        'SETS',
        'GROUPING',
        'EXCEPT',
        'REPLACE',
        'APPLY',
        'UNION',
        'INTERSECT',
        'ORDER',
        'GROUP',
        'WINDOW',
        'PARTITION',
        'ROWS',
        'RANGE',
        'PRECEDING',
        'FOLLOWING',
        'UNBOUNDED',
        'CURRENT',
        'ROW',
      ].includes(t.upper) && !['TUPLE', 'EXISTS', 'ANY', 'ALL', 'REPLACE', 'ARRAY', 'GROUPING', 'ROLLUP', 'CUBE', 'INTERVAL', 'NOT'].includes(t.upper)
    );
  }

  /** A function call at the current token. */
  private call(scope: Scope): void {
    const nameTok = this.next();
    const name = identName(nameTok);
    const denied = deniedFunction(name);
    const lower = name.toLowerCase();
    if (lower === 'joinget' || lower === 'joingetornull') {
      this.next(); // (
      const arg = this.peek();
      if (arg.type !== 'string') throw forbidden(`Forbidden query: ${name} needs the name of a Join data source as its first argument`);
      const ds = stringValue(arg);
      const physical = this.scope.resolveJoinTable?.(ds);
      if (!physical) throw notFound(`Resource '${ds}' not found (${name} needs a Data Source with the Join engine)`);
      const r = this.scope.resolve(ds);
      if (r) this.use(r);
      this.replacements.set(this.i, { end: this.i + 1, text: quoteLiteral(physical) });
      this.next();
      this.group(scope, ')');
      return;
    }
    if (denied) throw forbidden(`The query uses disabled functions: '${denied}'`);
    if (lower.startsWith('array') || lower.startsWith('map')) {
      // First argument of a higher-order function: `(name)` and `name AS alias` are references too.
      let k = 1;
      while (this.isOp(this.peek(k), '(')) k++;
      this.refuseFunctionReference(k, k - 1, true);
    }
    this.next(); // (
    this.group(scope, ')');
  }

  /** The right side of IN: a subquery, a table (possibly in parentheses), or an expression. */
  private inTarget(scope: Scope): void {
    const t = this.peek();
    const isName = (k: number) => {
      const x = this.peek(k);
      return (x.type === 'word' && !this.isOp(this.peek(k + 1), '(')) || x.type === 'qident';
    };
    if (isName(0)) {
      this.tableName(scope, false);
      return;
    }
    if (this.isOp(t, '(') && isName(1)) {
      // `IN (name)` and `IN (db.name)` are table references for ClickHouse too.
      let k = 2;
      while (this.isOp(this.peek(k), '.') && (this.peek(k + 1).type === 'word' || this.peek(k + 1).type === 'qident')) k += 2;
      if (this.isOp(this.peek(k), ')')) {
        this.next();
        this.tableName(scope, false);
        this.expect(')');
        return;
      }
    }
  }

  /**
   * Notes a use of `_table` / `_database` at the current token (`_table`, `t._table`), or a
   * redefinition of one as an alias (`expr AS _table`), for resolveVirtuals().
   */
  private noteVirtual(scope: Scope): void {
    const t = this.peek();
    if (t.type !== 'word' && t.type !== 'qident') return;
    const isVirtual = (x: Token) => (x.type === 'word' || x.type === 'qident') && NAME_VIRTUALS.has(identName(x));
    const prev = this.toks[this.i - 1] as Token | undefined;
    const branch = scope.branch;
    const start = this.i;
    let end = this.i + 1;
    let qualifier: string | undefined;
    let column: string;
    if (this.isOp(this.peek(1), '.') && isVirtual(this.peek(2)) && !(prev && this.isOp(prev, '.'))) {
      // `q._table`: q names a table of the query (or is a tuple column, then it is left alone).
      if (this.isOp(this.peek(3), '.') || this.isOp(this.peek(3), '(')) return;
      qualifier = identName(t);
      column = identName(this.peek(2));
      end = this.i + 3;
    } else {
      if (!isVirtual(t) || (prev && this.isOp(prev, '.')) || this.isOp(this.peek(1), '(') || this.isOp(this.peek(1), '.')) return;
      column = identName(t);
      if (prev && this.isWord(prev, 'AS')) {
        branch.shadowed.add(column);
        return;
      }
      // Which uses a lambda parameter would shadow is the lambda body's extent: refused instead.
      if (this.isLambdaParameter(this.i)) throw new PipitError('bad_request', `${column} is the name of a virtual column and can not name a lambda parameter`);
    }
    const before = this.toks[start - 1] as Token | undefined;
    const after = this.toks[end];
    const projection =
      branch.clause === 'select' &&
      this.depth === branch.depth &&
      !!before &&
      (this.isWord(before, 'SELECT') || this.isWord(before, 'DISTINCT') || this.isWord(before, 'ALL') || this.isOp(before, ',')) &&
      (after.type === 'eof' ||
        this.isOp(after, ',') ||
        this.isOp(after, ')') ||
        this.isOp(after, ';') ||
        (after.type === 'word' && (after.upper === 'FROM' || after.upper === 'FORMAT' || CLAUSE_WORDS.has(after.upper)) && after.upper !== 'AS'));
    this.virtualUses.push({ branch, column, start, end, qualifier, projection });
  }

  /** Whether the name at token k is a lambda parameter: `x -> ...` or `(a, x) -> ...`. */
  private isLambdaParameter(k: number): boolean {
    const at = (j: number) => this.toks[Math.max(0, Math.min(j, this.toks.length - 1))];
    const isName = (x: Token) => x.type === 'word' || x.type === 'qident';
    if (this.isOp(at(k + 1), '->')) return true;
    let j = k;
    while (j >= 2 && this.isOp(at(j - 1), ',') && isName(at(j - 2))) j -= 2;
    if (j < 1 || !this.isOp(at(j - 1), '(')) return false;
    let e = k + 1;
    while (this.isOp(at(e), ',') && isName(at(e + 1))) e += 2;
    return this.isOp(at(e), ')') && this.isOp(at(e + 1), '->');
  }

  /**
   * Replaces every use of `_table` / `_database` that the engine would answer from a data source
   * with the user-facing value (the data source's name, the workspace's name), as a constant of
   * the same type, so physical names never reach results. Uses the engine resolves elsewhere (a
   * real column of that name, an alias, system tables, table functions) are left alone; an
   * unqualified use between several tables is refused (which table it names is the engine's
   * guess).
   */
  resolveVirtuals(): void {
    for (const u of this.virtualUses) {
      let target: ResolvedTable | undefined;
      if (u.qualifier !== undefined) {
        for (let b: Branch | undefined = u.branch; b && !target; b = b.parent) {
          const src = b.sources.find((x) => x.alias === u.qualifier || (x.alias === undefined && x.name === u.qualifier));
          if (src) {
            target = src.table;
            break;
          }
        }
      } else {
        if (u.branch.shadowed.has(u.column)) continue;
        for (let b: Branch | undefined = u.branch; b; b = b.parent) {
          const candidates = b.sources.filter((x) => x.virtual);
          // No FROM: the engine reads system.one, which has its own (harmless) virtual columns.
          if (!b.sources.length) break;
          if (!candidates.length) continue;
          if (candidates.some((x) => x.table?.columns?.includes(u.column))) break;
          if (candidates.length > 1) {
            if (candidates.some((x) => x.table?.virtuals)) {
              throw new PipitError(
                'bad_request',
                `The virtual column ${u.column} is ambiguous in a query reading several tables: qualify it with the table's name or alias (e.g. t.${u.column})`,
              );
            }
            break;
          }
          target = candidates[0].table;
          break;
        }
      }
      if (!target?.virtuals || target.columns?.includes(u.column)) continue;
      const value = `toLowCardinality(${quoteLiteral(target.virtuals[u.column as '_table' | '_database'])})`;
      const name = u.qualifier !== undefined ? `${u.qualifier}.${u.column}` : u.column;
      this.replacements.set(u.start, { end: u.end, text: u.projection ? `${value} AS ${quoteName(name)}` : value });
    }
  }

  /** The checked statement, re-serialised from its tokens. */
  serialize(): string {
    let out = '';
    let afterReplacement = false;
    for (let i = 0; i < this.stop; ) {
      const t = this.toks[i];
      const r = this.replacements.get(i);
      if (out && (t.spaced || r || afterReplacement)) out += ' ';
      if (r) {
        out += r.text;
        i = r.end;
        afterReplacement = true;
      } else {
        out += t.text;
        i++;
        afterReplacement = false;
      }
    }
    return out;
  }
}
