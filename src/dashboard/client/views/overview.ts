// Overview for finance operations: where the period's money is, from usage to cash, per legal entity and currency.
import { getJson } from '../api.js';
import { count, duration, money, percent } from '../format.js';
import type { Kpi, Overview } from '../types.js';
import { Card, ChartView, Empty, html, KpiCard, PALETTE, Pill, plot, Status, useApi } from '../ui.js';

const SERIES = [
  { key: 'usage', label: 'Usage (estimated)', color: '#94a3b8', dash: [6, 4] },
  { key: 'unbilled', label: 'Unbilled', color: '#f59e0b', dash: [] },
  { key: 'invoiced', label: 'Invoiced', color: '#2563eb', dash: [] },
  { key: 'posted', label: 'Posted', color: '#7c3aed', dash: [] },
  { key: 'paid', label: 'Paid', color: '#16a34a', dash: [] },
] as const;

function kpiValue(k: Kpi): string {
  if (k.unit === 'money') return money(k.value, k.currency);
  if (k.unit === 'ratio') return percent(k.value);
  if (k.unit === 'seconds') return duration(k.value);
  return count(k.value);
}

// Which way is good for a KPI's trend; state measures (backlog, DLQ) have no previous value and so no arrow.
const GOOD_WHEN: Record<string, 'up' | 'down'> = {
  events_accepted: 'up',
  events_late: 'down',
  exceptions_open: 'down',
  close_latency_seconds: 'down',
};
const goodWhen = (k: Kpi) => GOOD_WHEN[k.id] ?? (k.id.startsWith('invoiced_') || k.id.startsWith('paid_share_') ? 'up' : undefined);
const tone = (k: Kpi) =>
  ['dlq_entries', 'quarantine_pending', 'exceptions_open'].includes(k.id) && k.value !== null && k.value !== '0' ? 'bad' : 'neutral';

const shortDay = (d: string) => d.slice(5);

export function OverviewView(props: { period: string }) {
  const overview = useApi(() => getJson<Overview>('/v1/dashboard/overview', { period: props.period }), [props.period]);
  const o = overview.data;
  return html`<div class="view" data-testid="view-overview">
    <div class="view-head">
      <div>
        <h1>Overview · ${props.period}</h1>
        <p class="muted">
          From metered usage to cash, per legal entity and currency. Usage is what the period's invoices would total if it closed at each
          day's end.
        </p>
      </div>
      <div class="entity-status">
        ${o?.entities.map((e) => html`<${Pill} tone=${e.status === 'closed' ? 'blue' : 'grey'} testid=${`entity-status-${e.id}`}>${e.id} ${e.status}</${Pill}>`)}
      </div>
    </div>
    <${Status} loading=${overview.loading && !o} error=${overview.error} />
    ${
      o
        ? html`
            <div class="kpis" data-testid="kpis">
              ${o.kpis.map((k) => html`<${KpiCard} id=${k.id} label=${k.label} value=${kpiValue(k)} raw=${k.value} previous=${k.previous === null ? undefined : k.previous} goodWhen=${goodWhen(k)} tone=${tone(k)} hint=${k.previous === null ? 'as of now' : ''} />`)}
            </div>
            <${Totals} overview=${o} />
            <${MoneyCharts} overview=${o} />
            <${EventsPerDay} overview=${o} period=${props.period} />
          `
        : null
    }
  </div>`;
}

