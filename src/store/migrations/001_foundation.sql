-- Foundation: catalog versions, API keys, usage events with deduplication, conflicts, quarantine, periods.

CREATE TABLE catalog_versions (
  version      integer PRIMARY KEY,
  content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
  document     jsonb NOT NULL,
  applied_by   text NOT NULL,
  applied_at   timestamptz NOT NULL DEFAULT now(),
  source       text
);

CREATE TABLE api_keys (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  secret_hash text NOT NULL UNIQUE,
  scope       text NOT NULL CHECK (scope IN ('ingest', 'read', 'admin')),
  sources     text[] NOT NULL DEFAULT '{}',  -- ingest keys: the CloudEvents sources they may send; empty = any
  created_at  timestamptz NOT NULL DEFAULT now(),
  revoked_at  timestamptz
);

-- One row per accepted request or file: the usage batch every event and later document traces back to.
CREATE TABLE ingest_batches (
  id           text PRIMARY KEY,
  channel      text NOT NULL CHECK (channel IN ('http', 'file', 'stream', 'replay')),
  api_key_id   text,
  received_at  timestamptz NOT NULL DEFAULT now(),
  received     integer NOT NULL CHECK (received >= 0),
  accepted     integer NOT NULL CHECK (accepted >= 0),
  duplicates   integer NOT NULL CHECK (duplicates >= 0),
  conflicts    integer NOT NULL CHECK (conflicts >= 0),
  rejected     integer NOT NULL CHECK (rejected >= 0),
  quarantined  integer NOT NULL CHECK (quarantined >= 0),
  repeats      integer NOT NULL DEFAULT 0,  -- the same batch content received again (all duplicates then)
  CHECK (received = accepted + duplicates + conflicts + rejected + quarantined)
);

-- Accepted usage events. (source, id) is the CloudEvents identity and the last guard against double counting.
CREATE TABLE events (
  seq           bigserial NOT NULL,
  source        text NOT NULL,
  id            text NOT NULL,
  type          text NOT NULL,
  subject       text NOT NULL,
  customer_id   text NOT NULL,
  time          timestamptz NOT NULL,
  data          jsonb NOT NULL,
  meter_values  jsonb NOT NULL,   -- meter id -> canonical decimal text (or the unique key for unique_count)
  dimensions    jsonb NOT NULL,   -- meter id -> { group_by key -> value }
  content_hash  text NOT NULL,
  batch_id      text NOT NULL REFERENCES ingest_batches (id) DEFERRABLE INITIALLY DEFERRED,
  received_at   timestamptz NOT NULL DEFAULT now(),
  late          boolean NOT NULL DEFAULT false,  -- its billing period was already closed when it arrived
  PRIMARY KEY (source, id)
);
CREATE UNIQUE INDEX events_seq ON events (seq);
CREATE INDEX events_customer_type_time ON events (customer_id, type, time);
CREATE INDEX events_late ON events (customer_id, time) WHERE late;

-- A repeat of (source, id) with different content: kept here only, never counted.
CREATE TABLE event_conflicts (
  seq            bigserial PRIMARY KEY,
  source         text NOT NULL,
  id             text NOT NULL,
  content_hash   text NOT NULL,
  existing_hash  text NOT NULL,
  event          jsonb NOT NULL,
  batch_id       text NOT NULL REFERENCES ingest_batches (id) DEFERRABLE INITIALLY DEFERRED,
  received_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (source, id, content_hash)
);

-- Events the catalog does not know yet (unknown type or subject), kept for replay once it does.
CREATE TABLE quarantine (
  seq           bigserial PRIMARY KEY,
  source        text NOT NULL,
  id            text NOT NULL,
  content_hash  text NOT NULL,
  reason        text NOT NULL CHECK (reason IN ('unknown_type', 'unknown_subject')),
  problems      jsonb NOT NULL,
  event         jsonb NOT NULL,
  batch_id      text NOT NULL REFERENCES ingest_batches (id) DEFERRABLE INITIALLY DEFERRED,
  received_at   timestamptz NOT NULL DEFAULT now(),
  replayed_at   timestamptz,
  replay_result text,
  UNIQUE (source, id, content_hash)
);
CREATE INDEX quarantine_pending ON quarantine (seq) WHERE replayed_at IS NULL;

-- Billing periods per legal entity: usage arriving for a closed period is late usage, billed by adjustment.
CREATE TABLE billing_periods (
  legal_entity  text NOT NULL,
  period        text NOT NULL CHECK (period ~ '^\d{4}-(0[1-9]|1[0-2])$'),
  status        text NOT NULL CHECK (status IN ('open', 'closed')),
  closed_at     timestamptz,
  event_seq_watermark bigint,  -- the highest event seq the closing run read
  PRIMARY KEY (legal_entity, period)
);
