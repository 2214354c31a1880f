-- Disputes (issue 17): a customer contests one line of a finalized invoice. The dispute is opened with the explain
-- walk of that line attached, sits in an owner queue (a team, and a person once assigned), and is closed either by a
-- credit note (approved like every money-moving change: src/controls/credit-notes.ts) or by a rejection with a reason.
-- Its open and close times are the cycle time /metrics and the dashboard report.

CREATE TABLE disputes (
  id              text PRIMARY KEY CHECK (id ~ '^dsp_[0-9a-f]{24}$'),
  key             text NOT NULL UNIQUE CHECK (key ~ '^dsp:v1:'),      -- dsp:v1:<invoice id>:<line no>:<n>
  invoice_id      text NOT NULL,
  line_no         integer NOT NULL CHECK (line_no >= 1),
  legal_entity    text NOT NULL,
  customer        text NOT NULL,
  currency        text NOT NULL,
  reason          text NOT NULL CHECK (btrim(reason) <> ''),
  queue           text NOT NULL CHECK (queue IN ('finance_operations', 'billing_engineering', 'integration_support')),
  assignee        text,                                  -- a principal's name, once assigned to a person
  status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'rejected')),
  walk            jsonb NOT NULL,                        -- the explain walk of the line when opened (meter, quantity, events, correlation)
  opened_by       text NOT NULL,
  opened_at       timestamptz NOT NULL DEFAULT now(),
  change_request  text REFERENCES change_requests (id),  -- the last credit note proposed for it
  credit_note     text UNIQUE REFERENCES invoices (id),
  credit_minor    bigint CHECK (credit_minor > 0),       -- the amount credited, tax included
  rejection       text,
  closed_by       text,
  closed_at       timestamptz,
  FOREIGN KEY (invoice_id, line_no) REFERENCES invoice_lines (invoice_id, line_no),
  CHECK ((status = 'open') = (closed_at IS NULL AND closed_by IS NULL)),
  CHECK ((status = 'resolved') = (credit_note IS NOT NULL AND credit_minor IS NOT NULL)),
  CHECK ((status = 'rejected') = (rejection IS NOT NULL AND btrim(rejection) <> ''))
);

-- One open dispute per invoice line: a second one waits until the first is closed.
CREATE UNIQUE INDEX disputes_one_open ON disputes (invoice_id, line_no) WHERE status = 'open';
CREATE INDEX disputes_queue ON disputes (status, queue, assignee);
CREATE INDEX disputes_entity_open ON disputes (legal_entity) WHERE status = 'open';

-- A closed dispute is final; what it was opened with never changes; nothing is deleted.
CREATE FUNCTION disputes_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    RAISE EXCEPTION 'disputes cannot be truncated' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'dispute % cannot be deleted', OLD.id USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.status <> 'open' THEN
    RAISE EXCEPTION 'dispute % is % and final', OLD.id, OLD.status USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF (NEW.id, NEW.key, NEW.invoice_id, NEW.line_no, NEW.legal_entity, NEW.customer, NEW.currency, NEW.reason, NEW.walk,
      NEW.opened_by, NEW.opened_at)
     IS DISTINCT FROM
     (OLD.id, OLD.key, OLD.invoice_id, OLD.line_no, OLD.legal_entity, OLD.customer, OLD.currency, OLD.reason, OLD.walk,
      OLD.opened_by, OLD.opened_at) THEN
    RAISE EXCEPTION 'dispute % cannot be edited: open a new one', OLD.id USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER disputes_guard BEFORE UPDATE OR DELETE ON disputes FOR EACH ROW EXECUTE FUNCTION disputes_guard();
CREATE TRIGGER disputes_no_truncate BEFORE TRUNCATE ON disputes FOR EACH STATEMENT EXECUTE FUNCTION disputes_guard();
