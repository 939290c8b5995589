/** Stored intents are parsed into their kind's shape once, as they leave the catalog. */
import { describe, expect, it } from 'vitest';
import { parseIntent, parseWorkspace } from './records.js';

const base = { id: 'j1', workspaceId: 'w1', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:01Z' };

describe('parseIntent', () => {
  it('keeps the fields of its kind, typed', () => {
    const raw = { ...base, kind: 'append', data: { database: 'd', target: 't', staging: 's', cols: ['a'], phase: 'publish', rows: 3, job: 'x', extra: 1 } };
    const i = parseIntent(JSON.parse(JSON.stringify(raw)));
    expect(i.kind).toBe('append');
    expect(JSON.parse(JSON.stringify(i.data))).toEqual({ database: 'd', target: 't', staging: 's', cols: ['a'], phase: 'publish', rows: 3, job: 'x' });
    const m = parseIntent({ ...base, kind: 'materialize', data: { pipe: 'p', node: 'n', view: 'v', created: null } });
    expect(m.data).toMatchObject({ pipe: 'p', node: 'n', view: 'v', created: null });
  });

  it.each([
    [{ ...base, kind: 'append', data: { database: 'd', target: 't', staging: 's', cols: 'a', phase: 'stage' } }, 'a stored append intent (cols) is malformed'],
    [
      { ...base, kind: 'replace', data: { database: 'd', target: 't', shadow: 's', token: 'k', quarantine: false, phase: 'done' } },
      'a stored replace intent (phase) is malformed',
    ],
    [{ ...base, kind: 'alter', data: { ds: 'x', before: null } }, 'a stored alter intent (before) is malformed'],
    [{ ...base, kind: 'drop', data: {} }, 'a stored intent has the unknown kind "drop"'],
    [{ ...base, kind: 'unlink' }, 'a stored unlink intent (data) is malformed'],
  ])('refuses a malformed intent (%#)', (raw, message) => {
    expect(() => parseIntent(raw)).toThrow(message);
  });
});

it('parseWorkspace reads the four fields and refuses a document without them', () => {
  expect(parseWorkspace({ id: 'w', name: 'n', database: 'd', createdAt: 'c' })).toEqual({ id: 'w', name: 'n', database: 'd', createdAt: 'c' });
  expect(() => parseWorkspace({ id: 'w', name: 'n' })).toThrow('a stored workspace (database) is malformed');
});
