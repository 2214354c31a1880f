-- Books that cannot be edited (issue 17). Each rule here has a test in test/store/integrity.test.ts and a line in
-- docs/integrity-rules.md. What 002, 004, 007 and 014 already guard is extended, not repeated. A superuser can still
-- switch triggers off (session_replication_role = replica, ALTER TABLE … DISABLE TRIGGER): the signed audit
-- checkpoints and reconciliation are what find that.

-- A statement refused outright, whatever rows it would touch: TRUNCATE of the books, DELETE of event keys.
CREATE FUNCTION accrue_refuse_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on % refused: the books are append-only', TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

-- 1. A finalized invoice is frozen but for the columns listed here: its payment state, and voiding (status to 'void'
-- with voided_at). Every other column, including any added by a later migration, is compared. Today's writers of a
-- finalized invoice: src/settle/payments.ts (amount_paid_minor, payment_status) and src/invoice/store.ts voidInvoice
-- (status, voided_at). A void invoice never changes and only drafts are deleted, as in 002.
CREATE OR REPLACE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  may_change CONSTANT text[] := ARRAY['amount_paid_minor', 'payment_status', 'status', 'voided_at'];
  before_row jsonb;
  after_row jsonb;
  changed text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.status <> 'draft' THEN RAISE EXCEPTION 'invoice % is %; it cannot be deleted', OLD.id, OLD.status; END IF;
    RETURN OLD;
  END IF;
  IF OLD.status = 'void' THEN RAISE EXCEPTION 'invoice % is void; it cannot change', OLD.id; END IF;
  IF OLD.status = 'finalized' THEN
    IF NEW.status NOT IN ('finalized', 'void') THEN
      RAISE EXCEPTION 'invoice % is finalized; it cannot become %', OLD.id, NEW.status USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.status = 'finalized' AND NEW.voided_at IS DISTINCT FROM OLD.voided_at THEN
      RAISE EXCEPTION 'invoice % is finalized; voided_at moves only when it is voided', OLD.id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    before_row := to_jsonb(OLD) - may_change;
    after_row := to_jsonb(NEW) - may_change;
    IF after_row IS DISTINCT FROM before_row THEN
      SELECT string_agg(n.key, ', ' ORDER BY n.key) INTO changed FROM jsonb_each(after_row) AS n WHERE n.value IS DISTINCT FROM before_row -> n.key;
      RAISE EXCEPTION 'invoice % is finalized; corrections are credit notes (% cannot change)', OLD.id, changed
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
  END IF;
  RETURN NEW;
END $$;

