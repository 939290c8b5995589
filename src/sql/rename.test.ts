import { describe, expect, it } from 'vitest';
import { renameTableInSql } from './rename.js';

describe('renameTableInSql', () => {
  it('renames table references only', () => {
    expect(renameTableInSql('SELECT events.x, "events" AS s FROM events WHERE x IN (SELECT x FROM `events`)', 'events', 'ev2')).toBe(
      'SELECT events.x, "events" AS s FROM ev2 AS events WHERE x IN (SELECT x FROM ev2 AS events)',
    );
    expect(renameTableInSql("SELECT 'events' FROM events_quarantine JOIN other ON 1", 'events', 'ev2')).toBe(
      "SELECT 'events' FROM ev2_quarantine JOIN other ON 1",
    );
    expect(renameTableInSql('WITH events AS (SELECT 1) SELECT * FROM events', 'events', 'ev2')).toBe('WITH events AS (SELECT 1) SELECT * FROM events');
    expect(renameTableInSql('SELECT * FROM t WHERE k IN events', 'events', 'ev2')).toBe('SELECT * FROM t WHERE k IN ev2');
    expect(renameTableInSql('SELECT e.x FROM events AS e', 'events', 'ev2')).toBe('SELECT e.x FROM ev2 AS e');
  });
  it('leaves templates to the user', () => {
    expect(renameTableInSql('% SELECT * FROM events', 'events', 'ev2')).toBeNull();
  });
});
