-- The hash-chained audit log (src/audit/chain.ts has the hash recipe, src/audit/log.ts writes and verifies).
-- Rows are append-only: UPDATE, DELETE and TRUNCATE are refused. Each insert must follow the head (seq + 1,
-- prev_hash = the head's hash), and the one-row head advances with it, so the chain cannot fork or leave a gap.
CREATE TABLE audit_log (
  seq        bigint PRIMARY KEY CHECK (seq >= 1),
  at         timestamptz NOT NULL,
  actor      text NOT NULL CHECK (actor <> ''),
  action     text NOT NULL CHECK (action <> ''),
  subject    text NOT NULL CHECK (subject <> ''),
  reason     text,
  details    jsonb,
  prev_hash  text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash       text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);

-- The chain's head: one row, locked by every append, so appends are serialized and see the latest record.
-- It is also a witness for the end of the chain: records removed from the end leave the head pointing past them.
CREATE TABLE audit_head (
  id    boolean PRIMARY KEY DEFAULT true CHECK (id),
  seq   bigint NOT NULL CHECK (seq >= 0),
  hash  text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$')
);
INSERT INTO audit_head (id, seq, hash) VALUES (true, 0, repeat('0', 64));

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on % refused: the audit log is append-only', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
-- Statement-level, so even a statement that matches no row is refused.
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE OR TRUNCATE OR INSERT ON audit_head
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Checks the link and advances the head in the inserting statement: a record that does not follow the head is refused.
CREATE FUNCTION audit_log_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head_seq bigint;
  head_hash text;
BEGIN
  SELECT seq, hash INTO head_seq, head_hash FROM audit_head WHERE id FOR UPDATE;
  IF NEW.seq IS DISTINCT FROM head_seq + 1 OR NEW.prev_hash IS DISTINCT FROM head_hash THEN
    RAISE EXCEPTION 'audit record seq % (prev_hash %) does not follow the head (seq %, hash %)', NEW.seq, NEW.prev_hash, head_seq, head_hash
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  UPDATE audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id;
  RETURN NEW;
END $$;
CREATE TRIGGER audit_log_link BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_link();

-- The head moves only from audit_log_link (trigger depth 2), one step at a time.
CREATE FUNCTION audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pg_trigger_depth() < 2 OR NEW.seq <> OLD.seq + 1 OR NEW.id IS DISTINCT FROM OLD.id THEN
    RAISE EXCEPTION 'the audit head moves only by appending to audit_log' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER audit_head_guard BEFORE UPDATE ON audit_head FOR EACH ROW EXECUTE FUNCTION audit_head_guard();
