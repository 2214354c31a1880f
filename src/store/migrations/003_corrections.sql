-- Corrections: late usage re-rates a closed period into a credit note against the invoice in force and a
-- replacement invoice. Each adjustment is keyed by the period, the customer and the event watermark it read.
CREATE TABLE late_usage_adjustments (
  key                 text PRIMARY KEY,           -- adj:v1:<customer>:<currency>:<period>:<watermark>
  customer            text NOT NULL,
  period              text NOT NULL,
  event_seq_watermark bigint NOT NULL,
  corrected_invoice   text NOT NULL REFERENCES invoices (id),
  credit_note         text REFERENCES invoices (id),
  replacement         text REFERENCES invoices (id),
  billed_in_period    text NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX late_usage_by_invoice ON late_usage_adjustments (corrected_invoice);
