import { describe, expect, it } from 'vitest';
import { CronError, dueTick, nextTick, parseCron } from './cron.js';

const d = (s: string) => new Date(s);
const next = (cron: string, after: string) => nextTick(parseCron(cron), d(after)).toISOString();

describe('cron', () => {
  it('next ticks', () => {
    expect(next('*/15 * * * *', '2030-01-01T00:07:00Z')).toBe('2030-01-01T00:15:00.000Z');
    expect(next('0 * * * *', '2030-01-01T00:00:00Z')).toBe('2030-01-01T01:00:00.000Z');
    expect(next('30 2 * * *', '2030-01-01T03:00:00Z')).toBe('2030-01-02T02:30:00.000Z');
    expect(next('0 0 1 * *', '2030-01-15T00:00:00Z')).toBe('2030-02-01T00:00:00.000Z');
    expect(next('0 9 * * mon-fri', '2030-01-04T10:00:00Z')).toBe('2030-01-07T09:00:00.000Z'); // Friday → Monday
    expect(next('0 0 29 2 *', '2030-03-01T00:00:00Z')).toBe('2032-02-29T00:00:00.000Z');
    expect(next('@hourly', '2030-01-01T00:59:59Z')).toBe('2030-01-01T01:00:00.000Z');
    expect(next('0 0 1,15 * 0', '2030-01-02T00:00:00Z')).toBe('2030-01-06T00:00:00.000Z'); // either day field matches
    expect(next('5-10/5 * * * *', '2030-01-01T00:05:00Z')).toBe('2030-01-01T00:10:00.000Z');
  });
  it('the tick owed since a time is the latest due one', () => {
    const c = parseCron('*/5 * * * *');
    expect(dueTick(c, d('2030-01-01T00:00:00Z'), d('2030-01-01T00:04:59Z'))).toBeNull();
    expect(dueTick(c, d('2030-01-01T00:00:00Z'), d('2030-01-01T00:27:00Z'))!.toISOString()).toBe('2030-01-01T00:25:00.000Z');
  });
  it('invalid expressions', () => {
    for (const bad of ['', '* * * *', '60 * * * *', '* 24 * * *', '* * 0 * *', '* * * 13 *', '*/0 * * * *', '5-1 * * * *', 'every minute', '0 0 31 2 *'])
      expect(() => nextTick(parseCron(bad), d('2030-01-01T00:00:00Z')), bad).toThrow(CronError);
  });
});
