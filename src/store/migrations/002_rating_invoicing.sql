-- Rating runs, invoices (draft -> finalized -> void), gapless numbering per legal entity, credit drawdowns.

CREATE TABLE rating_runs (
  id                  text PRIMARY KEY,           -- rr:v1:<sha256 of customer, period, catalog hash, usage fingerprint>
  customer            text NOT NULL,
  period              text NOT NULL CHECK (period ~ '^\d{4}-(0[1-9]|1[0-2])$'),
  catalog_version     integer NOT NULL REFERENCES catalog_versions (version),
  catalog_hash        text NOT NULL,
  usage_fingerprint   text NOT NULL,
  event_seq_watermark bigint NOT NULL,
  usage               jsonb NOT NULL,             -- the usage aggregates read, with their refs
  created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE invoices (
  id                    text PRIMARY KEY,
  key                   text NOT NULL UNIQUE,     -- inv:v1:<entity>:<customer>:<currency>:<period> (credit notes: cn:v1:...)
  kind                  text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
  corrects              text REFERENCES invoices (id),
  number                text,
  status                text NOT NULL CHECK (status IN ('draft', 'finalized', 'void')),
  legal_entity          text NOT NULL,
  customer              text NOT NULL,
  currency              text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  period                text NOT NULL,
  period_start          date NOT NULL,
  period_end            date NOT NULL CHECK (period_end > period_start),
  rounding              text NOT NULL CHECK (rounding IN ('half_up', 'half_even')),
  subtotal_minor        bigint NOT NULL,
  discount_minor        bigint NOT NULL CHECK (discount_minor >= 0),
  credits_applied_minor bigint NOT NULL CHECK (credits_applied_minor >= 0),
  tax_minor             bigint NOT NULL,
  total_minor           bigint NOT NULL,
  rating_run            text REFERENCES rating_runs (id),
  document              jsonb NOT NULL,           -- the full canonical invoice, as rendered
  content_hash          text NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  finalized_at          timestamptz,
  voided_at             timestamptz,
  payment_status        text NOT NULL DEFAULT 'unpaid' CHECK (payment_status IN ('unpaid', 'partially_paid', 'paid')),
  amount_paid_minor     bigint NOT NULL DEFAULT 0,
  CHECK (total_minor = subtotal_minor - discount_minor - credits_applied_minor + tax_minor),
  CHECK ((status = 'draft') = (number IS NULL)),
  CHECK (kind = 'invoice' OR corrects IS NOT NULL)
);
CREATE UNIQUE INDEX invoices_number ON invoices (legal_entity, number) WHERE number IS NOT NULL;
CREATE INDEX invoices_period ON invoices (period, legal_entity);

CREATE TABLE invoice_lines (
  invoice_id     text NOT NULL REFERENCES invoices (id),
  line_no        integer NOT NULL CHECK (line_no >= 1),
  kind           text NOT NULL,
  product        text NOT NULL,
  meter          text,
  price_id       text,
  price_version  text,
  quantity       numeric NOT NULL,
  amount_minor   bigint NOT NULL,
  usage_ref      text,
  credit_grant   text,
  PRIMARY KEY (invoice_id, line_no)
);

-- Gapless, ordered numbers per legal entity: taken in the transaction that finalizes, so a rollback returns it.
CREATE TABLE invoice_number_sequences (
  legal_entity text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
  last_number  bigint NOT NULL CHECK (last_number >= 0),
  PRIMARY KEY (legal_entity, kind)
);

CREATE TABLE credit_drawdowns (
  grant_id      text NOT NULL,
  invoice_id    text NOT NULL REFERENCES invoices (id),
  customer      text NOT NULL,
  currency      text NOT NULL,
  amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
  PRIMARY KEY (grant_id, invoice_id)
);

-- A finalized invoice never changes: only its payment state may move, or it may be voided.
CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD.status <> 'draft' THEN RAISE EXCEPTION 'invoice % is %; it cannot be deleted', OLD.id, OLD.status; END IF;
    RETURN OLD;
  END IF;
  IF OLD.status = 'void' THEN RAISE EXCEPTION 'invoice % is void; it cannot change', OLD.id; END IF;
  IF OLD.status = 'finalized' AND (
       NEW.document IS DISTINCT FROM OLD.document OR NEW.content_hash IS DISTINCT FROM OLD.content_hash
    OR NEW.number IS DISTINCT FROM OLD.number OR NEW.total_minor IS DISTINCT FROM OLD.total_minor
    OR NEW.key IS DISTINCT FROM OLD.key OR NEW.status NOT IN ('finalized', 'void')) THEN
    RAISE EXCEPTION 'invoice % is finalized; corrections are credit notes', OLD.id;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices FOR EACH ROW EXECUTE FUNCTION invoices_immutable();

CREATE FUNCTION invoice_lines_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE s text;
BEGIN
  SELECT status INTO s FROM invoices WHERE id = COALESCE(OLD.invoice_id, NEW.invoice_id);
  IF s IS DISTINCT FROM 'draft' THEN RAISE EXCEPTION 'lines of a % invoice cannot change', s; END IF;
  RETURN COALESCE(NEW, OLD);
END $$;
CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE OR DELETE ON invoice_lines FOR EACH ROW EXECUTE FUNCTION invoice_lines_immutable();
