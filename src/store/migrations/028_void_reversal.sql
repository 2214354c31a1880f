-- Voiding an invoice reverses its journals (issue 17): a reversing journal per journal of the invoice, every line with
-- debit and credit swapped, written in the transaction that voids it, and queued to the ERPs the invoice went to.
-- The schema is the last guard: a reversal names the one journal it reverses, mirrors its lines exactly, and an
-- invoice that has journals cannot become void without a reversal of each of them.

ALTER TABLE journals DROP CONSTRAINT journals_kind_check;
ALTER TABLE journals ADD CONSTRAINT journals_kind_check
  CHECK (kind IN ('invoice', 'credit_note', 'credit_drawdown', 'payment', 'invoice_reversal', 'credit_drawdown_reversal'));

-- jrn:v1:<kind>_reversal:<source document>: the reversal of journal jrn:v1:<kind>:<source document> (src/domain/keys.ts).
ALTER TABLE journals ADD COLUMN reverses text UNIQUE REFERENCES journals (id);
ALTER TABLE journals ADD CONSTRAINT journals_reversal_names_original
  CHECK ((kind IN ('invoice_reversal', 'credit_drawdown_reversal')) = (reverses IS NOT NULL));

-- At commit: a reversal has the lines of the journal it reverses, line for line, debit and credit swapped; it reverses
-- a journal of the same document and kind; and it is not dated before the journal it reverses.
CREATE FUNCTION journal_reversal_mirrors() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE original journals%ROWTYPE; mismatched integer;
BEGIN
  IF NEW.reverses IS NULL THEN RETURN NULL; END IF;
  SELECT * INTO original FROM journals WHERE id = NEW.reverses;
  IF original.kind || '_reversal' <> NEW.kind OR original.source_document <> NEW.source_document
     OR original.legal_entity <> NEW.legal_entity THEN
    RAISE EXCEPTION 'journal % is not a reversal of %: kind, document or legal entity differ', NEW.id, NEW.reverses;
  END IF;
  IF NEW.posting_date < original.posting_date THEN
    RAISE EXCEPTION 'reversal % is dated % before the journal it reverses (%)', NEW.id, NEW.posting_date, original.posting_date;
  END IF;
  SELECT count(*) INTO mismatched FROM (
    (SELECT line_no, account, credit_minor AS debit_minor, debit_minor AS credit_minor, currency, customer, product
       FROM journal_lines WHERE journal_id = original.id
     EXCEPT ALL
     SELECT line_no, account, debit_minor, credit_minor, currency, customer, product FROM journal_lines WHERE journal_id = NEW.id)
    UNION ALL
    (SELECT line_no, account, debit_minor, credit_minor, currency, customer, product FROM journal_lines WHERE journal_id = NEW.id
     EXCEPT ALL
     SELECT line_no, account, credit_minor, debit_minor, currency, customer, product FROM journal_lines WHERE journal_id = original.id)
  ) d;
  IF mismatched > 0 THEN
    RAISE EXCEPTION 'reversal % does not mirror the lines of %: % lines differ', NEW.id, NEW.reverses, mismatched;
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER journal_reversal_mirrors AFTER INSERT ON journals
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_reversal_mirrors();

-- At commit: an invoice voided has a reversal of each of its journals (so its receivable does not stay booked).
CREATE FUNCTION invoice_void_reversed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE unreversed text;
BEGIN
  SELECT j.id INTO unreversed FROM journals j
   WHERE j.source_document = NEW.id AND j.kind IN ('invoice', 'credit_drawdown')
     AND NOT EXISTS (SELECT 1 FROM journals r WHERE r.reverses = j.id)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invoice % is void but its journal % has no reversal; void it through the void use case', NEW.id, unreversed;
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER invoice_void_reversed AFTER UPDATE OF status ON invoices DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW WHEN (NEW.status = 'void' AND OLD.status IS DISTINCT FROM 'void') EXECUTE FUNCTION invoice_void_reversed();
