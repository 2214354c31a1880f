-- A billing run closes a period in two steps (src/invoice/billing-run.ts). The first marks it 'closing' and fixes its
-- event watermark; rating and finalizing follow; the last step marks it 'closed' only once every invoice of the run
-- exists. A failed or killed run leaves 'closing': ingestion treats it as open (no event is flagged late) and the
-- next close resumes it with the same watermark, so an invoice finalized before the failure is found, not redrafted.
ALTER TABLE billing_periods DROP CONSTRAINT billing_periods_status_check;
ALTER TABLE billing_periods ADD CONSTRAINT billing_periods_status_check CHECK (status IN ('open', 'closing', 'closed'));
-- When the first attempt of the close began; kept once closed.
ALTER TABLE billing_periods ADD COLUMN closing_since timestamptz;
ALTER TABLE billing_periods ADD CONSTRAINT billing_periods_closing_has_watermark CHECK (status <> 'closing' OR event_seq_watermark IS NOT NULL);
