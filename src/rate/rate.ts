// The rating stage's pure entry: which usage windows a customer's period needs (usageWindowsNeeded), and the draft
// invoices (one per currency) given those windows' quantities (rateCustomer, rateWindows). The rules are in
// docs/pricing.md and in this folder, one module per concern; every amount is rounded once via money.ts.
import type { Invoice } from '../domain/model.js';
import { fail, ok, problem, type Result } from '../domain/result.js';
import { planUsageWindows } from './charges.js';
import { draftInvoice } from './draft.js';
import type { CurrencyGroup, PeriodInput, RatingInput, Subject, UsageProvider, UsageWindow, WindowQuantity } from './lines.js';
import { subscriptionsInPeriod } from './segments.js';

export type { PeriodInput, RatingInput, UsageProvider, UsageWindow, WindowQuantity } from './lines.js';

/** The customer, its legal entity and its subscriptions in the period grouped by their plan's currency. */
function subjectOf(input: PeriodInput): Result<Subject> {
  const customer = input.index.customers.get(input.customer);
  if (!customer) return fail(problem('customer', 'unknown_customer', `no customer ${input.customer}`));
  const entity = input.index.legalEntities.get(customer.legal_entity);
  if (!entity) return fail(problem('customer.legal_entity', 'unknown_legal_entity', `no legal entity ${customer.legal_entity}`));
  const byCurrency = new Map<string, CurrencyGroup>();
  for (const sub of subscriptionsInPeriod(input.index.subscriptionsByCustomer.get(customer.id) ?? [], input.period)) {
    const plan = input.index.plans.get(sub.plan);
    if (!plan) return fail(problem('subscription.plan', 'unknown_plan', `no plan ${sub.plan}`));
    const group = byCurrency.get(plan.currency) ?? { currency: plan.currency, plans: [] };
    group.plans.push({ plan, sub });
    byCurrency.set(plan.currency, group);
  }
  const groups = [...byCurrency.values()].sort((a, b) => (a.currency < b.currency ? -1 : 1));
  return ok({ customer, entity, groups });
}

export const windowKey = (w: UsageWindow): string => `${w.meter}|${w.from}|${w.to}`;

/** The usage windows rating the period reads, each once, in the order rating reads them. */
export function usageWindowsNeeded(input: PeriodInput): Result<UsageWindow[]> {
  const subject = subjectOf(input);
  if (!subject.ok) return subject;
  const windows = new Map<string, UsageWindow>();
  for (const { plans } of subject.value.groups)
    for (const { plan, sub } of plans) for (const w of planUsageWindows(plan, sub, input.period)) windows.set(windowKey(w), w);
  return ok([...windows.values()]);
}

/** Rates the period from the quantities of the windows usageWindowsNeeded named (keyed by windowKey). */
export function rateWindows(
  input: PeriodInput,
  quantities: ReadonlyMap<string, WindowQuantity>,
  usageFingerprint: string,
): Result<Invoice[]> {
  const usage: UsageProvider = (meter, from, to) => {
    const answer = quantities.get(windowKey({ meter, from, to }));
    if (!answer) throw new Error(`rating asked for a window it did not ask for before: ${meter} ${from} ${to}`);
    return answer;
  };
  return rateCustomer({ ...input, usage, usageFingerprint });
}

export function rateCustomer(input: RatingInput): Result<Invoice[]> {
  const subject = subjectOf(input);
  if (!subject.ok) return subject;
  const invoices: Invoice[] = [];
  for (const group of subject.value.groups) {
    const invoice = draftInvoice(input, subject.value, group);
    if (!invoice.ok) return invoice;
    invoices.push(invoice.value);
  }
  return ok(invoices);
}
