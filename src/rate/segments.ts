// Segments and proration: the days of a period a subscription and each price version cover, and a flat fee
// prorated by those days (amount × days in the segment / days in the period, rounded once).
import type { Price, PriceVersion, Product, Subscription } from '../domain/model.js';
import { Decimal, decimalText } from '../domain/money.js';
import { invariant } from '../domain/result.js';
import type { ExactLine, Round } from './lines.js';
import { addMonthsToDate } from '../domain/calendar.js';

/** Limit: decimal places of a prorated flat fee's quantity (the share of the period it covers). */
export const PRORATION_QUANTITY_PLACES = 6;

const DAY_MS = 86_400_000;
export const dayNumber = (date: string): number => Date.parse(`${date}T00:00:00Z`) / DAY_MS;
export const dateOf = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10);
/** The days from `start` (inclusive) to `end` (exclusive). */
export const daysFrom = (start: string, end: string): number => dayNumber(end) - dayNumber(start);
export const iso = (date: string): string => `${date}T00:00:00.000Z`;
export const maxDate = (a: string, b: string): string => (a > b ? a : b);
export const minDate = (a: string, b: string): string => (a < b ? a : b);
const lastDay = (endExclusive: string) => dateOf(dayNumber(endExclusive) - 1);

/** A billing period's dates; the end is exclusive. */
export interface PeriodDates {
  start_date: string;
  end_date: string;
}

export interface Segment {
  version: PriceVersion;
  start: string; // inclusive
  end: string; // exclusive
}

/** The version windows of a price inside [start, end): each version runs until the next one's effective_from. */
export function versionSegments(price: Price, start: string, end: string): Segment[] {
  const segments: Segment[] = [];
  price.versions.forEach((version, i) => {
    const from = version.effective_from ?? '0000-01-01';
    const until = price.versions[i + 1]?.effective_from ?? '9999-12-31';
    const s = maxDate(from, start);
    const e = minDate(until, end);
    if (s < e) segments.push({ version, start: s, end: e });
  });
  return segments;
}

/** The subscriptions active in the period, by start date then plan. */
export function subscriptionsInPeriod(subscriptions: readonly Subscription[], period: PeriodDates): Subscription[] {
  return subscriptions
    .filter((s) => s.start < period.end_date && (!s.end || s.end > period.start_date))
    .slice()
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.plan < b.plan ? -1 : 1));
}

/** The part of the period a subscription is active in, and both lengths in days. */
export interface ActiveWindow {
  start: string; // inclusive
  end: string; // exclusive
  days: number;
  periodDays: number;
}

export function activeWindow(sub: Subscription, period: PeriodDates): ActiveWindow {
  const start = maxDate(sub.start, period.start_date);
  const end = sub.end ? minDate(sub.end, period.end_date) : period.end_date;
  return { start, end, days: daysFrom(start, end), periodDays: daysFrom(period.start_date, period.end_date) };
}

/** A price's version segments in the active window, each with the text naming its dates on a line ('' when whole). */
export function priceSegments(price: Price, active: ActiveWindow): Array<Segment & { windowText: string }> {
  const segments = versionSegments(price, active.start, active.end);
  const named = segments.length > 1 || active.days < active.periodDays;
  return segments.map((s) => ({ ...s, windowText: named ? ` (${s.start} to ${lastDay(s.end)})` : '' }));
}

/** A flat fee for one segment, prorated by its days in the period and rounded once. */
export function flatCharge(
  product: Product,
  price: Price,
  segment: Segment & { windowText: string },
  periodDays: number,
  round: Round,
): ExactLine {
  const version = segment.version;
  invariant(version.model === 'flat', `flat charge of a flat version of ${price.id}`);
  const segmentDays = daysFrom(segment.start, segment.end);
  const exact = new Decimal(version.amount).times(segmentDays).dividedBy(periodDays);
  const prorated = segmentDays < periodDays;
  return flatLine(product, price, version, round, {
    exact,
    description: `${product.name}${prorated ? ` (prorated ${segmentDays} of ${periodDays} days)` : ''}${segment.windowText}`,
    // The share of the period, to 6 places for people (19/31 has no end); the amount uses the exact ratio.
    quantity: prorated
      ? decimalText(new Decimal(segmentDays).dividedBy(periodDays).toDecimalPlaces(PRORATION_QUANTITY_PLACES, Decimal.ROUND_HALF_UP))
      : '1',
    start: segment.start,
    end: segment.end,
  });
}

/** The line of a flat fee: one version's amount (or its exact share) over [start, end). */
function flatLine(
  product: Product,
  price: Price,
  version: PriceVersion & { model: 'flat' },
  round: Round,
  at: { exact: Decimal; description: string; quantity: string; start: string; end: string },
): ExactLine {
  return {
    exact: at.exact,
    line: {
      kind: 'flat',
      product: product.id,
      meter: null,
      price_id: price.id,
      price_version: version.version_id,
      description: at.description,
      quantity: at.quantity,
      unit_amount: version.amount,
      tiers: [],
      amount_minor: round(at.exact),
      period_start: at.start,
      period_end: at.end,
      taxable: true,
    },
  };
}

/**
 * A flat price billed yearly in advance (`interval: year`): the whole amount of the version in force on the day a
 * subscription year starts (the subscription's start, then each anniversary), on the invoice of the period holding
 * that day, its line covering the year [start, start + 12 months). Not prorated. Null when no year starts in the window.
 */
export function yearlyCharge(product: Product, price: Price, sub: Subscription, active: ActiveWindow, round: Round): ExactLine | null {
  let start = sub.start;
  for (let years = 1; start < active.start; years += 1) start = addMonthsToDate(sub.start, 12 * years);
  if (start >= active.end) return null;
  const version = [...price.versions].reverse().find((v) => (v.effective_from ?? '0000-01-01') <= start);
  if (!version) return null;
  invariant(version.model === 'flat', `yearly price ${price.id} is flat`);
  const end = addMonthsToDate(start, 12);
  return flatLine(product, price, version, round, {
    exact: new Decimal(version.amount),
    description: `${product.name} (annual, ${start} to ${lastDay(end)})`,
    quantity: '1',
    start,
    end,
  });
}
