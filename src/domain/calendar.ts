// Calendar months in UTC, as the books date month-end entries: the last day of a month, the first day of the next,
// a date some months on. Pure.

const PERIOD = /^\d{4}-(0[1-9]|1[0-2])$/;
const parts = (period: string): [number, number] => {
  if (!PERIOD.test(period)) throw new Error(`not a month YYYY-MM: ${period}`);
  return period.split('-').map(Number) as [number, number];
};

/** `2026-11` -> `2026-11-30`. */
export function lastDayOfMonth(period: string): string {
  const [year, month] = parts(period);
  return new Date(Date.UTC(year, month, 0)).toISOString().slice(0, 10);
}

/** `2026-11` -> `2026-12-01`. */
export function firstDayOfNextMonth(period: string): string {
  const [year, month] = parts(period);
  return new Date(Date.UTC(year, month, 1)).toISOString().slice(0, 10);
}

/** `2026-11` + 2 -> `2027-01`. */
export const addMonthsToPeriod = (period: string, months: number): string => {
  const [year, month] = parts(period);
  return new Date(Date.UTC(year, month - 1 + months, 1)).toISOString().slice(0, 7);
};

/** A date `months` later on the same day of the month, or the month's last day when it has fewer (01-31 + 1 -> 02-28). */
export function addMonthsToDate(date: string, months: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const target = new Date(Date.UTC(y, m - 1 + months, 1));
  const lastOfMonth = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  return new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth(), Math.min(d, lastOfMonth))).toISOString().slice(0, 10);
}
