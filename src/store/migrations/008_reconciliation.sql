-- Reconciliation: the exceptions table (005) learns the checkpoint, the period, the scope and both sides of a
-- difference, who owns it and how it ended; exception_events is the append-only history of every move.

ALTER TABLE exceptions
  ADD COLUMN checkpoint          text CHECK (checkpoint IN ('usage_events_vs_aggregates', 'aggregates_vs_rated', 'rated_vs_invoice_lines',
                                                            'invoices_vs_erp_postings', 'payments_vs_receivable', 'trial_balance')),
  ADD COLUMN period              text CHECK (period ~ '^\d{4}-(0[1-9]|1[0-2])$'),
  ADD COLUMN legal_entity        text,
  ADD COLUMN customer            text,
  ADD COLUMN currency            text,
  ADD COLUMN connector           text,
  ADD COLUMN item                text,
  ADD COLUMN left_amount         text,           -- exact decimal or minor units, as text: never a float
  ADD COLUMN right_amount        text,
  ADD COLUMN difference          text,
  ADD COLUMN documents           jsonb NOT NULL DEFAULT '[]',
  ADD COLUMN assigned_to         text,
  ADD COLUMN resolution_document text,
  ADD COLUMN waived_reason       text,
  ADD COLUMN waived_by           text,
  ADD COLUMN updated_at          timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN last_seen_at        timestamptz,    -- the last reconciliation run that still found the difference
  ADD COLUMN cleared_at          timestamptz;    -- a later run no longer found it; it stays open for a person to close

-- The lifecycle's facts are in the row: an assignee, the correcting document, the reason and who waived.
ALTER TABLE exceptions
  ADD CONSTRAINT exceptions_assigned_has_assignee CHECK (status NOT IN ('assigned', 'resolved', 'waived') OR assigned_to IS NOT NULL),
  ADD CONSTRAINT exceptions_resolved_has_document CHECK (status <> 'resolved' OR (resolution_document IS NOT NULL AND resolution_document <> '')),
  ADD CONSTRAINT exceptions_waived_has_reason CHECK (status <> 'waived' OR (waived_reason IS NOT NULL AND waived_reason <> '' AND waived_by IS NOT NULL AND waived_by <> '')),
  ADD CONSTRAINT exceptions_checkpoint_scope CHECK (checkpoint IS NULL OR (period IS NOT NULL AND legal_entity IS NOT NULL AND item IS NOT NULL));

CREATE INDEX exceptions_period_scope ON exceptions (legal_entity, period, status);
CREATE INDEX exceptions_queue ON exceptions (owner_queue, status);

