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
    expect(userFacingNames(`in pipit_stages.${id}_sj, view \`pipit_stages\`.\`${id}_sc_bad\``, nameOf)).toBe('in events, view events');
    expect(userFacingNames(`bare ${id} here`, nameOf)).toBe('bare events here');
  });
  it('hides qualified or suffixed ids nobody can name (shadow tables, views); leaves bare ones (user input)', () => {
    const other = 't_' + 'c'.repeat(32);
    expect(userFacingNames(`Table ${db}.${other}`, nameOf)).toBe('Table <internal table>');
    expect(userFacingNames(`pushing to view ${db}.${other}_mv`, nameOf)).toBe('pushing to view <internal table>');
    expect(userFacingNames(`pushing to view ${db}.${other}_mv`, (x) => (x === other ? 'my_node' : undefined))).toBe('pushing to view my_node');
    expect(userFacingNames(`Resource '${other}' not found`, nameOf)).toBe(`Resource '${other}' not found`);
  });
  it("removes the artefacts of Pipit's own rewrites", () => {
    const cases: Array<[string, string]> = [
      [`Unknown identifier x in scope /* pipit:01ABC */ SELECT x FROM ${db}.${id} AS events`, 'Unknown identifier x in scope SELECT x FROM events AS events'],
      [`In scope SELECT * FROM (SELECT x FROM ${db}.${id}) WHERE 'pipit:01ABCXYZ' != ''.`, 'In scope SELECT x FROM events.'],
      ["While executing notEquals('pipit:01ABCXYZ', '')", "While executing notEquals('', '')"],
      [`In scope SELECT * FROM (SELECT y FROM ${db}.${id} AS e) LIMIT 0.`, 'In scope SELECT y FROM events AS e.'],
      [`In scope SELECT * FROM ${db}.${id} WHERE (_part IN ('all_1_1_0', '202401_2_2_0')) AND (nope = 1).`, 'In scope SELECT * FROM events WHERE (nope = 1).'],
      [`In scope SELECT a FROM (SELECT * FROM ${db}.${id} WHERE _part IN ('all_1_1_0')) AS e.`, 'In scope SELECT a FROM (SELECT * FROM events) AS e.'],
      [`FROM (SELECT * FROM ${db}.${id} WHERE (c > 1) AND (_part IN ('all_1_1_0'))) AS e`, 'FROM (SELECT * FROM events WHERE (c > 1)) AS e'],
      ['Table `pipit_sandbox`.x does not exist in database pipit_sandbox', 'Table x does not exist in database '],
    ];
    for (const [raw, want] of cases) {
      const got = userFacingNames(raw, nameOf);
      expect(got).toBe(want);
      expect(got).not.toMatch(/w_[0-9a-f]{32}|t_[0-9a-f]{32}|pipit:|_part IN|LIMIT 0|pipit_sandbox/);
    }
  });
  it('is applied to engine errors on every route', () => {
    const e = toHttpError(new EngineError(60, 'UNKNOWN_TABLE', `Table ${db}.${id}_sc does not exist`), nameOf);
    expect(e.status).toBe(400);
    expect(e.body.error).toBe('[Error] Table events does not exist');
  });
});
