/**
 * The SQL editor: CodeMirror 6 with a ClickHouse dialect (keywords, types, functions, backtick
 * identifiers, `#` comments) and completion of the workspace's data sources, pipes, their columns
 * and the nodes of the pipe being edited. Tab is left to the browser (focus moves on), so the
 * editor never traps the keyboard; Ctrl/Cmd+Enter runs.
 *
 * Each editor lives in a shadow root: CodeMirror then installs its styles as a constructed
 * stylesheet (adoptedStyleSheets) instead of a <style> element, which the page's strict
 * Content-Security-Policy (style-src 'self', no 'unsafe-inline', no nonce) would refuse.
 */
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap, type CompletionContext, type CompletionResult } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { bracketMatching, defaultHighlightStyle, indentOnInput, syntaxHighlighting } from '@codemirror/language';
import { sql, SQLDialect, type SQLNamespace } from '@codemirror/lang-sql';
import { Compartment, EditorState, Prec } from '@codemirror/state';
import { drawSelection, EditorView, highlightActiveLine, highlightSpecialChars, keymap, lineNumbers, placeholder } from '@codemirror/view';
import { rows } from './api';

const KEYWORDS =
  'select from where group by order limit offset having with as and or not in is null like ilike between case when then else end distinct ' +
  'join inner left right full outer cross array any all asof semi anti on using union intersect except prewhere final sample format ' +
  'settings asc desc nulls first last interval global if exists true false by totals rollup cube window over partition rows range ' +
  'preceding following unbounded current row qualify fill step to';

const TYPES =
  'UInt8 UInt16 UInt32 UInt64 UInt128 UInt256 Int8 Int16 Int32 Int64 Int128 Int256 Float32 Float64 BFloat16 Decimal Decimal32 Decimal64 ' +
  'Decimal128 Decimal256 Bool Boolean String FixedString UUID Date Date32 DateTime DateTime64 Enum8 Enum16 Array Tuple Map Nullable ' +
  'LowCardinality IPv4 IPv6 JSON Dynamic Variant Nested SimpleAggregateFunction AggregateFunction Nothing';

const FUNCTIONS =
  'count sum avg min max any anyLast argMin argMax uniq uniqExact uniqCombined groupArray groupUniqArray quantile quantiles quantileExact ' +
  'quantileTiming median countIf sumIf avgIf uniqIf minIf maxIf countState sumState avgState uniqState countMerge sumMerge avgMerge uniqMerge ' +
  'toDate toDateTime toDateTime64 toStartOfMinute toStartOfFiveMinutes toStartOfFifteenMinutes toStartOfHour toStartOfDay toStartOfWeek ' +
  'toStartOfMonth toStartOfYear toStartOfInterval toYYYYMM toYYYYMMDD toYear toMonth toDayOfMonth toDayOfWeek toHour toMinute now today ' +
  'yesterday dateDiff dateAdd dateSub addDays addHours formatDateTime parseDateTimeBestEffort parseDateTimeBestEffortOrNull ' +
  'toString toInt32 toInt64 toUInt32 toUInt64 toFloat64 toDecimal64 toUInt8 toInt8 CAST accurateCastOrNull toTypeName ' +
  'concat substring lower upper length trim replaceAll replaceOne splitByChar splitByString position positionCaseInsensitive match extract ' +
  'extractAll startsWith endsWith empty notEmpty coalesce ifNull nullIf assumeNotNull isNull isNotNull multiIf round floor ceil abs ' +
  'intDiv modulo greatest least arrayJoin arrayMap arrayFilter arrayExists has hasAny hasAll indexOf arraySort arrayDistinct ' +
  'JSONExtract JSONExtractString JSONExtractInt JSONExtractFloat JSONExtractBool JSONExtractRaw JSONHas visitParamExtractString ' +
  'cityHash64 sipHash64 MD5 halfMD5 generateUUIDv4 rand number numbers zeros tupleElement mapKeys mapValues bar formatReadableSize ' +
  'formatReadableQuantity runningDifference neighbor row_number rank dense_rank lagInFrame leadInFrame topK windowFunnel retention ' +
  'sequenceMatch domain domainWithoutWWW path protocol cutQueryString URLHierarchy geoToH3 greatCircleDistance';

