// invoices.json: what `accrue bill` writes; every amount a decimal string in major units ("1234.50").
import { formatMajor } from '../domain/money.js';
import type { Invoice, InvoiceLine, InvoiceParty, PostalAddress } from '../domain/model.js';

const CHARGE_KINDS = new Set(['flat', 'usage', 'minimum_true_up', 'late_usage']);

/** The last day a period covers, from its exclusive end date ("2026-12-01" -> "2026-11-30"). */
export function inclusiveEnd(periodEndExclusive: string): string {
  const end = new Date(`${periodEndExclusive}T00:00:00Z`);
  end.setUTCDate(end.getUTCDate() - 1);
  return end.toISOString().slice(0, 10);
}

/**
 * What a line reads on the customer's documents (JSON, PDF, dashboard): quantity × unit price = amount, before the
 * amount's rounding to the minor unit. A packaged price reads in packages (the metered usage is `usage_quantity`);
 * a tiered line has no single unit price (its tiers say how it was priced).
 */
export function presentedLine(line: InvoiceLine): {
  quantity: string;
  unit_price: string | null;
  unit: string | null;
  usage_quantity: string | null;
} {
  if (line.package)
    return {
      quantity: line.package.quantity,
      unit_price: line.unit_amount,
      unit: `package of ${line.package.size}`,
      usage_quantity: line.quantity,
    };
  return { quantity: line.quantity, unit_price: line.tiers.length > 0 ? null : line.unit_amount, unit: null, usage_quantity: null };
}

/** Keys in print order (a stored document comes back from jsonb with its keys reordered). */
const address = (a: PostalAddress | null) =>
  a
    ? {
        lines: a.lines,
        city: a.city,
        ...(a.region === undefined ? {} : { region: a.region }),
        ...(a.postal_code === undefined ? {} : { postal_code: a.postal_code }),
        country: a.country,
      }
    : null;
const party = (p: InvoiceParty | undefined) => (p ? { name: p.name, address: address(p.address), tax_id: p.tax_id } : null);

/** The invoice's totals in major units, in print order: subtotal, discounts, credits, tax per jurisdiction, tax, total. */
export function invoiceAmounts(invoice: Invoice) {
  const major = (minor: bigint) => formatMajor(minor, invoice.currency);
  return {
    subtotal: major(invoice.subtotal_minor),
    discount: major(invoice.discount_minor),
    credits_applied: major(invoice.credits_applied_minor),
    tax_lines: invoice.tax_lines.map((t) => ({
      jurisdiction: t.jurisdiction,
      rate: t.rate,
      taxable: major(t.taxable_minor),
      tax: major(t.tax_minor),
    })),
    tax: major(invoice.tax_minor),
    total: major(invoice.total_minor),
  };
}

export function exportInvoice(invoice: Invoice) {
  const major = (minor: bigint) => formatMajor(minor, invoice.currency);
  const line = (l: Invoice['lines'][number]) => {
    const shown = presentedLine(l);
    return {
      product: l.product,
      meter: l.meter,
      description: l.description,
      quantity: shown.quantity,
      ...(shown.unit ? { unit: shown.unit, usage_quantity: shown.usage_quantity } : {}),
      unit_price: shown.unit_price,
      amount: major(l.amount_minor),
    };
  };
  return {
    number: invoice.number,
    kind: invoice.kind,
    status: invoice.status,
    ...(invoice.corrects ? { corrects: invoice.corrects } : {}),
    customer: invoice.customer,
    legal_entity: invoice.legal_entity,
    // Legal content as the invoice was issued (null on documents stored before it was recorded).
    seller: party(invoice.seller),
    buyer: party(invoice.buyer),
    issue_date: invoice.issue_date ?? null,
    payment_terms_days: invoice.payment_terms_days ?? null,
    due_date: invoice.due_date ?? null,
    currency: invoice.currency,
    period_start: invoice.period_start,
    period_end: inclusiveEnd(invoice.period_end),
    // Charge lines sum to the subtotal; discounts and credit drawdowns follow as their own negative lines.
    lines: invoice.lines.filter((l) => CHARGE_KINDS.has(l.kind)).map(line),
    adjustments: invoice.lines
      .filter((l) => !CHARGE_KINDS.has(l.kind))
      .map((l) => ({ kind: l.kind, ...line(l), ...(l.credit_grant ? { credit_grant: l.credit_grant } : {}) })),
    ...invoiceAmounts(invoice),
    rounding: invoice.rounding,
  };
}

/** Deterministic order: legal entity, then number (gapless per entity), then key for drafts. */
export function exportInvoices(invoices: readonly Invoice[]): string {
  const sorted = [...invoices].sort(
    (a, b) => compare(a.legal_entity, b.legal_entity) || compare(a.number ?? '', b.number ?? '') || compare(a.key, b.key),
  );
  return `${JSON.stringify(sorted.map(exportInvoice), null, 2)}\n`;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
