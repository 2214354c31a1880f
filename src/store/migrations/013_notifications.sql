-- Notifications: the outbox of business facts announced to JetStream subjects and webhooks (src/stream/notifications.ts).
-- Triggers write each row in the transaction that makes its fact true, whatever code path does it, so a notification
-- exists if and only if its fact committed. Ids are deterministic and versioned (ntf:v1:<type>:<subject>[:<n>]).
CREATE TABLE notifications (
  seq            bigserial PRIMARY KEY,
  id             text NOT NULL UNIQUE,
  type           text NOT NULL CHECK (type IN ('invoice.finalized', 'credit_note.finalized', 'document.posted',
                                               'document.posting_failed', 'exception.opened', 'period.closed')),
  subject        text NOT NULL,              -- what the fact is about: an invoice id, an outbox key, an exception id, a period
  data           jsonb NOT NULL,             -- amounts as text (minor units), never JSON numbers
  created_at     timestamptz NOT NULL DEFAULT now(),
  fanned_out_at  timestamptz                 -- when a publisher created its delivery rows (one per channel)
);
CREATE INDEX notifications_fan_out ON notifications (seq) WHERE fanned_out_at IS NULL;

-- One row per notification and channel ('nats', or 'webhook:<url>'): claimed with FOR UPDATE SKIP LOCKED and a lease.
CREATE TABLE notification_deliveries (
  seq             bigserial PRIMARY KEY,
  notification_id text NOT NULL REFERENCES notifications (id),
  channel         text NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  lease_until     timestamptz,
  last_error      jsonb,
  reference       text,                       -- the JetStream stream sequence, or the webhook's HTTP status
  delivered_at    timestamptz,
  replays         integer NOT NULL DEFAULT 0,
  UNIQUE (notification_id, channel),
  CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (channel, next_attempt_at) WHERE status = 'pending';

CREATE FUNCTION notification_enqueue(p_id text, p_type text, p_subject text, p_data jsonb) RETURNS void LANGUAGE sql AS $$
  INSERT INTO notifications (id, type, subject, data) VALUES (p_id, p_type, p_subject, p_data) ON CONFLICT (id) DO NOTHING
$$;

-- Invoice or credit note finalized (src/invoice/store.ts finalizeInvoice): finalized is final, so one per document.
CREATE FUNCTION notifications_invoice_finalized() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'finalized' AND (TG_OP = 'INSERT' OR OLD.status <> 'finalized') THEN
    PERFORM notification_enqueue('ntf:v1:' || NEW.kind || '.finalized:' || NEW.id, NEW.kind || '.finalized', NEW.id, jsonb_build_object(
      'invoice_id', NEW.id, 'number', NEW.number, 'kind', NEW.kind, 'corrects', NEW.corrects, 'customer', NEW.customer,
      'legal_entity', NEW.legal_entity, 'period', NEW.period, 'currency', NEW.currency,
      'total_minor', NEW.total_minor::text, 'tax_minor', NEW.tax_minor::text, 'finalized_at', NEW.finalized_at));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER notifications_invoice_finalized AFTER INSERT OR UPDATE OF status ON invoices
  FOR EACH ROW EXECUTE FUNCTION notifications_invoice_finalized();

-- A document posted to an ERP, or dead-lettered (src/post/outbox.ts settle); a replayed dead entry may fail again,
-- so posting_failed carries the replay count.
CREATE FUNCTION notifications_outbox_settled() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kind text := CASE NEW.status WHEN 'posted' THEN 'document.posted' ELSE 'document.posting_failed' END;
BEGIN
  PERFORM notification_enqueue(
    'ntf:v1:' || kind || ':' || NEW.key || CASE WHEN NEW.status = 'dead' THEN ':' || NEW.replays ELSE '' END, kind, NEW.key,
    jsonb_build_object('outbox_key', NEW.key, 'target', NEW.target, 'document_kind', NEW.document_kind, 'document_id', NEW.document_id,
      'attempts', NEW.attempts, 'target_reference', NEW.target_reference,
      'error', CASE WHEN NEW.status = 'dead' THEN NEW.last_error->>'message' END));
  RETURN NULL;
END $$;
CREATE TRIGGER notifications_outbox_settled AFTER UPDATE OF status ON outbox
  FOR EACH ROW WHEN (OLD.status = 'pending' AND NEW.status IN ('posted', 'dead')) EXECUTE FUNCTION notifications_outbox_settled();

-- An exception opened, by settlement (payments) or reconciliation: ids are deterministic there, so one per exception.
-- Read through to_jsonb: the reconciliation columns are absent from a schema without them, and then null here.
CREATE FUNCTION notifications_exception_opened() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r jsonb := to_jsonb(NEW);
BEGIN
  PERFORM notification_enqueue('ntf:v1:exception.opened:' || NEW.id, 'exception.opened', NEW.id, jsonb_build_object(
    'exception_id', NEW.id, 'kind', NEW.kind, 'owner_queue', NEW.owner_queue, 'status', NEW.status, 'subject', NEW.subject,
    'checkpoint', r->'checkpoint', 'period', r->'period', 'legal_entity', r->'legal_entity', 'customer', r->'customer',
    'currency', r->'currency', 'difference', r->'difference'));
  RETURN NULL;
END $$;
CREATE TRIGGER notifications_exception_opened AFTER INSERT ON exceptions
  FOR EACH ROW EXECUTE FUNCTION notifications_exception_opened();

-- A billing period (the billing run's close) or an accounting period (accrue period close) closed.
CREATE FUNCTION notifications_period_closed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kind text := CASE TG_TABLE_NAME WHEN 'billing_periods' THEN 'billing' ELSE 'accounting' END;
  closed timestamptz := coalesce(NEW.closed_at, now());
BEGIN
  IF NEW.status = 'closed' AND (TG_OP = 'INSERT' OR OLD.status <> 'closed') THEN
    PERFORM notification_enqueue(
      'ntf:v1:period.closed:' || kind || ':' || NEW.legal_entity || ':' || NEW.period || ':' || (extract(epoch FROM closed) * 1000000)::bigint,
      'period.closed', NEW.legal_entity || ':' || NEW.period,
      jsonb_build_object('kind', kind, 'legal_entity', NEW.legal_entity, 'period', NEW.period, 'closed_at', closed,
        'closed_by', to_jsonb(NEW)->>'closed_by'));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER notifications_billing_period_closed AFTER INSERT OR UPDATE OF status ON billing_periods
  FOR EACH ROW EXECUTE FUNCTION notifications_period_closed();
CREATE TRIGGER notifications_accounting_period_closed AFTER INSERT OR UPDATE OF status ON accounting_periods
  FOR EACH ROW EXECUTE FUNCTION notifications_period_closed();
