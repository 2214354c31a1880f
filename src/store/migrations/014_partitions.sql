-- Events in monthly partitions by event time (UTC months), so a month's events are one table to scan, vacuum or archive.
-- A partitioned table's unique keys must include the partition key, so (source, id) moves to event_keys, an
-- unpartitioned table every insert into events claims (a trigger, for writers other than ingestion): the database
-- stays the last guard against counting an event twice. Columns and their meaning are unchanged.

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_batch_id_fkey TO events_unpartitioned_batch_id_fkey;
ALTER INDEX events_seq RENAME TO events_unpartitioned_seq;
ALTER INDEX events_customer_type_time RENAME TO events_unpartitioned_customer_type_time;
ALTER INDEX events_late RENAME TO events_unpartitioned_late;
ALTER TABLE events_unpartitioned ALTER COLUMN seq DROP DEFAULT;

CREATE TABLE events (
  seq           bigint NOT NULL DEFAULT nextval('events_seq_seq'),
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
  CHECK (jsonb_typeof(meter_values) = 'object' AND jsonb_typeof(dimensions) = 'object')
) PARTITION BY RANGE (time);
ALTER SEQUENCE events_seq_seq OWNED BY events.seq;
CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_source_id ON events (source, id);
CREATE INDEX events_customer_type_time ON events (customer_id, type, time);
CREATE INDEX events_late ON events (customer_id, time) WHERE late;
-- Events arrive roughly in time order, so a block-range index finds a few hours of all customers for a few kB.
CREATE INDEX events_time_brin ON events USING brin (time);

-- Catches an event whose month has no partition yet; accrue_ensure_event_partition moves such rows out.
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- The identity of every stored event: (source, id) once across all partitions, seq once.
CREATE TABLE event_keys (
  source        text NOT NULL,
  id            text NOT NULL,
  seq           bigint NOT NULL UNIQUE,
  content_hash  text NOT NULL,
  time          timestamptz NOT NULL,  -- names the partition that holds the event
  PRIMARY KEY (source, id)
);

/** The first instant of the UTC month holding `at`, and of the month after. */
CREATE FUNCTION accrue_month_start(at timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN date_trunc('month', at, 'UTC');
CREATE FUNCTION accrue_month_end(at timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  RETURN ((date_trunc('month', at, 'UTC') AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';

-- Creates the partition for the UTC month holding `at` unless it exists; returns its name. Events that fell into the
-- default partition for that month are moved into it under a lock, so the default never blocks a new partition.
CREATE FUNCTION accrue_ensure_event_partition(at timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  lo   timestamptz := accrue_month_start(at);
  hi   timestamptz := accrue_month_end(at);
  name text := 'events_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
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
    DELETE FROM events_default WHERE time >= lo AND time < hi;
    EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
  ELSE
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
  END IF;
  RETURN name;
END $$;

-- Claims the keys of inserted events. Ingestion claims them itself before inserting (src/ingest/service.ts), so
-- this finds them already there; any other writer's keys are claimed here, and a key already held by another
-- event fails the insert with a unique violation on event_keys.
CREATE FUNCTION events_claim_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO event_keys (source, id, seq, content_hash, time)
  SELECT n.source, n.id, n.seq, n.content_hash, n.time FROM events_inserted n
   WHERE NOT EXISTS (SELECT 1 FROM event_keys k WHERE k.source = n.source AND k.id = n.id AND k.seq = n.seq)
   ORDER BY n.source, n.id;
  RETURN NULL;
END $$;

CREATE FUNCTION events_release_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM event_keys k USING events_removed o WHERE k.source = o.source AND k.id = o.id AND k.seq = o.seq;
  RETURN NULL;
END $$;

-- An update is a release of the old identity and a claim of the new one.
CREATE FUNCTION events_rekey() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM event_keys k USING events_removed o WHERE k.source = o.source AND k.id = o.id AND k.seq = o.seq;
  INSERT INTO event_keys (source, id, seq, content_hash, time)
  SELECT n.source, n.id, n.seq, n.content_hash, n.time FROM events_inserted n ORDER BY n.source, n.id;
  RETURN NULL;
END $$;

CREATE FUNCTION events_truncate_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE event_keys;
  RETURN NULL;
END $$;

CREATE TRIGGER events_keys_insert AFTER INSERT ON events REFERENCING NEW TABLE AS events_inserted
  FOR EACH STATEMENT EXECUTE FUNCTION events_claim_keys();
CREATE TRIGGER events_keys_delete AFTER DELETE ON events REFERENCING OLD TABLE AS events_removed
  FOR EACH STATEMENT EXECUTE FUNCTION events_release_keys();
CREATE TRIGGER events_keys_update AFTER UPDATE ON events REFERENCING OLD TABLE AS events_removed NEW TABLE AS events_inserted
  FOR EACH STATEMENT EXECUTE FUNCTION events_rekey();
CREATE TRIGGER events_keys_truncate AFTER TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION events_truncate_keys();

-- Partitions for every month that holds events, this month and the next three; then the events themselves.
SELECT accrue_ensure_event_partition(m)
  FROM (SELECT DISTINCT accrue_month_start(time) AS m FROM events_unpartitioned
        UNION SELECT accrue_month_start(now() + make_interval(months => k)) FROM generate_series(0, 3) AS k) months
 ORDER BY m;

INSERT INTO events (seq, source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, received_at, late)
SELECT seq, source, id, type, subject, customer_id, time, data, meter_values, dimensions, content_hash, batch_id, received_at, late
  FROM events_unpartitioned ORDER BY seq;

DROP TABLE events_unpartitioned;
