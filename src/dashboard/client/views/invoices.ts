// Invoices for support and finance: search, then one invoice with its PDF and the explain walk from each line down
// to the usage events behind it (and from an event forward again to every document that carries it).
import { useState } from 'preact/hooks';
import { ApiError, getJson, openBlob } from '../api.js';
import { count, dateTime, groupDigits, money, percent, shortId } from '../format.js';
import type { EventExplanation, InvoiceExplanation, InvoiceStatement, InvoiceSummary, LineExplanation, StatementParty } from '../types.js';
import { href } from '../route.js';
import { Card, Empty, html, Pill, Status, useApi } from '../ui.js';

const PAYMENT_TONE = { paid: 'green', partially_paid: 'amber', unpaid: 'grey' } as const;
const POSTING_TONE = { posted: 'green', pending: 'amber', dead: 'red', none: 'grey' } as const;

export function InvoicesView(props: { period: string; params: URLSearchParams }) {
  const [q, setQ] = useState(props.params.get('q') ?? '');
  const [submitted, setSubmitted] = useState(q);
  const [onlyPeriod, setOnlyPeriod] = useState(true);
  const [payment, setPayment] = useState('');
  const result = useApi(
    () =>
      getJson<{ total: number; invoices: InvoiceSummary[] }>('/v1/dashboard/invoices', {
        q: submitted,
        period: onlyPeriod ? props.period : undefined,
        payment_status: payment || undefined,
        limit: '200',
      }),
    [submitted, onlyPeriod, payment, props.period],
  );
  return html`<div class="view" data-testid="view-invoices">
    <div class="view-head">
      <div>
        <h1>Invoices</h1>
        <p class="muted">Find an invoice by number, id or customer; open it for its PDF and the walk down to the events behind each line.</p>
      </div>
    </div>
    <${Card} wide>
      <form class="search" onSubmit=${(e: Event) => {
        e.preventDefault();
        setSubmitted(q.trim());
      }}>
        <input type="search" aria-label="Search invoices" placeholder="NWUS-000001, inv_…, acme, Globex…" value=${q} onInput=${(e: Event) => setQ((e.target as HTMLInputElement).value)} data-testid="invoice-search" />
        <select aria-label="Payment status" value=${payment} onChange=${(e: Event) => setPayment((e.target as HTMLSelectElement).value)}>
          <option value="">any payment status</option><option value="unpaid">unpaid</option><option value="partially_paid">partially paid</option><option value="paid">paid</option>
        </select>
        <label class="check"><input type="checkbox" checked=${onlyPeriod} onChange=${(e: Event) => setOnlyPeriod((e.target as HTMLInputElement).checked)} /> only ${props.period}</label>
        <button class="primary" type="submit" data-testid="invoice-search-go">Search</button>
      </form>
      <${Status} loading=${result.loading && !result.data} error=${result.error} />
      ${
        result.data
          ? html`<p class="muted small" data-testid="invoice-count" data-value=${result.data.total}>
                ${count(result.data.total)}
                document${result.data.total === 1 ? '' : 's'}${result.data.total > result.data.invoices.length ? `, the first ${result.data.invoices.length} shown` : ''}
              </p>
              ${
                result.data.invoices.length === 0
                  ? html`<${Empty}>No invoice matches.</${Empty}>`
                  : html`<${InvoiceTable} invoices=${result.data.invoices} period=${props.period} />`
              }`
          : null
      }
    </${Card}>
  </div>`;
}

function EventWalk(props: { source: string; id: string }) {
  const walk = useApi(
    () => getJson<EventExplanation>('/v1/events/explain', { source: props.source, id: props.id }),
    [props.source, props.id],
  );
  const w = walk.data;
  return html`<div class="walk" data-testid="event-walk">
    <${Status} loading=${walk.loading && !w} error=${walk.error} />
    ${
      w
        ? html`<div class="muted small">${w.note}</div>
            <ul class="plain">
              ${w.billed_in.map(
                (b) =>
                  html`<li>
                    billed on <a href=${href('invoices', b.invoice.number ?? b.invoice.id)}>${b.invoice.number ?? b.invoice.id}</a> line
                    ${b.line_no} (${b.meter})
                    ${b.journals.map((j) => html` → journal <code>${shortId(j.id, 30)}</code>${j.outbox.map((o) => html` → ${o.target} <${Pill} tone=${o.status === 'posted' ? 'green' : o.status === 'dead' ? 'red' : 'amber'}>${o.erp_document ?? o.status}</${Pill}>`)}`)}
                  </li>`,
              )}
            </ul>`
        : null
    }
  </div>`;
}