-- Settlement's payment exceptions (webhook: details.payment; ERP polling: details.erp_payment) get their period (the
-- day received) and legal entity (the invoice's) as they are written, so an overpayment in a month holds that month's
-- close like any reconciliation difference.
CREATE FUNCTION exception_payment_scope(details jsonb, OUT period text, OUT currency text, OUT legal_entity text, OUT customer text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  payment jsonb := coalesce(details->'payment', details->'erp_payment');
  ref text := coalesce(details->'payment'->>'invoice', details->'erp_payment'->>'invoice_number');
BEGIN
  IF payment IS NULL THEN RETURN; END IF;
  IF coalesce(payment->>'received_on', '') ~ '^\d{4}-(0[1-9]|1[0-2])-\d{2}' THEN period := substr(payment->>'received_on', 1, 7); END IF;
  currency := nullif(payment->>'currency', '');
  IF ref IS NOT NULL THEN
    SELECT i.legal_entity, i.customer INTO legal_entity, customer FROM invoices i WHERE i.id = ref OR i.number = ref ORDER BY i.id LIMIT 1;
  END IF;
END $$;

CREATE FUNCTION exceptions_payment_scope() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  scope record;
BEGIN
  IF NEW.checkpoint IS NULL THEN
    scope := exception_payment_scope(NEW.details);
    NEW.period := coalesce(NEW.period, scope.period);
    NEW.currency := coalesce(NEW.currency, scope.currency);
    NEW.legal_entity := coalesce(NEW.legal_entity, scope.legal_entity);
    NEW.customer := coalesce(NEW.customer, scope.customer);
    IF NEW.documents = '[]'::jsonb THEN NEW.documents := jsonb_build_array(jsonb_build_object('kind', 'payment', 'id', NEW.subject)); END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER exceptions_payment_scope BEFORE INSERT ON exceptions FOR EACH ROW EXECUTE FUNCTION exceptions_payment_scope();

UPDATE exceptions e SET period = s.period, currency = s.currency, legal_entity = s.legal_entity, customer = s.customer,
       documents = jsonb_build_array(jsonb_build_object('kind', 'payment', 'id', e.subject))
  FROM exceptions x CROSS JOIN LATERAL exception_payment_scope(x.details) s
 WHERE x.id = e.id AND e.checkpoint IS NULL;

-- Every move of an exception: opened, cleared, reappeared, assigned, resolved, waived. Append-only.
CREATE TABLE exception_events (
  exception_id  text NOT NULL REFERENCES exceptions (id),
  ordinal       integer NOT NULL CHECK (ordinal >= 1),   -- the nth move of this exception: the idempotency key
  action        text NOT NULL CHECK (action IN ('open', 'clear', 'reappear', 'assign', 'resolve', 'waive')),
  from_status   text CHECK (from_status IN ('open', 'assigned', 'resolved', 'waived')),
  to_status     text NOT NULL CHECK (to_status IN ('open', 'assigned', 'resolved', 'waived')),
  actor         text NOT NULL CHECK (actor <> ''),
  at            timestamptz NOT NULL DEFAULT now(),
  reason        text,
  details       jsonb,
  PRIMARY KEY (exception_id, ordinal)
);
CREATE INDEX exception_events_at ON exception_events (at);

-- Settlement writes its exceptions directly; their history starts with this open event.
CREATE FUNCTION exceptions_payment_opened() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO exception_events (exception_id, ordinal, action, from_status, to_status, actor, at, details)
  VALUES (NEW.id, 1, 'open', NULL, NEW.status, 'system:settle', NEW.created_at, jsonb_build_object('kind', NEW.kind));
  RETURN NULL;
END $$;
CREATE TRIGGER exceptions_payment_opened AFTER INSERT ON exceptions FOR EACH ROW WHEN (NEW.checkpoint IS NULL)
  EXECUTE FUNCTION exceptions_payment_opened();
INSERT INTO exception_events (exception_id, ordinal, action, from_status, to_status, actor, at, details)
SELECT id, 1, 'open', NULL, status, 'system:settle', created_at, jsonb_build_object('kind', kind) FROM exceptions WHERE checkpoint IS NULL;

CREATE FUNCTION exception_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on exception_events refused: the history of an exception is append-only', TG_OP;
END $$;
CREATE TRIGGER exception_events_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON exception_events
  FOR EACH STATEMENT EXECUTE FUNCTION exception_events_append_only();

-- Resolved and waived are final in the database too: the row's outcome cannot be rewritten.
CREATE FUNCTION exceptions_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status IN ('resolved', 'waived') AND (NEW.status IS DISTINCT FROM OLD.status OR NEW.resolution_document IS DISTINCT FROM OLD.resolution_document
      OR NEW.waived_reason IS DISTINCT FROM OLD.waived_reason OR NEW.waived_by IS DISTINCT FROM OLD.waived_by) THEN
    RAISE EXCEPTION 'exception % is %; resolved and waived exceptions are final', OLD.id, OLD.status;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER exceptions_final BEFORE UPDATE ON exceptions FOR EACH ROW EXECUTE FUNCTION exceptions_final();
CREATE FUNCTION exceptions_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'exceptions are never deleted; resolve or waive %', OLD.id;
END $$;
CREATE TRIGGER exceptions_no_delete BEFORE DELETE ON exceptions FOR EACH ROW EXECUTE FUNCTION exceptions_no_delete();