function Totals(props: { overview: Overview }) {
  const o = props.overview;
  return html`<${Card} title="Usage to cash by legal entity" subtitle="Totals for the period; amounts in each entity's invoice currency, tax included." testid="totals" wide>
            <div class="table-wrap">
              <table class="data">
                <thead><tr><th>Legal entity</th><th>Currency</th><th class="num">Usage (est.)</th><th class="num">Unbilled</th><th class="num">Invoiced</th><th class="num">Posted</th><th class="num">Paid</th><th class="num">Outstanding</th><th class="num">Invoices</th></tr></thead>
                <tbody>
                  ${o.totals.map((t) => {
                    const cell = (field: 'usage' | 'unbilled' | 'invoiced' | 'posted' | 'paid' | 'outstanding') =>
                      html`<td class="num" data-testid=${`total-${t.legal_entity}-${t.currency}-${field}`} data-value=${t[field]}>
                        ${money(t[field], t.currency)}
                      </td>`;
                    return html`<tr>
                      <td>
                        ${o.entities.find((e) => e.id === t.legal_entity)?.name ?? t.legal_entity}
                        <span class="muted">${t.legal_entity}</span>
                      </td>
                      <td>${t.currency}</td>
                      ${cell('usage')}${cell('unbilled')}${cell('invoiced')}${cell('posted')}${cell('paid')}${cell('outstanding')}
                      <td class="num" data-testid=${`total-${t.legal_entity}-${t.currency}-invoices`}>${t.invoices}</td>
                    </tr>`;
                  })}
                </tbody>
                ${
                  o.group
                    ? html`<tfoot data-testid="group-totals">
                        <tr>
                          <td>
                            Group, in ${o.group.currency}
                            <span class="muted"
                              >at ${o.group.rate_source}
                              ${o.group.rate_date}${o.group.missing.length > 0 ? `; without ${o.group.missing.join(', ')} (no rate)` : ''}</span
                            >
                          </td>
                          <td>${o.group.currency}</td>
                          <td></td>
                          <td class="num" data-testid="group-unbilled" data-value=${o.group.unbilled}>
                            ${money(o.group.unbilled, o.group.currency)}
                          </td>
                          <td class="num" data-testid="group-invoiced" data-value=${o.group.invoiced}>
                            ${money(o.group.invoiced, o.group.currency)}
                          </td>
                          <td></td>
                          <td></td>
                          <td class="num" data-testid="group-outstanding" data-value=${o.group.outstanding}>
                            ${money(o.group.outstanding, o.group.currency)}
                          </td>
                          <td></td>
                        </tr>
                      </tfoot>`
                    : null
                }
              </table>
            </div>
          </${Card}>`;
}

function MoneyCharts(props: { overview: Overview }) {
  const o = props.overview;
  return html`<div class="grid two">
    ${o.series.map(
      (
        s,
      ) => html`<${Card} title=${`${s.legal_entity} · ${s.currency}`} subtitle="Running totals over the days of the period" testid=${`chart-money-${s.legal_entity}-${s.currency}`}>
                <${ChartView}
                  label=${`Usage, unbilled, invoiced, posted and paid in ${s.currency} for ${s.legal_entity}, by day`}
                  config=${{
                    type: 'line',
                    data: {
                      labels: o.days.map(shortDay),
                      datasets: SERIES.map((d) => ({
                        label: d.label,
                        data: plot(s[d.key]),
                        borderColor: d.color,
                        backgroundColor: d.color,
                        borderDash: [...d.dash],
                        borderWidth: 2,
                        pointRadius: 0,
                        tension: 0.15,
                      })),
                    },
                    options: {
                      interaction: { mode: 'index', intersect: false },
                      plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
                      scales: { y: { beginAtZero: true, title: { display: true, text: s.currency } } },
                    },
                  }}
                />
              </${Card}>`,
    )}
  </div>`;
}

function EventsPerDay(props: { overview: Overview; period: string }) {
  const o = props.overview;
  // Events only happen inside the period; the money axis runs on to the close and the cash.
  const periodDays = o.days.filter((d) => d < o.end_date);
  return html`<${Card} title="Events per day" subtitle=${`Accepted usage events by event time; ${count(o.events.reduce((s, e) => s + e.late, 0))} arrived after their period closed (late).`} testid="chart-events" wide>
            ${
              o.events.every((e) => e.total === 0)
                ? html`<${Empty}>No usage events in ${props.period}.</${Empty}>`
                : html`<${ChartView}
                    label=${`Usage events per day in ${props.period} per legal entity`}
                    height=${220}
                    config=${{
                      type: 'bar',
                      data: {
                        labels: periodDays.map(shortDay),
                        datasets: o.events.map((e, i) => ({
                          label: e.legal_entity,
                          data: e.per_day.slice(0, periodDays.length),
                          backgroundColor: PALETTE[i % PALETTE.length],
                        })),
                      },
                      options: {
                        plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
                        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
                      },
                    }}
                  />`
            }
            <div class="event-totals">
              ${o.events.map((e) => html`<span data-testid=${`events-${e.legal_entity}`} data-value=${e.total}>${e.legal_entity}: <b>${count(e.total)}</b> events</span>`)}
            </div>
          </${Card}>`;
}
