-- A batch's id is derived from its content (the usage batch id, src/ingest/service.ts), so a retry of a batch has the
-- id of the batch it repeats, and its record in ingest_batches (the first receipt's verdicts) was only counted a
-- repeat there: the events the retry brought, answered duplicate (or conflict, rejected, quarantined, and even
-- accepted, when a quarantined event has become valid since), were counted nowhere by outcome. Each later receipt of
-- a batch is now recorded here with its own verdicts and time; ingest_receipts is every receipt, the first ones from
-- ingest_batches and the later ones from here, what the metrics and the dashboard count. Receipts before this
-- migration are counted only in ingest_batches.repeats, without their verdicts: they are not made up here.
CREATE TABLE ingest_repeats (
  seq          bigserial PRIMARY KEY,
  batch_id     text NOT NULL REFERENCES ingest_batches (id),
  channel      text NOT NULL CHECK (channel IN ('http', 'file', 'stream', 'replay')),
  api_key_id   text,
  received_at  timestamptz NOT NULL DEFAULT now(),
  received     integer NOT NULL CHECK (received >= 0),
  accepted     integer NOT NULL CHECK (accepted >= 0),
  duplicates   integer NOT NULL CHECK (duplicates >= 0),
  conflicts    integer NOT NULL CHECK (conflicts >= 0),
  rejected     integer NOT NULL CHECK (rejected >= 0),
  quarantined  integer NOT NULL CHECK (quarantined >= 0),
  CHECK (received = accepted + duplicates + conflicts + rejected + quarantined)
);
CREATE INDEX ingest_repeats_received ON ingest_repeats (received_at);

CREATE VIEW ingest_receipts AS
SELECT id AS batch_id, channel, api_key_id, received_at, received, accepted, duplicates, conflicts, rejected, quarantined
  FROM ingest_batches
UNION ALL
SELECT batch_id, channel, api_key_id, received_at, received, accepted, duplicates, conflicts, rejected, quarantined
  FROM ingest_repeats;
