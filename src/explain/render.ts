// Explanations as text a support agent can read out in a dispute: what was billed, why that amount, which events.
import type {
  DocumentRef,
  EventExplanation,
  InvoiceExplanation,
  JournalExplanation,
  JournalRef,
  LineExplanation,
  UsageLineage,
} from './model.js';

const docName = (d: DocumentRef) => `${d.number ?? d.id} (${d.kind === 'credit_note' ? 'credit note' : 'invoice'}, ${d.status})`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : /(s|x|ch|sh)$/.test(word) ? 'es' : 's'}`;
const LABEL_WIDTH = 11;
const field = (label: string, text: string) => `  ${label.padEnd(LABEL_WIDTH)}  ${text}`;
const more = (_label: string, text: string) => `  ${' '.repeat(LABEL_WIDTH)}  ${text}`;

function renderUsage(u: UsageLineage, lineQuantity: string): string[] {
  const what = u.aggregation === 'count' ? `count of ${u.event_type}` : `${u.aggregation} of ${u.meter} on ${u.event_type}`;
  const out = [
    field('usage', `${what} for ${u.customer}, ${u.window.from} <= time < ${u.window.to}`),
    more(
      'usage',
      `events up to seq ${u.event_seq_watermark}${u.includes_late_usage ? ', late events included (late-usage re-rating)' : ', late events excluded'}`,
    ),
    more(
      'usage',
      `${plural(u.event_count, 'event')}${u.first_event_time ? ` from ${u.first_event_time} to ${u.last_event_time}` : ''} -> quantity ${u.quantity}`,
    ),
  ];
  const checks = [
    `line ${lineQuantity}`,
    ...(u.rated ? [`rating run ${u.rated.quantity} from ${plural(u.rated.event_count, 'event')}`] : []),
  ];
  out.push(
    more(
      'usage',
      u.consistent
        ? `recount matches the ${checks.join(' and the ')}`
        : `RECOUNT DIFFERS from the ${checks.join(' / ')}: escalate to billing engineering`,
    ),
  );
  if (u.by_dimensions.length > 0) {
    const groups = u.by_dimensions.map(
      (g) =>
        `${Object.values(g.dimensions)
          .map((v) => v || '(none)')
          .join('/')} ${g.quantity} (${plural(g.event_count, 'event')})`,
    );
    out.push(more('usage', `by ${u.group_by.join('/')}: ${groups.join(', ')}${u.by_dimensions_truncated ? ', …' : ''}`));
  }
  const batches = u.usage_batches.map((b) => `${b.id} (${b.channel ?? '?'}, ${b.received_at ?? '?'}, ${plural(b.events, 'event')})`);
  out.push(
    field(
      'batches',
      `${plural(u.usage_batch_count, 'usage batch')}${batches.length > 0 ? `: ${batches.slice(0, 5).join(', ')}${u.usage_batch_count > 5 ? ', …' : ''}` : ''}`,
    ),
  );
  u.sample.forEach((e, i) => {
    const value = e.value === null ? '' : `  value ${e.value}`;
    const dims =
      Object.keys(e.dimensions).length > 0
        ? `  ${Object.entries(e.dimensions)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`
        : '';
    out.push(
      (i === 0 ? field : more)(
        'sample',
        `${e.source} ${e.id}  ${e.time}  seq ${e.seq}${value}${dims}  batch ${e.batch}${e.late ? '  (late)' : ''}`,
      ),
    );
  });
  return out;
}

export function renderLine(line: LineExplanation, currency: string): string {
  const out = [`Line ${line.line_no}  ${line.kind}  ${line.description}`];
  const perUnit = line.kind === 'usage' && line.unit_amount ? ` at ${line.unit_amount} per unit` : '';
  out.push(field('amount', `${line.amount} ${currency}${line.kind === 'usage' ? ` for quantity ${line.quantity}${perUnit}` : ''}`));
  out.push(field('covers', `${line.period.start} to ${line.period.end_inclusive}`));
  if (line.price) {
    const model = (line.price.definition?.model as string | undefined) ?? 'unknown model';
    out.push(
      field('price', `${line.price.id} version ${line.price.version} (${model}${line.price.plan ? `, plan ${line.price.plan}` : ''})`),
    );
  }
  line.tiers.forEach((t, i) => {
    const range = `${t.from} < q <= ${t.up_to ?? 'no limit'}`;
    const flat = t.flat_amount !== '0' ? ` + flat ${t.flat_amount}` : '';
    out.push(
      (i === 0 ? field : more)('tiers', `tier ${t.tier}  ${range.padEnd(26)}  ${t.quantity} x ${t.unit_amount}${flat} = ${t.amount}`),
    );
  });
  if (line.usage) out.push(...renderUsage(line.usage, line.quantity));
  if (line.note) out.push(field('why', line.note));
  return out.join('\n');
}

function renderTargets(j: JournalRef): string[] {
  const targets = j.outbox.map(
    (o) =>
      `${o.target}: ${o.status}${o.erp_document ? ` as ${o.erp_document}` : ''}${o.last_error ? ` (last error: ${o.last_error})` : ''}  [${o.key}]`,
  );
  return targets.length > 0 ? targets.map((t) => `    -> ${t}`) : ['    -> built-in ledger only (not queued for an ERP)'];
}

function renderJournals(journals: readonly JournalRef[]): string[] {
  if (journals.length === 0) return ['  (no journal)'];
  return journals.flatMap((j) => {
    const moved = j.posting_policy === 'next_open_period' ? ` (dated ${j.dated_on}, moved to the next open period)` : '';
    return [`  ${j.id}  ${j.kind}  posted ${j.posting_date}${moved}`, ...renderTargets(j)];
  });
}

export function renderInvoiceExplanation(e: InvoiceExplanation): string {
  const i = e.invoice;
  const out = [
    `${docName(i)}  ${i.customer_name ?? i.customer} (${i.customer}), ${i.legal_entity}`,
    field(
      'period',
      `${i.period_start} to ${i.period_end_inclusive}, total ${i.total} ${i.currency}, ${i.payment_status} (paid ${i.amount_paid})`,
    ),
    field('correlation', `${e.lineage.correlation_id}${e.lineage.correlation_stored ? '' : ' (not stored with the document)'}`),
  ];
  if (e.rating_run) {
    const r = e.rating_run;
    out.push(
      field(
        'rated by',
        `${r.id} with catalog version ${r.catalog_version}, events up to seq ${r.event_seq_watermark}${r.includes_late_usage ? ' including late usage' : ''}, at ${r.rated_at}`,
      ),
    );
  }
  if (e.corrects) out.push(field('corrects', `${docName(e.corrects)}: its lines are reversed here, so their usage is that invoice's`));
  if (e.corrected_by.length > 0) out.push(field('corrected', `by ${e.corrected_by.map(docName).join(', ')}`));
  for (const a of e.late_usage) {
    out.push(
      field(
        'late usage',
        `${a.key}: ${a.credit_note ? `credit note ${a.credit_note} and replacement ${a.replacement}` : 'amounts unchanged, nothing issued'}, billed in ${a.billed_in_period}`,
      ),
    );
  }
  out.push(
    field(
      'batches',
      `${plural(e.lineage.usage_batch_count, 'usage batch')} behind this document${e.lineage.usage_batches.length > 0 ? `: ${e.lineage.usage_batches.slice(0, 5).join(', ')}${e.lineage.usage_batch_count > 5 ? ', …' : ''}` : ''}`,
    ),
  );
  for (const line of e.lines) out.push('', renderLine(line, i.currency));
  out.push('', 'Journals and ERP', ...renderJournals(e.journals));
  return out.join('\n');
}

