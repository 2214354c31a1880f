-- Issue 18: other currencies, the whole life of prepaid credits, and revenue recognition.
--
-- 1. Exchange rates are data: imported (ECB reference rates, or date,base,quote,rate files), effective-dated, never
--    edited. `1 base = rate quote`, the rate kept exactly as imported. A rate once imported for a source, date and
--    pair is final: the same rate again is nothing to do, another rate is a conflict (src/map/fx-rates.ts).
CREATE TABLE fx_imports (
  id           text PRIMARY KEY,             -- fx:v1:<sha256 of the file's bytes>
  source       text NOT NULL CHECK (source ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  format       text NOT NULL CHECK (format IN ('ecb', 'simple')),
  file_name    text NOT NULL,
  rates        integer NOT NULL CHECK (rates >= 0),
  imported_by  text NOT NULL,
  imported_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE fx_rates (
  source     text NOT NULL CHECK (source ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
  rate_date  date NOT NULL,
  base       text NOT NULL CHECK (base ~ '^[A-Z]{3}$'),
  quote      text NOT NULL CHECK (quote ~ '^[A-Z]{3}$'),
  rate       text NOT NULL CHECK (rate ~ '^[0-9]{1,20}(\.[0-9]{1,20})?$' AND rate::numeric > 0),
  import_id  text NOT NULL REFERENCES fx_imports (id),
  PRIMARY KEY (source, rate_date, base, quote),
  CHECK (base <> quote)
);
CREATE INDEX fx_rates_pair ON fx_rates (base, quote, rate_date);
CREATE TRIGGER fx_rates_append_only BEFORE UPDATE OR DELETE ON fx_rates FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER fx_imports_append_only BEFORE UPDATE OR DELETE ON fx_imports FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- 2. A journal is booked in its legal entity's functional currency. When its document is in another currency (the
--    transaction currency), the journal names the rate it used and each line keeps the transaction amount beside.
ALTER TABLE journals
  ADD COLUMN fx_currency  text CHECK (fx_currency ~ '^[A-Z]{3}$'),        -- the transaction currency
  ADD COLUMN fx_rate      text CHECK (fx_rate ~ '^[0-9]{1,20}(\.[0-9]{1,20})?$' AND fx_rate::numeric > 0), -- functional per transaction unit
  ADD COLUMN fx_rate_date date,
  ADD COLUMN fx_source    text;
ALTER TABLE journals ADD CONSTRAINT journals_fx_complete
  CHECK ((fx_currency IS NULL) = (fx_rate IS NULL) AND (fx_rate IS NULL) = (fx_rate_date IS NULL) AND (fx_rate IS NULL) = (fx_source IS NULL));

ALTER TABLE journal_lines
  ADD COLUMN tx_currency     text CHECK (tx_currency ~ '^[A-Z]{3}$'),
  ADD COLUMN tx_amount_minor bigint CHECK (tx_amount_minor >= 0);       -- on the same side as the line
ALTER TABLE journal_lines ADD CONSTRAINT journal_lines_tx_complete CHECK ((tx_currency IS NULL) = (tx_amount_minor IS NULL));

-- 3. The new journal kinds (docs/accounting.md): the grant and expiry of prepaid credits, revenue recognized from a
--    schedule, unbilled usage accrued at a month end and reversed, open receivables revalued at a month end and
--    reversed. A reversal mirrors its journal line for line (028's trigger checks every *_reversal kind).
ALTER TABLE journals DROP CONSTRAINT journals_kind_check;
ALTER TABLE journals ADD CONSTRAINT journals_kind_check
  CHECK (kind IN ('invoice', 'credit_note', 'credit_drawdown', 'payment', 'invoice_reversal', 'credit_drawdown_reversal',
                  'credit_grant', 'credit_expiry', 'revenue_recognition',
                  'unbilled_accrual', 'unbilled_accrual_reversal', 'fx_revaluation', 'fx_revaluation_reversal'));
ALTER TABLE journals DROP CONSTRAINT journals_reversal_names_original;
ALTER TABLE journals ADD CONSTRAINT journals_reversal_names_original
  CHECK ((kind IN ('invoice_reversal', 'credit_drawdown_reversal', 'unbilled_accrual_reversal', 'fx_revaluation_reversal'))
         = (reverses IS NOT NULL));

-- 4. Revenue schedules: a fee billed in advance for a longer term (an annual plan) is recognized ratably per month.
--    One schedule per invoice line, fixed when the invoice is final; its monthly amounts are derived, never stored
--    apart (src/domain/revenue.ts), and each month's recognition is a journal.
CREATE TABLE revenue_schedules (
  id             text PRIMARY KEY,            -- rev:v1:<invoice id>:<line no>
  invoice_id     text NOT NULL REFERENCES invoices (id),
  line_no        integer NOT NULL CHECK (line_no >= 1),
  legal_entity   text NOT NULL,
  customer       text NOT NULL,
  product        text NOT NULL,
  currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount_minor   bigint NOT NULL CHECK (amount_minor > 0),
  service_start  date NOT NULL,
  service_end    date NOT NULL,              -- exclusive
  months         integer NOT NULL CHECK (months BETWEEN 1 AND 120),
  content_hash   text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (invoice_id, line_no),
  CHECK (service_end > service_start)
);
CREATE TRIGGER revenue_schedules_append_only BEFORE UPDATE OR DELETE ON revenue_schedules
  FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER fx_rates_no_truncate BEFORE TRUNCATE ON fx_rates FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();
CREATE TRIGGER revenue_schedules_no_truncate BEFORE TRUNCATE ON revenue_schedules
  FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();

-- 5. Lineage (010) for journals that no invoice is the source of: a prepaid-credit grant sold or expired, a month's
--    revenue recognition, a month-end revaluation. Their correlation is rooted in their own source document (the
--    grant, `revrec:<entity>:<month>`, `fxreval:<entity>:<month>`), which `correlations.invoice` then names, with no
--    rating run: the recipe of src/domain/correlation.ts with that document as the root. Their outbox rows follow.
CREATE OR REPLACE FUNCTION correlate_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE inv text; rr text;
BEGIN
  inv := CASE WHEN NEW.kind = 'payment' THEN (SELECT invoice_id FROM payments WHERE id = NEW.source_document) ELSE NEW.source_document END;
  SELECT i.document->>'rating_run' INTO rr FROM invoices i WHERE i.id = inv;
  IF NOT FOUND THEN
    IF NEW.kind NOT IN ('credit_grant', 'credit_expiry', 'revenue_recognition', 'unbilled_accrual', 'unbilled_accrual_reversal',
                        'fx_revaluation', 'fx_revaluation_reversal') THEN
      RETURN NULL;
    END IF;
    inv := NEW.source_document;
    rr := NULL;
  END IF;
  INSERT INTO correlations (subject_kind, subject_id, correlation_id, rating_run, invoice, journal)
  VALUES ('journal', NEW.id, accrue_correlation_of(inv, rr), rr, inv, NEW.id) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
