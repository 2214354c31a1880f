-- Rollout scope: journals of customers and legal entities outside the configured rollout stay in the built-in ledger
-- and are not sent to external ERP targets. Each (target, journal) held back is recorded, so reconciliation does not
-- expect the ERP to have it.
CREATE TABLE rollout_holds (
  key             text PRIMARY KEY,               -- out:v1:<target>:<journal id>: the outbox key it would have had
  target          text NOT NULL,
  journal_id      text NOT NULL REFERENCES journals (id),
  source_document text NOT NULL,
  legal_entity    text NOT NULL,
  customer        text NOT NULL,
  reason          text NOT NULL CHECK (reason IN ('rollout_scope')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (target, journal_id)
);

-- A journal either goes to a target through the outbox or is held back from it, never both.
CREATE FUNCTION rollout_hold_exclusive() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'rollout_holds' AND EXISTS (SELECT 1 FROM outbox WHERE key = NEW.key) THEN
    RAISE EXCEPTION 'journal % is already queued for %; it cannot also be held back', NEW.journal_id, NEW.target;
  END IF;
  IF TG_TABLE_NAME = 'outbox' AND EXISTS (SELECT 1 FROM rollout_holds WHERE key = NEW.key) THEN
    RAISE EXCEPTION 'outbox entry % is held back by rollout scope', NEW.key;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER rollout_holds_exclusive BEFORE INSERT ON rollout_holds FOR EACH ROW EXECUTE FUNCTION rollout_hold_exclusive();
CREATE TRIGGER outbox_not_held_back BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION rollout_hold_exclusive();