export const ClickHouse = SQLDialect.define({
  keywords: KEYWORDS,
  types: TYPES,
  builtin: FUNCTIONS,
  backslashEscapes: true,
  hashComments: true,
  identifierQuotes: '`"',
  doubleQuotedStrings: false,
  operatorChars: '*+-%<>!=&|^/?:',
  caseInsensitiveIdentifiers: false,
});

/** The workspace's names for completion, shared by every editor on the page. */
export interface CompletionSchema {
  /** data source / pipe / node name → its column names */
  tables: Record<string, string[]>;
}

let functionNames: string[] | null = null;
/** Function names from the server (system.functions is readable), loaded once; the static list otherwise. */
async function loadFunctions(): Promise<string[]> {
  if (functionNames) return functionNames;
  try {
    const r = await rows<{ name: string }>("SELECT name FROM system.functions WHERE NOT startsWith(name, '_') ORDER BY name");
    functionNames = r.map((x) => x.name);
  } catch {
    functionNames = FUNCTIONS.split(' ');
  }
  return functionNames;
}

function functionCompletion(context: CompletionContext): Promise<CompletionResult | null> | null {
  const word = context.matchBefore(/[A-Za-z_][A-Za-z0-9_]*/);
  if (!word || (word.from === word.to && !context.explicit)) return null;
  return loadFunctions().then((names) => ({
    from: word.from,
    options: names.map((n) => ({ label: n, type: 'function', boost: -1 })),
    validFor: /^[A-Za-z0-9_]*$/,
  }));
}

export interface SqlEditor {
  view: EditorView;
  get value(): string;
  set value(v: string);
  setSchema(schema: CompletionSchema): void;
  focus(): void;
}

export function createEditor(
  parent: HTMLElement,
  opts: { doc: string; onRun?: () => void; onChange?: (v: string) => void; label: string; schema?: CompletionSchema; minLines?: number },
): SqlEditor {
  const lang = new Compartment();
  const langFor = (schema?: CompletionSchema) => {
    const ns: SQLNamespace = {};
    for (const [t, cols] of Object.entries(schema?.tables ?? {})) ns[t] = cols;
    return sql({ dialect: ClickHouse, schema: ns, upperCaseKeywords: true });
  };
  const run = () => {
    opts.onRun?.();
    return true;
  };
  const shadow = parent.attachShadow({ mode: 'open' });
  const host = document.createElement('div');
  shadow.appendChild(host);
  const view = new EditorView({
    parent: host,
    root: shadow,
    state: EditorState.create({
      doc: opts.doc,
      extensions: [
        lineNumbers(),
        highlightSpecialChars(),
        history(),
        drawSelection(),
        indentOnInput(),
        bracketMatching(),
        closeBrackets(),
        highlightActiveLine(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        autocompletion({ activateOnTyping: true }),
        lang.of(langFor(opts.schema)),
        ClickHouse.language.data.of({ autocomplete: functionCompletion }),
        Prec.highest(
          keymap.of([
            { key: 'Mod-Enter', run },
            { key: 'Shift-Enter', run },
          ]),
        ),
        keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...historyKeymap, ...completionKeymap]),
        placeholder('SELECT … (Ctrl+Enter runs)'),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ 'aria-label': opts.label }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) opts.onChange?.(u.state.doc.toString());
        }),
        EditorView.theme({
          '&': { fontSize: '13px', maxHeight: '30rem' },
          '&.cm-focused': { outline: 'none' },
          '.cm-scroller': { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace", overflow: 'auto' },
          '.cm-content': { minHeight: `${(opts.minLines ?? 4) * 1.45}em` },
          '.cm-gutters': { backgroundColor: '#f3f5f2', borderRight: '1px solid #dde1dc' },
        }),
      ],
    }),
  });
  return {
    view,
    get value() {
      return view.state.doc.toString();
    },
    set value(v: string) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: v } });
    },
    setSchema(schema) {
      view.dispatch({ effects: lang.reconfigure(langFor(schema)) });
    },
    focus() {
      view.focus();
    },
  };
}