-- No line is inserted into, moved into, changed in or deleted from an invoice that is not a draft (002 guarded
-- update and delete by the old row's invoice; an insert, or an update moving a line to another invoice, was open).
CREATE OR REPLACE FUNCTION invoice_lines_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s text;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    SELECT status INTO s FROM invoices WHERE id = OLD.invoice_id;
    IF s IS DISTINCT FROM 'draft' THEN RAISE EXCEPTION 'lines of a % invoice cannot change', s; END IF;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    SELECT status INTO s FROM invoices WHERE id = NEW.invoice_id;
    IF s IS DISTINCT FROM 'draft' THEN RAISE EXCEPTION 'lines of a % invoice cannot change', s; END IF;
  END IF;
  RETURN COALESCE(NEW, OLD);
END $$;
DROP TRIGGER invoice_lines_immutable ON invoice_lines;
CREATE TRIGGER invoice_lines_immutable BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
  FOR EACH ROW EXECUTE FUNCTION invoice_lines_immutable();

-- 2. What is paid stays within 0 and the total (a credit note's or any total below 0 allows nothing paid), and the
-- payment status says what the amount does, as src/settle/payments.ts sets it.
ALTER TABLE invoices
  ADD CONSTRAINT invoices_amount_paid_within_total CHECK (amount_paid_minor >= 0 AND amount_paid_minor <= greatest(total_minor, 0)),
  ADD CONSTRAINT invoices_payment_status_derived CHECK (payment_status = CASE WHEN amount_paid_minor = 0 THEN 'unpaid'
                                                                              WHEN amount_paid_minor = total_minor THEN 'paid'
                                                                              ELSE 'partially_paid' END);

-- 3. Every journal has two lines or more at commit. 004 checks it when lines are inserted (with the balance); a
-- header inserted with no line at all fired nothing. Lines are append-only (004), so inserts are the only way in.
CREATE FUNCTION journals_have_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT count(*) FROM journal_lines WHERE journal_id = NEW.id) < 2 THEN
    RAISE EXCEPTION 'journal % needs at least two lines', NEW.id USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER journals_have_lines AFTER INSERT ON journals
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journals_have_lines();

-- 4. TRUNCATE refused at statement level on the ledger, the documents, the outbox, payments, events and their keys
-- (audit_log and audit_head refuse it since 007). A TRUNCATE of a partition does not fire its parent's statement
-- triggers, so every events partition gets the trigger too: those there now, and each one the partition creator
-- makes (accrue_ensure_event_partition, below).
CREATE TRIGGER journals_no_truncate BEFORE TRUNCATE ON journals FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();
CREATE TRIGGER journal_lines_no_truncate BEFORE TRUNCATE ON journal_lines FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();
CREATE TRIGGER invoices_no_truncate BEFORE TRUNCATE ON invoices FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();
CREATE TRIGGER invoice_lines_no_truncate BEFORE TRUNCATE ON invoice_lines FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();
CREATE TRIGGER outbox_no_truncate BEFORE TRUNCATE ON outbox FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();
CREATE TRIGGER payments_no_truncate BEFORE TRUNCATE ON payments FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();
CREATE TRIGGER event_keys_no_truncate BEFORE TRUNCATE OR DELETE ON event_keys FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();

-- Gives every partition of events that lacks it the TRUNCATE guard; returns how many it guarded.
CREATE FUNCTION accrue_guard_event_partitions() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  part regclass;
  guarded integer := 0;
BEGIN
  FOR part IN
    SELECT i.inhrelid::regclass FROM pg_inherits i
     WHERE i.inhparent = 'events'::regclass
       AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = i.inhrelid AND t.tgname = 'events_no_truncate')
     ORDER BY 1
  LOOP
    EXECUTE format('CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement()', part);
    guarded := guarded + 1;
  END LOOP;
  RETURN guarded;
END $$;
SELECT accrue_guard_event_partitions();

-- 5. Events are never deleted, except by the partition creator moving rows out of events_default: it sets the
-- transaction-local accrue.partition_mover for its DELETE only. A row trigger on the parent is cloned onto every
-- partition, present and future, so a DELETE aimed at a partition is refused as well.
CREATE FUNCTION events_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('accrue.partition_mover', true) = 'on' THEN RETURN OLD; END IF;
  RAISE EXCEPTION 'event (%, %) cannot be deleted: events are kept, only the partition creator moves them', OLD.source, OLD.id
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events FOR EACH ROW EXECUTE FUNCTION events_no_delete();

-- A deleted event never frees its dedup key: keys are not released on delete or truncate any more (014 did both),
-- and event_keys refuses DELETE and TRUNCATE (above). An update keeps an event's identity: changing its source, id
-- or seq is refused; a changed content hash or time is carried to its key.
DROP TRIGGER events_keys_delete ON events;
DROP FUNCTION events_release_keys();
DROP TRIGGER events_keys_truncate ON events;
DROP FUNCTION events_truncate_keys();

CREATE OR REPLACE FUNCTION events_rekey() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  lost record;
BEGIN
  SELECT o.source, o.id INTO lost FROM events_removed o
   WHERE NOT EXISTS (SELECT 1 FROM events_inserted n WHERE n.source = o.source AND n.id = o.id AND n.seq = o.seq) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'event (%, %) cannot change its source, id or seq: its dedup key is kept', lost.source, lost.id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  UPDATE event_keys k SET content_hash = n.content_hash, time = n.time
    FROM events_inserted n
   WHERE k.source = n.source AND k.id = n.id AND k.seq = n.seq AND (k.content_hash, k.time) IS DISTINCT FROM (n.content_hash, n.time);
  RETURN NULL;
END $$;

CREATE FUNCTION event_keys_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.source, NEW.id, NEW.seq) IS DISTINCT FROM (OLD.source, OLD.id, OLD.seq) THEN
    RAISE EXCEPTION 'event key (%, %) cannot change', OLD.source, OLD.id USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER event_keys_identity BEFORE UPDATE ON event_keys FOR EACH ROW EXECUTE FUNCTION event_keys_identity();

