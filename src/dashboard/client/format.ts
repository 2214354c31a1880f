// Display of exact decimal strings without turning them into floats: digits are grouped as text. Only trends and
// charts use numbers, and only to draw.

/** "1234567.50" -> "1,234,567.50"; the text keeps every digit it came with. */
export function groupDigits(text: string): string {
  const negative = text.startsWith('-');
  const [whole = '0', fraction] = (negative ? text.slice(1) : text).split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${negative ? '−' : ''}${grouped}${fraction !== undefined ? `.${fraction}` : ''}`;
}

export function money(text: string | null | undefined, currency: string | null): string {
  if (text === null || text === undefined) return '—';
  return `${groupDigits(text)}${currency ? ` ${currency}` : ''}`;
}

export function count(value: number | string | null | undefined): string {
  if (value === null || value === undefined) return '—';
  return groupDigits(String(value));
}

/** A ratio as a percentage, by moving the decimal point two places: "0.5123" -> "51.23 %". */
export function percent(ratio: string | null): string {
  if (ratio === null) return '—';
  const negative = ratio.startsWith('-');
  const [whole = '0', fraction = ''] = (negative ? ratio.slice(1) : ratio).split('.');
  const digits = `${whole}${fraction.padEnd(2, '0')}`;
  const point = whole.length + 2;
  const intPart = digits.slice(0, point).replace(/^0+(?=\d)/, '');
  const rest = digits.slice(point);
  return `${negative ? '−' : ''}${intPart}${rest ? `.${rest}` : ''} %`;
}

export function duration(seconds: string | number | null): string {
  if (seconds === null) return '—';
  let s = Math.max(0, Math.floor(Number(seconds)));
  const d = Math.floor(s / 86_400);
  s -= d * 86_400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s} s`;
  return `${s} s`;
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(iso) ? `${iso.slice(0, 16).replace('T', ' ')} UTC` : iso;
}

/** Relative change for a trend arrow; a display figure, computed in floating point on purpose. */
export function trend(value: string | null, previous: string | null): { direction: 'up' | 'down' | 'flat'; text: string } | null {
  if (value === null || previous === null) return null;
  const now = Number(value);
  const before = Number(previous);
  if (!Number.isFinite(now) || !Number.isFinite(before)) return null;
  if (now === before) return { direction: 'flat', text: 'same as last period' };
  if (before === 0) return { direction: now > 0 ? 'up' : 'down', text: 'new this period' };
  const change = ((now - before) / Math.abs(before)) * 100;
  return { direction: change > 0 ? 'up' : 'down', text: `${change > 0 ? '+' : ''}${change.toFixed(1)} % vs last period` };
}

export function shortId(id: string, keep = 14): string {
  return id.length > keep + 1 ? `${id.slice(0, keep)}…` : id;
}

export const QUEUE_LABELS: Record<string, string> = {
  finance_operations: 'Finance operations',
  billing_engineering: 'Billing engineering',
  integration_support: 'Integration support',
};

export const CHECKPOINT_LABELS: Record<string, string> = {
  usage_events_vs_aggregates: 'Usage events ↔ aggregates',
  aggregates_vs_rated: 'Aggregates ↔ rated charges',
  rated_vs_invoice_lines: 'Rated charges ↔ invoice lines',
  invoices_vs_erp_postings: 'Invoices ↔ postings',
  tax_vs_erp: 'Tax ↔ ERP tax',
  payments_vs_receivable: 'Payments ↔ receivable',
  trial_balance: 'Trial balance',
};

/** ISO 4217 minor digits of a currency, from the browser's own data (USD 2, JPY 0, KWD 3). */
export function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** Minor units as text to major units as text, by moving the decimal point: ("-64243", "USD") -> "-642.43". */
export function minorToMajor(minor: string, currency: string): string {
  const digits = minorDigits(currency);
  const negative = minor.startsWith('-');
  const body = (negative ? minor.slice(1) : minor).padStart(digits + 1, '0');
  const major = digits === 0 ? body : `${body.slice(0, -digits)}.${body.slice(-digits)}`;
  return `${negative ? '-' : ''}${major}`;
}

/** Reconciliation amounts: minor units for the money checkpoints, exact decimals for the usage ones. */
export const MONEY_CHECKPOINTS = new Set([
  'rated_vs_invoice_lines',
  'invoices_vs_erp_postings',
  'tax_vs_erp',
  'payments_vs_receivable',
  'trial_balance',
]);

export function reconAmount(
  value: string | null | undefined,
  checkpoint: string | null | undefined,
  currency: string | null | undefined,
): string {
  if (value === null || value === undefined) return '—';
  if (checkpoint && MONEY_CHECKPOINTS.has(checkpoint) && currency) return money(minorToMajor(value, currency), currency);
  return groupDigits(value);
}
