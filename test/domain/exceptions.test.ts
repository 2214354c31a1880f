// The scope a payment exception takes from its details (what migration 008's trigger computed in SQL).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { paymentScope, subjectDocuments } from '../../src/domain/exceptions.js';

describe('paymentScope', () => {
  it('reads a webhook payment: month received, currency, invoice', () => {
    assert.deepEqual(paymentScope({ payment: { received_on: '2026-10-31', currency: 'EUR', invoice: 'NW-1' } }), {
      period: '2026-10',
      currency: 'EUR',
      invoice_ref: 'NW-1',
    });
  });
  it('reads an ERP payment by its invoice number', () => {
    assert.deepEqual(paymentScope({ erp_payment: { received_on: '2026-01-02T00:00:00Z', currency: 'USD', invoice_number: 'NW-2' } }), {
      period: '2026-01',
      currency: 'USD',
      invoice_ref: 'NW-2',
    });
  });
  it('leaves what it cannot read empty', () => {
    assert.deepEqual(paymentScope({ connection: 'xero' }), { period: null, currency: null, invoice_ref: null });
    assert.deepEqual(paymentScope({ payment: { received_on: '2026-13-01', currency: '' } }), {
      period: null,
      currency: null,
      invoice_ref: null,
    });
    assert.deepEqual(paymentScope(null), { period: null, currency: null, invoice_ref: null });
  });
  it('takes a JSON null payment as the payment (SQL coalesce), not the ERP one', () => {
    assert.deepEqual(paymentScope({ payment: null, erp_payment: { received_on: '2026-02-01', invoice_number: 'NW-3' } }), {
      period: null,
      currency: null,
      invoice_ref: 'NW-3',
    });
  });
  it('names the subject as the payment document', () => {
    assert.deepEqual(subjectDocuments('p1'), [{ kind: 'payment', id: 'p1' }]);
  });
});