function LineWalk(props: { line: LineExplanation; currency: string }) {
  const [event, setEvent] = useState<{ source: string; id: string } | undefined>();
  const l = props.line;
  const u = l.usage;
  // A packaged price bills whole packages: usage × unit price would not be the amount, so the line says so.
  const pkg = (l.price?.definition as { package?: { size: string; round: string } } | null | undefined)?.package;
  return html`<div class="line-walk" data-testid=${`explain-line-${l.line_no}`}>
    <div class="walk-steps">
      <div class="step">
        <div class="step-title">Line ${l.line_no}</div>
        <div>${l.description}</div>
        <div class="muted small">
          ${l.kind} ·
          ${
            pkg
              ? `${groupDigits(l.quantity)} units in packages of ${pkg.size} (rounded ${pkg.round}) at ${l.unit_amount ?? ''} a package`
              : `${groupDigits(l.quantity)}${l.unit_amount ? ` × ${l.unit_amount}` : ''}`
          }
          = <b>${money(l.amount, props.currency)}</b>
        </div>
      </div>
      ${l.price ? html`<${PriceStep} line=${l} />` : null}
      <${UsageSteps} line=${l} />
    </div>
    ${u && u.sample.length ? html`<${EventSample} sample=${u.sample} event=${event} setEvent=${setEvent} />` : null}
  </div>`;
}