-- 014's partition creator, unchanged but for the mover's flag around its DELETE and the TRUNCATE guard on the
-- partition it makes (and on any partition made some other way since).
CREATE OR REPLACE FUNCTION accrue_ensure_event_partition(at timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  lo   timestamptz := accrue_month_start(at);
  hi   timestamptz := accrue_month_end(at);
  name text := 'events_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
  flag text;
BEGIN
  IF to_regclass(quote_ident(name)) IS NOT NULL THEN RETURN name; END IF;
  PERFORM pg_advisory_xact_lock(4242003);  -- one creator at a time across processes
  -- Asked of pg_class with this statement's snapshot: the cached catalog may not show another creator's commit yet.
  IF EXISTS (SELECT 1 FROM pg_class WHERE relname = name AND relnamespace = current_schema()::regnamespace) THEN RETURN name; END IF;
  -- The parent first, in the order every writer takes it, so a creator and an insert cannot deadlock.
  LOCK TABLE events IN ACCESS EXCLUSIVE MODE;
  IF EXISTS (SELECT 1 FROM events_default WHERE time >= lo AND time < hi) THEN
    -- Moved table to table (not through events), so the rows keep their keys and rollups: they are the same events.
    EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    EXECUTE format('INSERT INTO %I SELECT * FROM events_default WHERE time >= %L AND time < %L', name, lo, hi);
    flag := current_setting('accrue.partition_mover', true);
    PERFORM set_config('accrue.partition_mover', 'on', true);
    DELETE FROM events_default WHERE time >= lo AND time < hi;
    PERFORM set_config('accrue.partition_mover', coalesce(flag, ''), true);
    EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
  ELSE
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
  END IF;
  PERFORM accrue_guard_event_partitions();
  RETURN name;
END $$;

-- 6. A posted outbox row is final: the ERP holds what it says. Every writer of outbox in src/ updates pending rows
-- (claim, settle, the mapping wake-up) or dead ones (replay) only.
CREATE FUNCTION outbox_posted_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'outbox entry % is posted; it is final (% refused)', OLD.key, TG_OP USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER outbox_posted_final BEFORE UPDATE OR DELETE ON outbox FOR EACH ROW WHEN (OLD.status = 'posted')
  EXECUTE FUNCTION outbox_posted_final();

-- 7. An invoice's amount paid is the sum of the payments applied to it, checked at commit: applying a payment
-- updates the invoice before it inserts the payment (src/settle/payments.ts), so the check waits for both. It runs
-- when an invoice's payment state is written and when a payment is written, for the invoices on both sides.
CREATE INDEX payments_invoice ON payments (invoice_id) WHERE invoice_id IS NOT NULL;

CREATE FUNCTION accrue_check_invoice_paid(invoice text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  paid bigint;
  applied numeric;
BEGIN
  SELECT i.amount_paid_minor INTO paid FROM invoices i WHERE i.id = invoice;
  IF NOT FOUND THEN RETURN; END IF;
  SELECT coalesce(sum(p.amount_minor), 0) INTO applied FROM payments p WHERE p.invoice_id = invoice AND p.status = 'applied';
  IF paid <> applied THEN
    RAISE EXCEPTION 'invoice % says % paid but its applied payments sum to %', invoice, paid, applied
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
END $$;

CREATE FUNCTION invoices_paid_by_payments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM accrue_check_invoice_paid(NEW.id);
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER invoices_paid_by_payments AFTER UPDATE OF amount_paid_minor, payment_status ON invoices
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION invoices_paid_by_payments();
CREATE CONSTRAINT TRIGGER invoices_inserted_paid_by_payments AFTER INSERT ON invoices
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.amount_paid_minor <> 0) EXECUTE FUNCTION invoices_paid_by_payments();

CREATE FUNCTION payments_match_invoices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' AND OLD.invoice_id IS NOT NULL THEN PERFORM accrue_check_invoice_paid(OLD.invoice_id); END IF;
  IF TG_OP <> 'DELETE' AND NEW.invoice_id IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.invoice_id IS DISTINCT FROM OLD.invoice_id) THEN
    PERFORM accrue_check_invoice_paid(NEW.invoice_id);
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER payments_match_invoices AFTER INSERT OR UPDATE OR DELETE ON payments
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION payments_match_invoices();
