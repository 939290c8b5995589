/**
 * Cron schedules (UTC), as copy and sink pipes use them: five fields (minute hour day-of-month
 * month day-of-week) with `*`, lists, ranges and steps, and the `@hourly`-style shortcuts.
 */
import { badRequest } from '../basics/errors.js';

export interface Cron {
  text: string;
  minute: Set<number>;
  hour: Set<number>;
  dom: Set<number>;
  month: Set<number>;
  dow: Set<number>;
  domAny: boolean;
  dowAny: boolean;
}

const SHORTCUTS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const NAMES: Record<string, number> = {
  jan: 1,
  feb: 2,
  mar: 3,
  apr: 4,
  may: 5,
  jun: 6,
  jul: 7,
  aug: 8,
  sep: 9,
  oct: 10,
  nov: 11,
  dec: 12,
  sun: 0,
  mon: 1,
  tue: 2,
  wed: 3,
  thu: 4,
  fri: 5,
  sat: 6,
};

export class CronError extends Error {}

function field(text: string, min: number, max: number, what: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:\/(\d+))?$/i.exec(part);
    if (!m) throw new CronError(`invalid ${what} field "${text}"`);
    const num = (s: string) => {
      const n = NAMES[s.toLowerCase()] ?? (/^\d+$/.test(s) ? Number(s) : NaN);
      if (!Number.isInteger(n) || n < min || n > max + (what === 'day of week' ? 1 : 0)) throw new CronError(`invalid ${what} value "${s}"`);
      return what === 'day of week' && n === 7 ? 0 : n;
    };
    let lo = min;
    let hi = max;
    if (m[1] !== '*') {
      const [a, b] = m[1].split('-');
      lo = num(a);
      hi = b !== undefined ? num(b) : m[2] ? max : lo;
      if (hi < lo) throw new CronError(`invalid ${what} range "${m[1]}"`);
    }
    const step = m[2] ? Number(m[2]) : 1;
    if (step < 1) throw new CronError(`invalid ${what} step "${m[2]}"`);
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

/** Parses a cron expression; throws CronError with what is wrong. */
export function parseCron(text: string): Cron {
  const t = text.trim();
  const expanded = SHORTCUTS[t.toLowerCase()] ?? t;
  const parts = expanded.split(/\s+/);
  if (parts.length !== 5) throw new CronError(`"${text}" is not a valid cron expression: it needs 5 fields (minute hour day month weekday)`);
  return {
    text: t,
    minute: field(parts[0], 0, 59, 'minute'),
    hour: field(parts[1], 0, 23, 'hour'),
    dom: field(parts[2], 1, 31, 'day of month'),
    month: field(parts[3], 1, 12, 'month'),
    dow: field(parts[4], 0, 6, 'day of week'),
    domAny: parts[2] === '*',
    dowAny: parts[4] === '*',
  };
}

function dayMatches(c: Cron, d: Date): boolean {
  const dom = c.dom.has(d.getUTCDate());
  const dow = c.dow.has(d.getUTCDay());
  // Vixie cron: when both are restricted, either matches.
  if (!c.domAny && !c.dowAny) return dom || dow;
  return dom && dow;
}

/** The first tick strictly after `after` (minute resolution, UTC). */
export function nextTick(c: Cron, after: Date): Date {
  const d = new Date(Math.floor(after.getTime() / 60_000) * 60_000 + 60_000);
  for (let guard = 0; guard < 600_000; guard++) {
    if (!c.month.has(d.getUTCMonth() + 1)) {
      d.setUTCMonth(d.getUTCMonth() + 1, 1);
      d.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!dayMatches(c, d)) {
      d.setUTCDate(d.getUTCDate() + 1);
      d.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!c.hour.has(d.getUTCHours())) {
      d.setUTCHours(d.getUTCHours() + 1, 0, 0, 0);
      continue;
    }
    if (!c.minute.has(d.getUTCMinutes())) {
      d.setUTCMinutes(d.getUTCMinutes() + 1, 0, 0);
      continue;
    }
    return d;
  }
  throw new CronError(`"${c.text}" never matches a date`);
}

/** The last tick at or before `now` that is after `since`, if any (the one a scheduler owes). */
export function dueTick(c: Cron, since: Date, now: Date): Date | null {
  let due: Date | null = null;
  let t = nextTick(c, since);
  for (let i = 0; t.getTime() <= now.getTime() && i < 100_000; i++) {
    due = t;
    t = nextTick(c, t);
  }
  return due;
}

/**
 * A `schedule_cron` argument as copy and sink pipes take it: the checked expression, or null for
 * no schedule (absent, empty, `None`, `@on-demand`). An invalid one is a 400.
 */
export function scheduleOf(cron: string | undefined): string | null {
  if (cron === undefined) return null;
  const c = cron.trim();
  if (!c || c === 'None' || c === '@on-demand') return null;
  try {
    parseCron(c);
  } catch (err) {
    if (err instanceof CronError) throw badRequest(`Invalid schedule_cron: ${err.message}`);
    throw err;
  }
  return c;
}
