// Seeded, realistic usage for a catalog's customers over one month: the same seed gives the same events.
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { Catalog, Meter } from '../domain/model.js';

export interface GenerateOptions {
  catalog: Catalog;
  period: { from: string; to: string }; // ISO, [from, to)
  events: number;
  seed: number;
}

export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: Record<string, unknown>;
}

const REGIONS = ['us-east-1', 'us-west-2', 'eu-central-1', 'ap-southeast-1'];
// Share of a customer's events each aggregation gets: request-like meters dominate, samples are sparse.
const METER_WEIGHT: Record<Meter['aggregation'], number> = { count: 900, sum: 60, unique_count: 30, max: 8, latest: 2 };

export function* generateUsage(options: GenerateOptions): Generator<CloudEvent> {
  const rng = xoroshiro128plus(options.seed);
  const int = (min: number, max: number) => uniformInt(rng, min, max);
  const from = Date.parse(options.period.from);
  const to = Date.parse(options.period.to);
  const meters = new Map(options.catalog.meters.map((m) => [m.id, m]));

  const plans = new Map(options.catalog.plans.map((p) => [p.id, p]));
  const profiles = options.catalog.customers
    .map((customer, position) => {
      const subscription = options.catalog.subscriptions.find((s) => s.customer === customer.id);
      const plan = subscription ? plans.get(subscription.plan) : undefined;
      if (!subscription || !plan) return undefined;
      const start = Math.max(from, Date.parse(`${subscription.start}T00:00:00Z`));
      const end = Math.min(to, subscription.end ? Date.parse(`${subscription.end}T00:00:00Z`) : to);
      if (start >= end) return undefined;
      const used = [...new Set(plan.prices.map((p) => p.meter).filter((m): m is string => !!m))]
        .map((id) => meters.get(id)!)
        .filter(Boolean);
      if (used.length === 0) return undefined;
      // Bigger customers first in the file send more: weights 8, 5, 3, 2, 2, ...
      const weight = [8, 5, 3, 2][position] ?? 2;
      return { customer, start, end, used, weight: weight * ((end - start) / (to - from)), users: 5 + int(0, 60) };
    })
    .filter((p): p is NonNullable<typeof p> => p !== undefined);
  if (profiles.length === 0) return;
  const totalWeight = profiles.reduce((sum, p) => sum + p.weight, 0);

  for (let n = 0; n < options.events; n += 1) {
    let pick = (int(0, 1_000_000) / 1_000_000) * totalWeight;
    const profile = profiles.find((p) => (pick -= p.weight) <= 0) ?? profiles[profiles.length - 1]!;
    const meterWeights = profile.used.map((m) => METER_WEIGHT[m.aggregation]);
    let meterPick = int(0, meterWeights.reduce((a, b) => a + b, 0) - 1);
    const meter = profile.used.find((_, i) => (meterPick -= meterWeights[i]!) < 0) ?? profile.used[0]!;
    const tenant = profile.customer.tenants[int(0, profile.customer.tenants.length - 1)]!;
    const time = new Date(profile.start + Math.floor((int(0, 1_000_000_000) / 1_000_000_001) * (profile.end - profile.start)));
    const data: Record<string, unknown> = {};
    for (const key of meter.group_by) data[key] = key === 'region' ? REGIONS[int(0, REGIONS.length - 1)] : `${key}-${int(1, 4)}`;
    if (meter.value) {
      const field = meter.value.replace(/^\$\.?/, '').replace(/^\['?|'?\]$/g, '');
      data[field] = sampleValue(meter, int, profile.users);
    }
    yield {
      specversion: '1.0',
      id: `evt-${options.seed}-${n}`,
      source: `//northwind/${meter.id.replace(/_/g, '-')}`,
      type: meter.event_type,
      subject: tenant,
      time: time.toISOString(),
      datacontenttype: 'application/json',
      data,
    };
  }
}

function sampleValue(meter: Meter, int: (min: number, max: number) => number, users: number): string {
  switch (meter.aggregation) {
    case 'unique_count':
      return `user-${int(1, users)}`;
    case 'max':
      return String(int(1, 24));
    case 'latest':
      return String(int(1, 8));
    default:
      // A decimal with three places, e.g. "12.375" GB-hours.
      return `${int(0, 40)}.${String(int(0, 999)).padStart(3, '0')}`;
  }
}
