-- Controls (issue 17): API keys belong to named principals with roles; money-moving actions are change requests that a
-- different principal with the controller role approves. Roles and change kinds are listed in src/domain/controls.ts.

CREATE TABLE principals (
  id          text PRIMARY KEY CHECK (id ~ '^prn_[0-9a-f]{12}$'),
  name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9._@-]{0,99}$'),
  kind        text NOT NULL CHECK (kind IN ('person', 'service')),
  roles       text[] NOT NULL CHECK (
                cardinality(roles) >= 1
                AND roles <@ ARRAY['ingest', 'operator', 'controller', 'auditor', 'admin']::text[]),
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);

-- Every key from before this migration becomes its own principal, with the roles its scope had in practice:
-- ingest sends events, read reads (the auditor's read-only role), admin ran everything (admin and billing operator).
INSERT INTO principals (id, name, kind, roles, created_by, created_at)
SELECT 'prn_' || substr(md5(k.id), 1, 12),
       'key-' || lower(regexp_replace(k.id, '[^a-zA-Z0-9]', '-', 'g')),
       'service',
       CASE k.scope WHEN 'ingest' THEN ARRAY['ingest'] WHEN 'read' THEN ARRAY['auditor'] ELSE ARRAY['admin', 'operator'] END,
       'migration:025',
       k.created_at
  FROM api_keys k;

ALTER TABLE api_keys
  ADD COLUMN principal_id text REFERENCES principals (id),
  ADD COLUMN entities text[] NOT NULL DEFAULT '{}',  -- legal entities the key may see and act on; empty = every entity
  ALTER COLUMN scope DROP NOT NULL;

UPDATE api_keys SET principal_id = 'prn_' || substr(md5(id), 1, 12);

ALTER TABLE api_keys ALTER COLUMN principal_id SET NOT NULL;
CREATE INDEX api_keys_principal ON api_keys (principal_id);

-- Maker-checker. A request carries the exact payload that will be applied and its hash; an approval applies that
-- payload and nothing else. The database refuses a decision by the requester, a decision without a decider, and any
-- change to a decided request but its applied result.
CREATE TABLE change_requests (
  id            text PRIMARY KEY CHECK (id ~ '^chg_[0-9a-f]{16}$'),
  kind          text NOT NULL CHECK (kind IN ('catalog.apply', 'mappings.import', 'period.close', 'exception.waive',
                                              'invoice.void', 'credit_note.issue')),
  subject       text NOT NULL,            -- what it changes: a catalog hash, an invoice id, an exception id, entity/period …
  legal_entity  text,                     -- the entity it concerns, when one (entity-scoped keys see only theirs)
  summary       text NOT NULL,            -- one line for lists
  diff          text NOT NULL DEFAULT '', -- the readable difference an approver reviews
  payload       jsonb NOT NULL,           -- what approval applies
  payload_hash  text NOT NULL CHECK (payload_hash ~ '^[0-9a-f]{64}$'),
  reason        text,
  requested_by  text NOT NULL REFERENCES principals (id),
  requested_at  timestamptz NOT NULL DEFAULT now(),
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'cancelled')),
  decided_by    text REFERENCES principals (id),
  decided_at    timestamptz,
  decision_note text,
  result        jsonb,                    -- what applying it produced (the new catalog version, the credit note id …)
  CHECK ((status = 'pending') = (decided_by IS NULL AND decided_at IS NULL)),
  CHECK (decided_by IS NULL OR status = 'cancelled' OR decided_by <> requested_by),
  CHECK (status <> 'cancelled' OR decided_by = requested_by)
);

CREATE INDEX change_requests_pending ON change_requests (requested_at) WHERE status = 'pending';
-- One open request per thing: a second proposal for the same subject waits until the first is decided.
CREATE UNIQUE INDEX change_requests_one_open ON change_requests (kind, subject) WHERE status = 'pending';

CREATE FUNCTION change_requests_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'change request % cannot be deleted', OLD.id USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.status <> 'pending' THEN
    IF NEW.result IS DISTINCT FROM OLD.result AND OLD.result IS NULL AND OLD.status = 'approved'
       AND (NEW.id, NEW.kind, NEW.subject, NEW.payload, NEW.payload_hash, NEW.requested_by, NEW.status, NEW.decided_by,
            NEW.decided_at, NEW.decision_note)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.kind, OLD.subject, OLD.payload, OLD.payload_hash, OLD.requested_by, OLD.status, OLD.decided_by,
            OLD.decided_at, OLD.decision_note) THEN
      RETURN NEW;
    END IF;
    RAISE EXCEPTION 'change request % is % and final', OLD.id, OLD.status USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status IN ('approved', 'rejected') AND NOT EXISTS (
       SELECT 1 FROM principals p WHERE p.id = NEW.decided_by AND 'controller' = ANY (p.roles) AND p.disabled_at IS NULL) THEN
    RAISE EXCEPTION 'change request % can be decided only by an enabled principal with the controller role', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF (NEW.id, NEW.kind, NEW.subject, NEW.payload, NEW.payload_hash, NEW.requested_by, NEW.requested_at)
     IS DISTINCT FROM (OLD.id, OLD.kind, OLD.subject, OLD.payload, OLD.payload_hash, OLD.requested_by, OLD.requested_at) THEN
    RAISE EXCEPTION 'change request % cannot be edited: propose a new one', OLD.id USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER change_requests_guard BEFORE UPDATE OR DELETE ON change_requests
  FOR EACH ROW EXECUTE FUNCTION change_requests_guard();
