-- The tax mismatch KPI (src/reconcile/readers/erp.ts): reconciliation compares the tax each ERP holds on an invoice or
-- credit note it took in its own form with Accrue's (checkpoint tax_vs_erp). Its differences are exceptions like every
-- checkpoint's, so the checkpoint joins the list 008 allows; accrue_tax_mismatches_total counts them.
ALTER TABLE exceptions DROP CONSTRAINT exceptions_checkpoint_check;
ALTER TABLE exceptions ADD CONSTRAINT exceptions_checkpoint_check
  CHECK (checkpoint IN ('usage_events_vs_aggregates', 'aggregates_vs_rated', 'rated_vs_invoice_lines', 'invoices_vs_erp_postings',
                        'tax_vs_erp', 'payments_vs_receivable', 'trial_balance'));
