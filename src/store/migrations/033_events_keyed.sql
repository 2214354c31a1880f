-- Events in one table keyed by (source, id): the dedup key is the table's own primary key (issue 19,
-- docs/decisions/0005-events-one-keyed-table.md).
--
-- Monthly partitions (014) made a second table necessary: a partitioned table's unique keys must include the
-- partition key, so (source, id) lived in event_keys, which every insert into events claimed, and a statement trigger
-- with a transition table checked each event's claim. Storing an event cost two heaps, four btrees and that trigger:
-- COPY into events ran at 0.4 of COPY into a bare table keyed by (source, id). Nothing needed the partitions: events
-- are never deleted or detached (026), a month's events are found by the block-range index on time, and the close
-- reads the rollups. One table keyed by (source, id) is the physical limit plus the indexes readers need:
--   - PRIMARY KEY (source, id): the last guard against storing an event twice, checked by the insert itself;
--   - UNIQUE (seq): the order the rollups fold and a close's watermark are read in (the newest is its last entry);
--   - (customer_id, type, time): a customer's usage of a meter over a window (explain, recounts, late usage);
--   - (customer_id, time) WHERE late; BRIN (time).
-- Ingestion writes a batch with COPY in one transaction (src/ingest/service.ts) that also writes the batch record;
-- the deferred foreign key from batch_id to ingest_batches (a check per event at commit) is not carried over.
-- The rollups' insert trigger (015, 032) is not either: it folded only events written with a seq the watermark had
-- passed. seq is now an identity column GENERATED ALWAYS, the same sequence: an INSERT cannot choose it, and the one
-- the sequence gives is above every seq a fold's horizon covers (read under the SHARE lock), so every inserted event
-- is the fold's. (COPY naming seq, or OVERRIDING SYSTEM VALUE, can: a bulk loader that sets the rollup watermark
-- itself, or a repair, which then rebuilds the rollups with usage_rollups_rebuild().) An update or delete still
-- recounts (015), an update may not change an event's identity, a delete (but a repair's, below) and a TRUNCATE are
-- refused.

LOCK TABLE events IN ACCESS EXCLUSIVE MODE;

CREATE TABLE events_keyed (
  seq           bigint NOT NULL,
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
  batch_id      text NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now(),
  late          boolean NOT NULL DEFAULT false,  -- its billing period was already closed when it arrived
  CONSTRAINT events_keyed_values_objects CHECK (jsonb_typeof(meter_values) = 'object' AND jsonb_typeof(dimensions) = 'object')
);

-- Every stored event, in seq order; the keys and seqs held by event_keys are the events' own (014 kept them so).
INSERT INTO events_keyed (seq, source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id,
                          received_at, late)
SELECT seq, source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, received_at, late
  FROM events ORDER BY seq;

-- The sequence outlives the table it belonged to (until it becomes the new table's identity, below).
ALTER SEQUENCE events_seq_seq OWNED BY NONE;
-- usage_rollup_horizon (032) is written in SQL-standard form and so depends on events: made again below.
DROP FUNCTION usage_rollup_horizon();
DROP TABLE events;
DROP TABLE event_keys;
DROP FUNCTION events_claim_keys();
DROP FUNCTION events_rekey();
DROP FUNCTION event_keys_identity();
DROP FUNCTION usage_rollups_add();
DROP FUNCTION usage_rollups_on_truncate();  -- a TRUNCATE of events is refused before it could run
DROP FUNCTION accrue_ensure_event_partition(timestamptz);
DROP FUNCTION accrue_guard_event_partitions();

ALTER TABLE events_keyed RENAME TO events;
ALTER TABLE events RENAME CONSTRAINT events_keyed_values_objects TO events_values_objects;
-- The same sequence, now the identity column's: it goes on from where it stood.
DO $$
DECLARE
  last bigint;
  called boolean;
BEGIN
  SELECT last_value, is_called INTO last, called FROM events_seq_seq;
  DROP SEQUENCE events_seq_seq;
  ALTER TABLE events ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME events_seq_seq);
  PERFORM setval('events_seq_seq', last, called);
END $$;
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (source, id);
ALTER TABLE events ADD CONSTRAINT events_seq_key UNIQUE (seq);
CREATE INDEX events_customer_type_time ON events (customer_id, type, time);
CREATE INDEX events_late ON events (customer_id, time) WHERE late;
-- Events arrive roughly in time order, so a block-range index finds a few hours of all customers for a few kB.
CREATE INDEX events_time_brin ON events USING brin (time);

CREATE FUNCTION usage_rollup_horizon() RETURNS bigint LANGUAGE sql STABLE
  RETURN (SELECT greatest(coalesce(max(seq), 0), (SELECT seq FROM usage_rollup_watermark)) FROM events);

-- Events are never deleted (026). The partition creator's exception goes with the partitions; what remains is a
-- repair's: a transaction that sets accrue.event_removal for itself (an operator with the database's own rights,
-- removing events that should never have been sent). The rollups recount what it removed, and its keys are free again.
CREATE OR REPLACE FUNCTION events_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('accrue.event_removal', true) = 'on' THEN RETURN OLD; END IF;
  RAISE EXCEPTION 'event (%, %) cannot be deleted: events are kept', OLD.source, OLD.id USING ERRCODE = 'insufficient_privilege';
END $$;

-- An update keeps an event's identity: its source, id and seq (its dedup key and its place in the rollups' order).
CREATE FUNCTION events_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.source, NEW.id, NEW.seq) IS DISTINCT FROM (OLD.source, OLD.id, OLD.seq) THEN
    RAISE EXCEPTION 'event (%, %) cannot change its source, id or seq: its dedup key is kept', OLD.source, OLD.id
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER events_identity BEFORE UPDATE ON events FOR EACH ROW EXECUTE FUNCTION events_identity();
CREATE TRIGGER events_no_delete BEFORE DELETE ON events FOR EACH ROW EXECUTE FUNCTION events_no_delete();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();
CREATE TRIGGER events_rollups_update AFTER UPDATE ON events REFERENCING OLD TABLE AS events_removed NEW TABLE AS events_inserted
  FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_on_update();
CREATE TRIGGER events_rollups_delete AFTER DELETE ON events REFERENCING OLD TABLE AS events_removed
  FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_on_delete();
