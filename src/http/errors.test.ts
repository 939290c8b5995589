import { describe, expect, it } from 'vitest';
import { EngineError } from '../engine/engine.js';
import { userFacingNames } from '../ingest/physical.js';
import { toHttpError } from './errors.js';

const id = 't_' + 'a'.repeat(32);
const db = 'w_' + 'b'.repeat(32);
const nameOf = (x: string) => (x === id ? 'events' : undefined);

describe('userFacingNames', () => {
  it('rewrites tables, quarantine and ingest stages, quoted or not', () => {
    expect(userFacingNames(`Table ${db}.${id} does not exist`, nameOf)).toBe('Table events does not exist');
    expect(userFacingNames(`Table \`${db}\`.\`${id}_quarantine\` is broken`, nameOf)).toBe('Table events_quarantine is broken');
    expect(userFacingNames(`in ${db}.${id}_sj`, nameOf)).toBe('in events');
    expect(userFacingNames(`bare ${id} here`, nameOf)).toBe('bare events here');
  });
  it('drops the database of unknown ids rather than leaving it', () => {
    const other = 't_' + 'c'.repeat(32);
    expect(userFacingNames(`Table ${db}.${other}`, nameOf)).toBe(`Table ${other}`);
  });
  it('is applied to engine errors on every route', () => {
    const e = toHttpError(new EngineError(60, 'UNKNOWN_TABLE', `Table ${db}.${id}_sc does not exist`), nameOf);
    expect(e.status).toBe(400);
    expect(e.body.error).toBe('[Error] Table events does not exist');
  });
});
