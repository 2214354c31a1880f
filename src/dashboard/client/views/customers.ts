// Customers for support and account managers: who they are, what they owe, and their usage over time per meter.
import { useState } from 'preact/hooks';
import { getJson } from '../api.js';
import { count, dateTime, money } from '../format.js';
import { href } from '../route.js';
import type { CustomerSummary, CustomerUsage, InvoiceSummary } from '../types.js';
import { Card, ChartView, Empty, html, PALETTE, Pill, plot, Status, useApi, type Loaded } from '../ui.js';

export function CustomersView(props: { period: string }) {
  const customers = useApi(() => getJson<{ customers: CustomerSummary[] }>('/v1/dashboard/customers'), []);
  const [filter, setFilter] = useState('');
  const shown = (customers.data?.customers ?? []).filter((c) =>
    `${c.id} ${c.name} ${c.tenants.join(' ')}`.toLowerCase().includes(filter.toLowerCase()),
  );
  return html`<div class="view" data-testid="view-customers">
    <div class="view-head">
      <div>
        <h1>Customers</h1>
        <p class="muted">Everyone in the catalog in force, with what they were invoiced, paid and still owe over all periods.</p>
      </div>
    </div>
    <${Card} wide>
      <input type="search" class="filter" aria-label="Filter customers" placeholder="Filter by name, id or tenant" value=${filter} onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} />
      <${Status} loading=${customers.loading && !customers.data} error=${customers.error} />
      ${
        customers.data
          ? html`<div class="table-wrap">
              <table class="data">
                <thead>
                  <tr>
                    <th>Customer</th>
                    <th>Entity</th>
                    <th>Plans</th>
                    <th>Tenants</th>
                    <th class="num">Events</th>
                    <th>Last event</th>
                    <th class="num">Invoiced</th>
                    <th class="num">Paid</th>
                    <th class="num">Outstanding</th>
                  </tr>
                </thead>
                <tbody>
                  ${shown.map(
                    (c) =>
                      html`<tr
                        class="clickable"
                        onClick=${() => (location.hash = href('customers', c.id, { period: props.period }))}
                        data-testid=${`customer-row-${c.id}`}
                      >
                        <td>
                          <a href=${href('customers', c.id, { period: props.period })}>${c.name}</a>
                          <span class="muted">${c.id}</span>${c.parent ? html`<div class="muted small">part of ${c.parent}</div>` : null}
                        </td>
                        <td>${c.legal_entity}</td>
                        <td>${c.subscriptions.map((s) => html`<${Pill} tone="blue">${s.plan}</${Pill}> `)}</td>
                        <td class="muted">${c.tenants.join(', ')}</td>
                        <td class="num" data-testid=${`customer-events-${c.id}`} data-value=${c.events}>${count(c.events)}</td>
                        <td>${dateTime(c.last_event_time)}</td>
                        <td class="num">${c.balances.map((b) => html`<div>${money(b.invoiced, b.currency)}</div>`)}</td>
                        <td class="num">${c.balances.map((b) => html`<div>${money(b.paid, b.currency)}</div>`)}</td>
                        <td class="num">
                          ${c.balances.map((b) => html`<div data-testid=${`customer-outstanding-${c.id}-${b.currency}`} data-value=${b.outstanding}>${money(b.outstanding, b.currency)}</div>`)}
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>
            </div>`
          : null
      }
    </${Card}>
  </div>`;
}

function monthStart(period: string): string {
  return `${period}-01`;
}

function nextMonth(period: string): string {
  const [y, m] = period.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(y, m, 1)).toISOString().slice(0, 10);
}

function monthsBack(period: string, months: number): string {
  const [y, m] = period.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(y, m - 1 - months, 1)).toISOString().slice(0, 10);
}

export function CustomerDetailView(props: { id: string; period: string }) {
  const [bucket, setBucket] = useState<'day' | 'month'>('day');
  const range =
    bucket === 'day'
      ? { from: monthStart(props.period), to: nextMonth(props.period) }
      : { from: monthsBack(props.period, 11), to: nextMonth(props.period) };
  const customers = useApi(() => getJson<{ customers: CustomerSummary[] }>('/v1/dashboard/customers'), []);
  const usage = useApi(
    () => getJson<CustomerUsage>(`/v1/dashboard/customers/${encodeURIComponent(props.id)}/usage`, { ...range, bucket }),
    [props.id, bucket, props.period],
  );
  const invoices = useApi(
    () => getJson<{ total: number; invoices: InvoiceSummary[] }>('/v1/dashboard/invoices', { customer: props.id, limit: '50' }),
    [props.id],
  );
  const c = customers.data?.customers.find((x) => x.id === props.id);
  const u = usage.data;
  const active = u?.meters.filter((m) => m.events.some((n) => n > 0)) ?? [];
  return html`<div class="view" data-testid="view-customer">
    <div class="view-head">
      <div>
        <a class="back" href=${href('customers', undefined, { period: props.period })}>← Customers</a>
        <h1>${c?.name ?? props.id}</h1>
        ${c ? html`<p class="muted">${c.id} · ${c.legal_entity} · tenants ${c.tenants.join(', ')}${c.parent ? ` · part of ${c.parent}` : ''}</p>` : null}
      </div>
      <div class="segmented" role="group" aria-label="Granularity">
        <button class=${bucket === 'day' ? 'on' : ''} aria-pressed=${bucket === 'day'} onClick=${() => setBucket('day')}>
          Days of ${props.period}
        </button>
        <button
          class=${bucket === 'month' ? 'on' : ''}
          aria-pressed=${bucket === 'month'}
          onClick=${() => setBucket('month')}
          data-testid="bucket-month"
        >
          12 months
        </button>
      </div>
    </div>
    <${CustomerKpis} customer=${c} />
    <${Status} loading=${usage.loading && !u} error=${usage.error} />
    ${u ? html`<${UsageCharts} usage=${u} active=${active} />` : null}
    <${CustomerInvoices} invoices=${invoices} period=${props.period} />
  </div>`;
}

function CustomerKpis(props: { customer: CustomerSummary | undefined }) {
  const c = props.customer;
  if (!c) return null;
  return html`<div class="kpis">
    ${c.balances.map(
      (b) =>
        html`<div class="kpi">
          <div class="kpi-label">Outstanding ${b.currency}</div>
          <div class="kpi-value">${money(b.outstanding, b.currency)}</div>
          <div class="kpi-trend muted">of ${money(b.invoiced, b.currency)} invoiced</div>
        </div>`,
    )}
    <div class="kpi">
      <div class="kpi-label">Events, all time</div>
      <div class="kpi-value">${count(c.events)}</div>
      <div class="kpi-trend muted">last ${dateTime(c.last_event_time)}</div>
    </div>
  </div>`;
}

function UsageCharts(props: { usage: CustomerUsage; active: CustomerUsage['meters'] }) {
  const { usage: u, active } = props;
  return active.length === 0
    ? html`<${Card} wide><${Empty}>No usage from ${u.from} to ${u.to}.</${Empty}></${Card}>`
    : html`<div class="grid two">
        ${active.map(
          (
            m,
            i,
          ) => html`<${Card} title=${m.meter} subtitle=${`${m.aggregation} per ${u.bucket}; ${count(m.events.reduce((s, n) => s + n, 0))} events${m.late_events ? `, ${count(m.late_events)} late (billed apart)` : ''}`} testid=${`usage-${m.meter}`}>
                <${ChartView}
                  label=${`${m.meter} per ${u.bucket}`}
                  height=${200}
                  config=${{
                    type: u.bucket === 'day' && m.aggregation !== 'latest' && m.aggregation !== 'max' ? 'bar' : 'line',
                    data: {
                      labels: u.buckets.map((b) => (u.bucket === 'day' ? b.slice(5) : b)),
                      datasets: [
                        {
                          label: m.meter,
                          data: plot(m.quantities),
                          backgroundColor: PALETTE[i % PALETTE.length],
                          borderColor: PALETTE[i % PALETTE.length],
                          pointRadius: 2,
                        },
                      ],
                    },
                    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
                  }}
                />
              </${Card}>`,
        )}
      </div>`;
}

function CustomerInvoices(props: { invoices: Loaded<{ total: number; invoices: InvoiceSummary[] }>; period: string }) {
  const { invoices } = props;
  return html`<${Card} title="Invoices" testid="customer-invoices" wide>
      <${Status} loading=${invoices.loading && !invoices.data} error=${invoices.error} />
      ${invoices.data && invoices.data.invoices.length === 0 ? html`<${Empty}>No invoices yet.</${Empty}>` : null}
      ${
        invoices.data && invoices.data.invoices.length > 0
          ? html`<table class="data">
              <thead>
                <tr>
                  <th>Number</th>
                  <th>Period</th>
                  <th class="num">Total</th>
                  <th class="num">Paid</th>
                  <th>Payment</th>
                </tr>
              </thead>
              <tbody>
                ${invoices.data.invoices.map(
                  (i) =>
                    html`<tr>
                      <td>
                        <a href=${href('invoices', i.number ?? i.id, { period: props.period })}>${i.number ?? i.id}</a
                        >${i.kind === 'credit_note' ? ' (credit note)' : ''}
                      </td>
                      <td>${i.period}</td>
                      <td class="num">${money(i.total, i.currency)}</td>
                      <td class="num">${money(i.amount_paid, i.currency)}</td>
                      <td>${i.payment_status.replace('_', ' ')}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
          : null
      }
    </${Card}>`;
}
