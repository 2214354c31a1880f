// Billing periods are calendar months in UTC: "2026-11" covers [2026-11-01T00:00Z, 2026-12-01T00:00Z).
import { fail, ok, problem, type Result } from '../domain/result.js';

export interface PeriodWindow {
  period: string; // YYYY-MM
  from: string; // ISO, inclusive
  to: string; // ISO, exclusive
  start_date: string; // YYYY-MM-DD inclusive
  end_date: string; // YYYY-MM-DD exclusive
}

export function parsePeriod(text: unknown, path = 'period'): Result<PeriodWindow> {
  if (typeof text !== 'string' || !/^\d{4}-(0[1-9]|1[0-2])$/.test(text))
    return fail(problem(path, 'not_period', 'must be a month as YYYY-MM, e.g. 2026-11'));
  const [year, month] = text.split('-').map((s) => Number.parseInt(s, 10)) as [number, number];
  const start = new Date(Date.UTC(year, month - 1, 1));
  const end = new Date(Date.UTC(year, month, 1));
  return ok({
    period: text,
    from: start.toISOString(),
    to: end.toISOString(),
    start_date: start.toISOString().slice(0, 10),
    end_date: end.toISOString().slice(0, 10),
  });
}

export function periodOf(time: Date): string {
  return time.toISOString().slice(0, 7);
}

export function monthWindow(time: Date): PeriodWindow {
  const parsed = parsePeriod(periodOf(time));
  if (!parsed.ok) throw new Error('unreachable: a Date always has a valid month');
  return parsed.value;
}
