-- Lineage: the correlation id of every finalized invoice, journal and outbox row, kept apart from the documents so
-- their content hashes do not change. Written by the database in the transaction that writes the document, so every
-- path (billing run, late-usage corrections, payments, replays) carries it without a round trip.
-- The id is the recipe of src/domain/correlation.ts: 'corr:v1:' || first 24 hex of SHA-256 over the RFC 8785 JSON
-- {"invoice":…,"rating_run":…}. For these two string fields RFC 8785 is plain JSON with sorted keys and no spaces,
-- and to_json(text) escapes exactly as it does (a test checks both recipes agree on arbitrary strings).
CREATE FUNCTION accrue_correlation_of(invoice text, rating_run text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT 'corr:v1:' || left(encode(sha256(convert_to(
    '{"invoice":' || to_json(invoice)::text || ',"rating_run":' || coalesce(to_json(rating_run)::text, 'null') || '}', 'UTF8')), 'hex'), 24)
$$;

CREATE TABLE correlations (
  subject_kind   text NOT NULL CHECK (subject_kind IN ('invoice', 'journal', 'outbox')),
  subject_id     text NOT NULL,                  -- the invoice id, the journal id or the outbox key
  correlation_id text NOT NULL CHECK (correlation_id ~ '^corr:v1:[0-9a-f]{24}$'),
  rating_run     text,                           -- the run whose usage the invoice bills (a credit note: the run it reverses)
  invoice        text NOT NULL,
  journal        text,
  outbox_key     text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subject_kind, subject_id)         -- one correlation per document: a replayed write is a no-op
);
CREATE INDEX correlations_by_id ON correlations (correlation_id);

-- An invoice or credit note gets its correlation when it is finalized (drafts come and go).
CREATE FUNCTION correlate_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE rr text := NEW.document->>'rating_run';
BEGIN
  INSERT INTO correlations (subject_kind, subject_id, correlation_id, rating_run, invoice)
  VALUES ('invoice', NEW.id, accrue_correlation_of(NEW.id, rr), rr, NEW.id) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
CREATE TRIGGER invoices_correlate AFTER UPDATE OF status ON invoices FOR EACH ROW
  WHEN (OLD.status = 'draft' AND NEW.status = 'finalized') EXECUTE FUNCTION correlate_invoice();

-- A journal follows its source invoice; a payment journal, the invoice the payment was applied to. A journal whose
-- source is neither (none is written today) gets no correlation rather than a made-up one.
CREATE FUNCTION correlate_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE inv text; rr text;
BEGIN
  inv := CASE WHEN NEW.kind = 'payment' THEN (SELECT invoice_id FROM payments WHERE id = NEW.source_document) ELSE NEW.source_document END;
  SELECT i.document->>'rating_run' INTO rr FROM invoices i WHERE i.id = inv;
  IF NOT FOUND THEN RETURN NULL; END IF;
  INSERT INTO correlations (subject_kind, subject_id, correlation_id, rating_run, invoice, journal)
  VALUES ('journal', NEW.id, accrue_correlation_of(inv, rr), rr, inv, NEW.id) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
CREATE TRIGGER journals_correlate AFTER INSERT ON journals FOR EACH ROW EXECUTE FUNCTION correlate_journal();

CREATE FUNCTION correlate_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO correlations (subject_kind, subject_id, correlation_id, rating_run, invoice, journal, outbox_key)
  SELECT 'outbox', NEW.key, c.correlation_id, c.rating_run, c.invoice, c.journal, NEW.key
    FROM correlations c WHERE c.subject_kind = 'journal' AND c.subject_id = NEW.document_id
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
CREATE TRIGGER outbox_correlate AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION correlate_outbox();

-- Documents written before this migration get theirs now, by the same rules.
INSERT INTO correlations (subject_kind, subject_id, correlation_id, rating_run, invoice)
SELECT 'invoice', i.id, accrue_correlation_of(i.id, i.document->>'rating_run'), i.document->>'rating_run', i.id
  FROM invoices i WHERE i.status <> 'draft';
INSERT INTO correlations (subject_kind, subject_id, correlation_id, rating_run, invoice, journal)
SELECT 'journal', j.id, accrue_correlation_of(i.id, i.document->>'rating_run'), i.document->>'rating_run', i.id, j.id
  FROM journals j
  JOIN invoices i ON i.id = CASE WHEN j.kind = 'payment' THEN (SELECT p.invoice_id FROM payments p WHERE p.id = j.source_document) ELSE j.source_document END;
INSERT INTO correlations (subject_kind, subject_id, correlation_id, rating_run, invoice, journal, outbox_key)
SELECT 'outbox', o.key, c.correlation_id, c.rating_run, c.invoice, c.journal, o.key
  FROM outbox o JOIN correlations c ON c.subject_kind = 'journal' AND c.subject_id = o.document_id;
