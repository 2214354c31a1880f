-- The built-in general ledger: balanced, append-only journals; and the transactional outbox to ERP targets.

CREATE TABLE journals (
  id               text PRIMARY KEY,            -- jrn:v1:<kind>:<source document id>, also the idempotency key
  kind             text NOT NULL CHECK (kind IN ('invoice', 'credit_note', 'credit_drawdown', 'payment')),
  legal_entity     text NOT NULL,
  posting_date     date NOT NULL,
  source_document  text NOT NULL,
  source_number    text,
  memo             text NOT NULL,
  content_hash     text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX journals_entity_date ON journals (legal_entity, posting_date);

CREATE TABLE journal_lines (
  journal_id    text NOT NULL REFERENCES journals (id),
  line_no       integer NOT NULL CHECK (line_no >= 1),
  account       text NOT NULL,
  debit_minor   bigint NOT NULL CHECK (debit_minor >= 0),
  credit_minor  bigint NOT NULL CHECK (credit_minor >= 0),
  currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  customer      text,
  product       text,
  memo          text,
  PRIMARY KEY (journal_id, line_no),
  CHECK ((debit_minor = 0) <> (credit_minor = 0))
);

-- Double entry in the database: at commit, every journal touched balances per currency and has two lines or more.
CREATE FUNCTION journal_balances() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE bad record;
BEGIN
  SELECT l.currency, sum(l.debit_minor) AS d, sum(l.credit_minor) AS c INTO bad
    FROM journal_lines l WHERE l.journal_id = NEW.journal_id
   GROUP BY l.currency HAVING sum(l.debit_minor) <> sum(l.credit_minor) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'journal % does not balance in %: debits % <> credits %', NEW.journal_id, bad.currency, bad.d, bad.c;
  END IF;
  IF (SELECT count(*) FROM journal_lines WHERE journal_id = NEW.journal_id) < 2 THEN
    RAISE EXCEPTION 'journal % needs at least two lines', NEW.journal_id;
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER journal_lines_balance AFTER INSERT ON journal_lines
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_balances();

-- Posted journals are append-only: corrections are new journals.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only; post a correcting journal instead', TG_TABLE_NAME;
END $$;
CREATE TRIGGER journals_append_only BEFORE UPDATE OR DELETE ON journals FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER journal_lines_append_only BEFORE UPDATE OR DELETE ON journal_lines FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- Outbox: one entry per document and target, written in the transaction that finalizes the document.
CREATE TABLE outbox (
  id              bigserial PRIMARY KEY,
  key             text NOT NULL UNIQUE,          -- out:v1:<target>:<document id>; carried to the ERP as its idempotency key
  target          text NOT NULL,
  document_kind   text NOT NULL,
  document_id     text NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'posted', 'dead')),
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  lease_until     timestamptz,
  target_reference text,
  last_error      jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  posted_at       timestamptz
);
CREATE INDEX outbox_due ON outbox (target, next_attempt_at) WHERE status = 'pending';
ALTER TABLE outbox ADD COLUMN replays integer NOT NULL DEFAULT 0;
