import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planWindow } from '../../src/meter/rollups.js';

const HOUR = 3_600_000;
const ms = (iso: string) => Date.parse(iso);
const isMonthStart = (t: number) => {
  const d = new Date(t);
  return d.getUTCDate() === 1 && t % 86_400_000 === 0;
};

describe('planWindow', () => {
  it('cuts worked examples into months, hours and edges', () => {
    // A calendar month: one month, nothing else.
    assert.deepEqual(planWindow(ms('2026-09-01T00:00:00Z'), ms('2026-10-01T00:00:00Z')), {
      months: { from: ms('2026-09-01T00:00:00Z'), to: ms('2026-10-01T00:00:00Z') },
      hours: [],
      edges: [],
    });
    // From the 16th (a price change) to the month's end: hours only.
    assert.deepEqual(planWindow(ms('2026-11-16T00:00:00Z'), ms('2026-12-01T00:00:00Z')), {
      months: null,
      hours: [{ from: ms('2026-11-16T00:00:00Z'), to: ms('2026-12-01T00:00:00Z') }],
      edges: [],
    });
    // Minutes on both sides, a whole month inside.
    assert.deepEqual(planWindow(ms('2026-10-31T22:30:00Z'), ms('2026-12-01T01:15:00Z')), {
      months: { from: ms('2026-11-01T00:00:00Z'), to: ms('2026-12-01T00:00:00Z') },
      hours: [
        { from: ms('2026-10-31T23:00:00Z'), to: ms('2026-11-01T00:00:00Z') },
        { from: ms('2026-12-01T00:00:00Z'), to: ms('2026-12-01T01:00:00Z') },
      ],
      edges: [
        { from: ms('2026-10-31T22:30:00Z'), to: ms('2026-10-31T23:00:00Z') },
        { from: ms('2026-12-01T01:00:00Z'), to: ms('2026-12-01T01:15:00Z') },
      ],
    });
    // Across an hour boundary but no whole hour: all edge (75 minutes).
    assert.deepEqual(planWindow(ms('2026-11-03T10:30:00Z'), ms('2026-11-03T11:45:00Z')).edges, [
      { from: ms('2026-11-03T10:30:00Z'), to: ms('2026-11-03T11:45:00Z') },
    ]);
    // Inside one hour: all edge.
    assert.deepEqual(planWindow(ms('2026-11-03T10:05:00Z'), ms('2026-11-03T10:55:00Z')), {
      months: null,
      hours: [],
      edges: [{ from: ms('2026-11-03T10:05:00Z'), to: ms('2026-11-03T10:55:00Z') }],
    });
  });

  it('covers every window exactly once with aligned pieces (property)', () => {
    const instant = fc.integer({ min: ms('2020-01-01T00:00:00Z'), max: ms('2030-01-01T00:00:00Z') }).map((t) =>
      // Often on an hour or a month boundary, where the cuts happen.
      t % 3 === 0 ? Math.floor(t / HOUR) * HOUR : t % 3 === 1 ? Date.UTC(new Date(t).getUTCFullYear(), new Date(t).getUTCMonth(), 1) : t,
    );
    fc.assert(
      fc.property(instant, instant, (a, b) => {
        fc.pre(a !== b);
        const [from, to] = a < b ? [a, b] : [b, a];
        const plan = planWindow(from, to);
        const pieces = [...(plan.months ? [plan.months] : []), ...plan.hours, ...plan.edges].sort((x, y) => x.from - y.from);
        assert.equal(pieces[0]!.from, from);
        assert.equal(pieces[pieces.length - 1]!.to, to);
        for (let i = 1; i < pieces.length; i += 1) assert.equal(pieces[i]!.from, pieces[i - 1]!.to, 'no gap, no overlap');
        if (plan.months) assert.ok(isMonthStart(plan.months.from) && isMonthStart(plan.months.to));
        for (const h of plan.hours) assert.ok(h.from % HOUR === 0 && h.to % HOUR === 0 && h.from < h.to);
        // What is recounted from the events: at most two partial hours.
        assert.ok(plan.edges.length <= 2);
        for (const e of plan.edges) assert.ok(e.from < e.to);
        assert.ok(plan.edges.reduce((n, e) => n + (e.to - e.from), 0) < 2 * HOUR);
      }),
      { numRuns: 500 },
    );
  });
});
