/** SQL: an editor with ClickHouse highlighting and completion, the result as a table or a chart. */
import { runSql } from '../api';
import { busy, clear, errorBox, h } from '../dom';
import { createEditor } from '../editor';
import { resultView } from '../results';
import { completionSchema } from '../workspace';

const DRAFT_KEY = 'pipit.console.sql';

export function renderSql(root: HTMLElement): () => void {
  const out = h('div', { class: 'output', 'aria-live': 'polite' });
  const runButton = h('button', { type: 'button', class: 'primary', 'data-testid': 'run-sql' }, 'Run');
  const editorBox = h('div', { class: 'editor' });
  root.append(
    h('h1', null, 'SQL'),
    h(
      'p',
      { class: 'muted' },
      'SELECT over your data sources, their quarantine tables, pipes and tinybird.* service data sources. Ctrl+Enter runs; Ctrl+Space completes names.',
    ),
    editorBox,
    h(
      'div',
      { class: 'row' },
      runButton,
      h('span', { class: 'muted' }, 'Results as a table or a chart; FORMAT CSV (or another format) at the end shows the raw answer.'),
    ),
    out,
  );
  let controller: AbortController | null = null;
  const run = busy(runButton, async () => {
    controller?.abort();
    controller = new AbortController();
    sessionStorage.setItem(DRAFT_KEY, editor.value);
    clear(out, h('p', { class: 'muted' }, 'Running…'));
    try {
      const r = await runSql(editor.value, { signal: controller.signal });
      clear(out, resultView(r, { initial: 'table' }));
    } catch (err) {
      if ((err as Error).name === 'AbortError') return;
      clear(out, errorBox(err));
    }
  });
  const editor = createEditor(editorBox, {
    doc: sessionStorage.getItem(DRAFT_KEY) ?? 'SELECT number, number * number AS square\nFROM numbers(10)',
    label: 'SQL query',
    minLines: 8,
    onRun: () => void run(),
  });
  runButton.addEventListener('click', () => void run());
  void completionSchema().then((s) => editor.setSchema(s));
  editor.focus();
  return () => {
    controller?.abort();
    editor.view.destroy();
  };
}