/** Subtotal, discounts, credits, tax per jurisdiction and total, as the PDF sums them; then who bills whom, and when it is due. */
function Statement(props: { statement: InvoiceStatement }) {
  const s = props.statement;
  const less = (amount: string) => (/^0(\.0+)?$/.test(amount) ? amount : `-${amount}`);
  const rows: Array<{ label: string; value: string; testid: string; total?: boolean }> = [
    { label: 'Subtotal', value: s.subtotal, testid: 'statement-subtotal' },
    { label: 'Discounts', value: less(s.discount), testid: 'statement-discount' },
    { label: 'Prepaid credits applied', value: less(s.credits_applied), testid: 'statement-credits' },
    ...s.tax_lines.map((t) => ({
      label: `Tax ${t.jurisdiction} ${percent(t.rate)} on ${money(t.taxable, s.currency)}`,
      value: t.tax,
      testid: `statement-tax-${t.jurisdiction}`,
    })),
    { label: s.kind === 'credit_note' ? 'Total credited' : 'Total due', value: s.total, testid: 'statement-total', total: true },
  ];
  const party = (title: string, p: StatementParty | null, testid: string) =>
    html`<div class="party" data-testid=${testid}>
      <div class="muted small">${title}</div>
      ${
        p
          ? html`<div><b>${p.name}</b></div>
              ${p.address_lines.map((line) => html`<div>${line}</div>`)}${p.tax_id ? html`<div class="muted small">VAT / Tax ID: ${p.tax_id}</div>` : null}`
          : html`<div class="muted small">not recorded on this document</div>`
      }
    </div>`;
  return html`<div class="statement">
    <table class="data compact" data-testid="statement">
      <tbody>
        ${rows.map(
          (r) =>
            html`<tr class=${r.total ? 'total' : ''}>
              <td>${r.total ? html`<b>${r.label}</b>` : r.label}</td>
              <td class="num" data-testid=${r.testid} data-value=${r.value}>
                ${r.total ? html`<b>${money(r.value, s.currency)}</b>` : money(r.value, s.currency)}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    <div class="parties">
      ${party('From', s.seller, 'statement-seller')} ${party('Bill to', s.buyer, 'statement-buyer')}
      <div class="party" data-testid="statement-terms">
        <div class="muted small">Dates</div>
        <div>Issued <b data-testid="statement-issue-date">${s.issue_date ?? '—'}</b></div>
        ${s.kind === 'invoice' ? html`<div>Due <b data-testid="statement-due-date">${s.due_date ?? '—'}</b>${s.payment_terms ? html` <span class="muted">(${s.payment_terms})</span>` : null}</div>` : null}
      </div>
    </div>
  </div>`;
}

export function InvoiceDetailView(props: { id: string; period: string }) {
  const explained = useApi(() => getJson<InvoiceExplanation>(`/v1/invoices/${encodeURIComponent(props.id)}/explain`), [props.id]);
  const statement = useApi(() => getJson<InvoiceStatement>(`/v1/dashboard/invoices/${encodeURIComponent(props.id)}`), [props.id]);
  const [pdf, setPdf] = useState<{ url?: string; error?: string; busy?: boolean }>({});
  const [line, setLine] = useState<number | undefined>();
  const e = explained.data;
  const openPdf = async () => {
    setPdf({ busy: true });
    try {
      const url = await openBlob(`/v1/invoices/${encodeURIComponent(props.id)}/pdf`);
      setPdf({ url });
      window.open(url, '_blank', 'noopener');
    } catch (err) {
      setPdf({ error: err instanceof ApiError ? err.message : String(err) });
    }
  };
  return html`<div class="view" data-testid="view-invoice">
    <div class="view-head">
      <div>
        <a class="back" href=${href('invoices', undefined, { period: props.period })}>← Invoices</a>
        <h1 data-testid="invoice-number">${e?.invoice.number ?? props.id}</h1>
        ${e ? html`<p class="muted">${e.invoice.kind === 'credit_note' ? 'Credit note' : 'Invoice'} to ${e.invoice.customer_name ?? e.invoice.customer} from ${e.invoice.legal_entity}, ${e.invoice.period_start} to ${e.invoice.period_end_inclusive}</p>` : null}
      </div>
      <div class="card-actions">
        <button class="primary" onClick=${openPdf} disabled=${pdf.busy} data-testid="open-pdf">
          ${pdf.busy ? 'Rendering…' : 'Open PDF'}
        </button>
        ${pdf.url ? html`<a href=${pdf.url} download=${`${e?.invoice.number ?? props.id}.pdf`} data-testid="pdf-link">Download</a>` : null}
      </div>
    </div>
    ${pdf.error ? html`<div class="alert error" role="alert">${pdf.error}</div>` : null}
    <${Status} loading=${explained.loading && !e} error=${explained.error} />
    ${
      e
        ? html`
          <${InvoiceKpis} explained=${e} />
          <${Card} title="Amounts" subtitle="Charges, discounts, prepaid credits and tax per jurisdiction, to the total" testid="amounts" wide>
            <${Status} loading=${statement.loading && !statement.data} error=${statement.error} />
            ${statement.data ? html`<${Statement} statement=${statement.data} />` : null}
          </${Card}>
          <${Lineage} explained=${e} />
          <${ExplainedLines} explained=${e} line=${line} setLine=${setLine} />
          <${Journals} journals=${e.journals} />
        `
        : null
    }
  </div>`;
}

function InvoiceTable(props: { invoices: InvoiceSummary[]; period: string }) {
  return html`<div class="table-wrap">
    <table class="data">
      <thead>
        <tr>
          <th>Number</th>
          <th>Customer</th>
          <th>Entity</th>
          <th>Period</th>
          <th class="num">Total</th>
          <th class="num">Paid</th>
          <th>Payment</th>
          <th>Posting</th>
          <th>Finalized</th>
        </tr>
      </thead>
      <tbody>
        ${props.invoices.map(
          (
            i,
          ) => html`<tr class="clickable" onClick=${() => (location.hash = href('invoices', i.number ?? i.id, { period: props.period }))} data-testid=${`invoice-row-${i.number ?? i.id}`}>
                        <td><a href=${href('invoices', i.number ?? i.id, { period: props.period })}>${i.number ?? shortId(i.id)}</a>${i.kind === 'credit_note' ? html` <${Pill} tone="blue">credit note</${Pill}>` : null}${i.status !== 'finalized' ? html` <${Pill} tone="grey">${i.status}</${Pill}>` : null}</td>
                        <td>${i.customer_name ?? i.customer} <span class="muted">${i.customer}</span></td>
                        <td>${i.legal_entity}</td>
                        <td>${i.period}</td>
                        <td class="num" data-testid=${`invoice-total-${i.number ?? i.id}`} data-value=${i.total}>${money(i.total, i.currency)}</td>
                        <td class="num">${money(i.amount_paid, i.currency)}</td>
                        <td><${Pill} tone=${PAYMENT_TONE[i.payment_status as keyof typeof PAYMENT_TONE] ?? 'grey'}>${i.payment_status.replace('_', ' ')}</${Pill}></td>
                        <td><${Pill} tone=${POSTING_TONE[i.posting]}>${i.posting}</${Pill}></td>
                        <td>${dateTime(i.finalized_at)}</td>
                      </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function PriceStep(props: { line: LineExplanation }) {
  const l = props.line;
  const price = l.price!;
  return html`<div class="step">
    <div class="step-title">Price</div>
    <div><code>${price.id}</code></div>
    <div class="muted small">version ${price.version}${price.plan ? ` · plan ${price.plan}` : ''}</div>
    ${
      l.tiers.length
        ? html`<table class="data compact">
            <thead>
              <tr>
                <th>Tier</th>
                <th class="num">Quantity</th>
                <th class="num">Unit</th>
                <th class="num">Amount</th>
              </tr>
            </thead>
            <tbody>
              ${l.tiers.map(
                (t) =>
                  html`<tr>
                    <td>${t.tier} (${t.from}–${t.up_to ?? '∞'})</td>
                    <td class="num">${groupDigits(t.quantity)}</td>
                    <td class="num">${t.unit_amount}</td>
                    <td class="num">${groupDigits(t.amount)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
        : null
    }
  </div>`;
}

function UsageSteps(props: { line: LineExplanation }) {
  const l = props.line;
  const u = l.usage;
  return u
    ? html`<div class="step">
          <div class="step-title">Usage aggregate</div>
          <div>
            <code>${u.meter}</code> ${u.aggregation} =
            <b data-testid=${`explain-quantity-${l.line_no}`}>${groupDigits(u.quantity)}</b>
            ${u.consistent ? html`<${Pill} tone="green">recount agrees</${Pill}>` : html`<${Pill} tone="red">recount differs</${Pill}>`}
          </div>
          <div class="muted small">${dateTime(u.window.from)} to ${dateTime(u.window.to)}</div>
        </div>
        <div class="step">
          <div class="step-title">Events</div>
          <div>
            <b data-testid=${`explain-events-${l.line_no}`}>${count(u.event_count)}</b> events in ${count(u.usage_batch_count)}
            batch${u.usage_batch_count === 1 ? '' : 'es'}
          </div>
          <div class="muted small">first ${dateTime(u.first_event_time)}, last ${dateTime(u.last_event_time)}</div>
        </div>`
    : html`<div class="step">
        <div class="step-title">No usage</div>
        <div class="muted small">${l.note ?? ''}</div>
      </div>`;
}

function EventSample(props: {
  sample: NonNullable<LineExplanation['usage']>['sample'];
  event: { source: string; id: string } | undefined;
  setEvent: (event: { source: string; id: string }) => void;
}) {
  const { event, setEvent } = props;
  return html`<div class="sample">
    <div class="muted small">A fixed sample of the events counted (click one to walk forward from it):</div>
    <table class="data compact">
      <thead>
        <tr>
          <th>Source</th>
          <th>Id</th>
          <th>Time</th>
          <th>Batch</th>
          <th class="num">Value</th>
        </tr>
      </thead>
      <tbody>
        ${props.sample.map(
          (s) =>
            html`<tr class="clickable" onClick=${() => setEvent({ source: s.source, id: s.id })} data-testid="sample-event">
              <td><code>${s.source}</code></td>
              <td><code>${s.id}</code></td>
              <td>${dateTime(s.time)}</td>
              <td><code>${shortId(s.batch, 16)}</code></td>
              <td class="num">${s.value ?? '1'}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${event ? html`<${EventWalk} source=${event.source} id=${event.id} />` : null}
  </div>`;
}

function InvoiceKpis(props: { explained: InvoiceExplanation }) {
  const e = props.explained;
  return html`<div class="kpis">
    <div class="kpi" data-testid="invoice-detail-total" data-value=${e.invoice.total}>
      <div class="kpi-label">Total</div>
      <div class="kpi-value">${money(e.invoice.total, e.invoice.currency)}</div>
      <div class="kpi-trend muted">tax included</div>
    </div>
    <div class="kpi" data-testid="invoice-detail-paid" data-value=${e.invoice.amount_paid}>
      <div class="kpi-label">Paid</div>
      <div class="kpi-value">${money(e.invoice.amount_paid, e.invoice.currency)}</div>
      <div class="kpi-trend muted">${e.invoice.payment_status.replace('_', ' ')}</div>
    </div>
    <div class="kpi">
      <div class="kpi-label">Status</div>
      <div class="kpi-value">${e.invoice.status}</div>
      <div class="kpi-trend muted">finalized ${dateTime(e.invoice.finalized_at)}</div>
    </div>
    <div class="kpi">
      <div class="kpi-label">Rating run</div>
      <div class="kpi-value small-value"><code>${shortId(e.rating_run?.id ?? '—', 20)}</code></div>
      <div class="kpi-trend muted">
        catalog v${e.rating_run?.catalog_version ?? '—'}, events up to #${e.rating_run?.event_seq_watermark ?? '—'}
      </div>
    </div>
  </div>`;
}

function Lineage(props: { explained: InvoiceExplanation }) {
  const e = props.explained;
  return html`<${Card} title="Lineage" subtitle=${`Correlation id ${e.lineage.correlation_id}`} testid="lineage" wide>
            <div class="chain">
              <div class="link"><b>${count(e.lineage.usage_batch_count)}</b><span>usage batches</span></div>
              <div class="arrow">→</div>
              <div class="link"><b title=${e.lineage.rating_run ?? ''}>${shortId(e.lineage.rating_run ?? '—', 14)}</b><span>rating run</span></div>
              <div class="arrow">→</div>
              <div class="link"><b>${e.lineage.invoice_number ?? shortId(e.invoice.id)}</b><span>${e.invoice.kind.replace('_', ' ')}</span></div>
              <div class="arrow">→</div>
              <div class="link"><b>${e.lineage.journals.length}</b><span>journals</span></div>
              <div class="arrow">→</div>
              <div class="link"><b>${e.lineage.outbox.length}</b><span>outbox entries</span></div>
              <div class="arrow">→</div>
              <div class="link"><b>${e.lineage.erp_documents.length ? e.lineage.erp_documents.map((d) => `${d.target} ${d.reference}`).join(', ') : e.lineage.outbox.length ? 'none posted yet' : 'built-in ledger only'}</b><span>ERP documents</span></div>
            </div>
            ${e.corrects ? html`<p>Corrects <a href=${href('invoices', e.corrects.number ?? e.corrects.id)}>${e.corrects.number ?? e.corrects.id}</a>.</p>` : null}
            ${e.corrected_by.length ? html`<p>Corrected by ${e.corrected_by.map((c) => html`<a href=${href('invoices', c.number ?? c.id)}>${c.number ?? c.id}</a> `)}</p>` : null}
          </${Card}>`;
}

function ExplainedLines(props: { explained: InvoiceExplanation; line: number | undefined; setLine: (line: number | undefined) => void }) {
  const { explained: e, line, setLine } = props;
  return html`<${Card} title="Lines, explained" subtitle="Click a line to walk down to its price, usage aggregate and events." testid="explain" wide>
            <div class="table-wrap"><table class="data">
              <thead><tr><th>#</th><th>Description</th><th>Kind</th><th class="num">Quantity</th><th class="num">Amount</th></tr></thead>
              <tbody>
                ${e.lines.map(
                  (l) =>
                    html`<tr
                        class=${`clickable ${line === l.line_no ? 'selected' : ''}`}
                        onClick=${() => setLine(line === l.line_no ? undefined : l.line_no)}
                        data-testid=${`line-${l.line_no}`}
                      >
                        <td>${l.line_no}</td>
                        <td>${l.description}</td>
                        <td>${l.kind}</td>
                        <td class="num">${groupDigits(l.quantity)}</td>
                        <td class="num" data-value=${l.amount}>${money(l.amount, e.invoice.currency)}</td>
                      </tr>
                      ${
                        line === l.line_no
                          ? html`<tr class="detail-row">
                              <td colspan="5"><${LineWalk} line=${l} currency=${e.invoice.currency} /></td>
                            </tr>`
                          : null
                      }`,
                )}
              </tbody>
            </table></div>
          </${Card}>`;
}

function Journals(props: { journals: InvoiceExplanation['journals'] }) {
  return html`<${Card} title="Journals and postings" testid="journals" wide>
            ${
              props.journals.length === 0
                ? html`<${Empty}>No journal yet.</${Empty}>`
                : html`<table class="data">
                    <thead>
                      <tr>
                        <th>Journal</th>
                        <th>Kind</th>
                        <th>Posting date</th>
                        <th>Targets</th>
                      </tr>
                    </thead>
                    <tbody>
                      ${props.journals.map(
                        (j) =>
                          html`<tr>
                            <td><code title=${j.id}>${shortId(j.id, 36)}</code></td>
                            <td>${j.kind}</td>
                            <td>${j.posting_date}</td>
                            <td>
                              ${j.outbox.length === 0 ? html`<${Pill} tone="green">ledger</${Pill}>` : j.outbox.map((o) => html`<${Pill} tone=${o.status === 'posted' ? 'green' : o.status === 'dead' ? 'red' : 'amber'}>${o.target}: ${o.erp_document ?? o.status}</${Pill}> `)}
                            </td>
                          </tr>`,
                      )}
                    </tbody>
                  </table>`
            }
          </${Card}>`;
}
