// The scope an exception outside the checkpoints takes from its details (a payment's month, currency and invoice),
// and its default documents: pure rules of what migration 008's exceptions_payment_scope trigger did.

/** What the details of a payment exception say: `details.payment` (webhook) or `details.erp_payment` (ERP polling). */
export interface PaymentScope {
  period: string | null;
  currency: string | null;
  /** The invoice id or number the payment names: looked up for the legal entity and customer. */
  invoice_ref: string | null;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** jsonb `->`: a member of an object, or undefined (SQL NULL) for anything else. */
const member = (value: unknown, name: string): unknown => (isObject(value) && name in value ? value[name] : undefined);

/** jsonb `->>`: a member as text; JSON null and a missing member are SQL NULL. */
const memberText = (value: unknown, name: string): string | null => {
  const found = member(value, name);
  if (found === undefined || found === null) return null;
  return typeof found === 'string' ? found : JSON.stringify(found);
};

/** The payment's month (received_on), currency and invoice reference; all null when the details name no payment. */
export function paymentScope(details: unknown): PaymentScope {
  const none: PaymentScope = { period: null, currency: null, invoice_ref: null };
  // SQL coalesce: a JSON null under `payment` is still a value (only a missing member falls through).
  const webhook = member(details, 'payment');
  const payment = webhook !== undefined ? webhook : member(details, 'erp_payment');
  if (payment === undefined) return none;
  const receivedOn = memberText(payment, 'received_on') ?? '';
  const currency = memberText(payment, 'currency');
  return {
    period: /^\d{4}-(0[1-9]|1[0-2])-\d{2}/.test(receivedOn) ? receivedOn.slice(0, 7) : null,
    currency: currency === '' ? null : currency,
    invoice_ref: memberText(member(details, 'payment'), 'invoice') ?? memberText(member(details, 'erp_payment'), 'invoice_number'),
  };
}

/** The documents of an exception outside the checkpoints when none are given: the payment (its subject). */
export const subjectDocuments = (subject: string): Array<{ kind: string; id: string }> => [{ kind: 'payment', id: subject }];