export function renderJournalExplanation(e: JournalExplanation): string {
  const j = e.journal;
  const source = e.payment ? `payment ${e.payment.id} of ${e.payment.amount} received ${e.payment.received_on}, applied to ` : '';
  const out = [
    `${j.id}  ${j.kind}  ${j.legal_entity}  posted ${j.posting_date}`,
    field('posts', `${source}${docName(e.invoice.invoice)} of ${e.invoice.invoice.customer_name ?? e.invoice.invoice.customer}`),
    field('memo', j.memo),
    field('correlation', e.invoice.lineage.correlation_id),
    ...(j.posting_policy === 'next_open_period' ? [field('dated', `${j.dated_on}, moved to the next open accounting period`)] : []),
    '  ERP',
    ...renderTargets(j),
    '',
    'Lines',
    ...e.lines.map((l) => {
      const amount = /^0(\.0+)?$/.test(l.debit) ? `Cr ${l.credit}` : `Dr ${l.debit}`;
      const carried =
        l.invoice_lines.length > 0 ? `  <- invoice line${l.invoice_lines.length === 1 ? '' : 's'} ${l.invoice_lines.join(', ')}` : '';
      return `  ${String(l.line_no).padStart(2)}  ${l.account.padEnd(8)} ${l.role.padEnd(16)} ${amount.padStart(14)} ${l.currency}${l.product ? `  ${l.product}` : ''}${carried}`;
    }),
  ];
  if (e.explained) {
    out.push('', `Journal line ${e.explained.journal_line} comes from:`);
    if (e.explained.invoice_lines.length === 0) out.push('  no invoice line: it is the tax, cash or a total of the document');
    for (const line of e.explained.invoice_lines) out.push('', renderLine(line, e.invoice.invoice.currency));
  }
  return out.join('\n');
}

export function renderEventExplanation(e: EventExplanation): string {
  const ev = e.event;
  const values = Object.entries(ev.meter_values)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const out = [
    `${ev.source} ${ev.id}  seq ${ev.seq}  ${ev.type}`,
    field(
      'customer',
      `${ev.customer} (subject ${ev.subject}), at ${ev.time}, received ${ev.received_at}${ev.late ? ', LATE (its period was closed)' : ''}`,
    ),
    ...(values ? [field('values', values)] : []),
    field(
      'batch',
      e.usage_batch
        ? `${e.usage_batch.id} (${e.usage_batch.channel}, ${e.usage_batch.received_at}, ${e.usage_batch.accepted} of ${e.usage_batch.received} accepted)`
        : '(unknown)',
    ),
    field('status', `${e.status}: ${e.note}`),
  ];
  for (const b of e.billed_in) {
    out.push('', `${docName(b.invoice)} line ${b.line_no}  ${b.meter}  ${b.window.from} to ${b.window.to}`);
    out.push(field('rated by', `${b.rating_run}, events up to seq ${b.event_seq_watermark}`));
    out.push(field('correlation', b.correlation_id));
    if (b.reversed_by.length > 0) out.push(field('reversed', `by ${b.reversed_by.map(docName).join(', ')}`));
    out.push(...renderJournals(b.journals));
  }
  if (e.billed_in_truncated) out.push('', '(more invoice lines than shown)');
  return out.join('\n');
}
