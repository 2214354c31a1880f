-- Usage pre-aggregated as events arrive, so reading a month of usage costs rows per customer, not events.
-- Maintained by statement triggers on events in the inserting transaction, for every writer (ingestion, replay,
-- bulk loads). The rollups hold only what the stored events say (type, customer, time, late, seq, meter_values,
-- dimensions), so they answer for any catalog exactly as a recount of the events would; src/meter/rollups.ts reads
-- them and recounts from the events wherever a rollup cannot vouch for the answer (see docs/scaling.md).

-- Meters some catalog version counted with unique_count or latest: only those keep distinct keys or a latest value.
CREATE TABLE usage_meter_kinds (
  event_type     text COLLATE "C" NOT NULL,
  meter_id       text COLLATE "C" NOT NULL,
  aggregation    text NOT NULL CHECK (aggregation IN ('unique_count', 'latest')),
  since_version  integer NOT NULL,
  PRIMARY KEY (event_type, meter_id, aggregation)
);

CREATE FUNCTION usage_meter_kinds_from_catalog() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO usage_meter_kinds (event_type, meter_id, aggregation, since_version)
  SELECT m->>'event_type', m->>'id', m->>'aggregation', NEW.version FROM jsonb_array_elements(NEW.document->'meters') AS m
   WHERE m->>'aggregation' IN ('unique_count', 'latest')
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
CREATE TRIGGER catalog_versions_meter_kinds AFTER INSERT ON catalog_versions
  FOR EACH ROW EXECUTE FUNCTION usage_meter_kinds_from_catalog();
INSERT INTO usage_meter_kinds (event_type, meter_id, aggregation, since_version)
SELECT m->>'event_type', m->>'id', m->>'aggregation', min(c.version) FROM catalog_versions c, jsonb_array_elements(c.document->'meters') AS m
 WHERE m->>'aggregation' IN ('unique_count', 'latest') GROUP BY 1, 2, 3;

-- One row per grain ('hour', 'month'), event type, bucket, customer, meter key, late, valued and the event's
-- dimensions for that meter. An event counts in the row of every meter its meter_values or dimensions name (in ''
-- when they name none), and is the anchor in exactly one of them (its first key), so summing anchor_count over a
-- type's rows counts each event once. valued: the events carry a value for the meter (meter_values ? meter_id).
CREATE TABLE usage_rollups (
  grain          text COLLATE "C" NOT NULL CHECK (grain IN ('hour', 'month')),
  type           text COLLATE "C" NOT NULL,
  bucket         timestamptz NOT NULL,
  customer_id    text COLLATE "C" NOT NULL,
  meter_id       text COLLATE "C" NOT NULL,
  late           boolean NOT NULL,
  valued         boolean NOT NULL,
  dimensions     jsonb NOT NULL,
  event_count    bigint NOT NULL CHECK (event_count > 0),
  anchor_count   bigint NOT NULL,  -- the events whose first meter key this row's is
  numeric_count  bigint NOT NULL,  -- values that read as decimals: value_sum and value_max cover exactly these
  keyed_count    bigint NOT NULL,  -- values recorded in usage_unique_keys (unique_count meters)
  latest_count   bigint NOT NULL,  -- values considered for latest (latest meters)
  value_sum      numeric,
  value_max      numeric,
  first_time     timestamptz NOT NULL,
  last_time      timestamptz NOT NULL,
  seq_max        bigint NOT NULL,  -- the newest event counted: a reader at a lower watermark recounts this bucket
  -- The greatest (time, id, source) and its value, as bytes that order as the recount's ORDER BY time,
  -- id COLLATE "C", source COLLATE "C" does: {time in µs + 2^62 big-endian, id, source, value} (UTF-8).
  latest         bytea[],
  PRIMARY KEY (grain, type, bucket, customer_id, meter_id, late, valued, dimensions)
) WITH (fillfactor = 70);  -- room on each page, so updating a row rewrites no index entry (a HOT update)

-- Distinct values of unique_count meters per bucket, with the first event (by seq) that carried each.
CREATE TABLE usage_unique_keys (
  grain        text COLLATE "C" NOT NULL CHECK (grain IN ('hour', 'month')),
  type         text COLLATE "C" NOT NULL,
  bucket       timestamptz NOT NULL,
  customer_id  text COLLATE "C" NOT NULL,
  meter_id     text COLLATE "C" NOT NULL,
  late         boolean NOT NULL,
  dimensions   jsonb NOT NULL,
  key          text COLLATE "C" NOT NULL,
  first_seq    bigint NOT NULL,
  PRIMARY KEY (grain, type, bucket, customer_id, meter_id, late, dimensions, key)
);

-- The rollup upsert over a relation of events rows (a transition table, or a subquery when rebuilding). Events are
-- aggregated per hour, the hours per month; rows are written in primary-key order, so concurrent ingestion takes
-- row locks in one order. Every merge is a sum, a least or a greatest: any split of the events gives the same rows.
CREATE FUNCTION usage_rollup_sql(events_relation text) RETURNS text LANGUAGE sql IMMUTABLE RETURN format($sql$
WITH expanded AS (
  SELECT e.customer_id, e.type, e.late, e.seq, e.time, e.id, e.source, k.meter_id, k.position = 1 AS anchor,
         coalesce(e.dimensions -> k.meter_id, '{}'::jsonb) AS dimensions,
         e.meter_values ? k.meter_id AS valued, e.meter_values ->> k.meter_id AS value
    FROM %s AS e
    -- Every key the event's values or dimensions name, once ('' when they name none), in jsonb's own key order.
    CROSS JOIN LATERAL jsonb_object_keys(CASE WHEN e.meter_values = '{}'::jsonb AND e.dimensions = '{}'::jsonb THEN '{"": null}'::jsonb
                                              ELSE e.meter_values || e.dimensions END) WITH ORDINALITY AS k (meter_id, position)
), hourly AS (
  SELECT 'hour' AS grain, x.type, date_trunc('hour', x.time, 'UTC') AS bucket, x.customer_id, x.meter_id, x.late, x.valued, x.dimensions,
         count(*) AS event_count, count(*) FILTER (WHERE x.anchor) AS anchor_count,
         count(*) FILTER (WHERE x.value ~ '^-?[0-9]+(\.[0-9]+)?$') AS numeric_count,
         count(*) FILTER (WHERE x.value IS NOT NULL AND u.meter_id IS NOT NULL) AS keyed_count,
         count(*) FILTER (WHERE x.valued AND l.meter_id IS NOT NULL) AS latest_count,
         sum(CASE WHEN x.value ~ '^-?[0-9]+(\.[0-9]+)?$' THEN x.value::numeric END) AS value_sum,
         max(CASE WHEN x.value ~ '^-?[0-9]+(\.[0-9]+)?$' THEN x.value::numeric END) AS value_max,
         min(x.time) AS first_time, max(x.time) AS last_time, max(x.seq) AS seq_max,
         max(ARRAY[int8send((extract(epoch FROM x.time) * 1000000)::bigint + 4611686018427387904), convert_to(x.id, 'UTF8'),
                   convert_to(x.source, 'UTF8'), convert_to(x.value, 'UTF8')]) FILTER (WHERE x.valued AND l.meter_id IS NOT NULL) AS latest
    FROM expanded x
    LEFT JOIN usage_meter_kinds u ON u.event_type = x.type AND u.meter_id = x.meter_id AND u.aggregation = 'unique_count'
    LEFT JOIN usage_meter_kinds l ON l.event_type = x.type AND l.meter_id = x.meter_id AND l.aggregation = 'latest'
   GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
), upserts AS (
  SELECT * FROM hourly
  UNION ALL
  SELECT 'month', type, date_trunc('month', bucket, 'UTC'), customer_id, meter_id, late, valued, dimensions,
         sum(event_count), sum(anchor_count), sum(numeric_count), sum(keyed_count), sum(latest_count), sum(value_sum), max(value_max),
         min(first_time), max(last_time), max(seq_max), max(latest)
    FROM hourly
   GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
)
INSERT INTO usage_rollups AS r (grain, type, bucket, customer_id, meter_id, late, valued, dimensions, event_count, anchor_count, numeric_count,
                                keyed_count, latest_count, value_sum, value_max, first_time, last_time, seq_max, latest)
SELECT * FROM upserts
 ORDER BY grain, type, bucket, customer_id, meter_id, late, valued, dimensions
ON CONFLICT (grain, type, bucket, customer_id, meter_id, late, valued, dimensions) DO UPDATE SET
  event_count   = r.event_count + EXCLUDED.event_count,
  anchor_count  = r.anchor_count + EXCLUDED.anchor_count,
  numeric_count = r.numeric_count + EXCLUDED.numeric_count,
  keyed_count   = r.keyed_count + EXCLUDED.keyed_count,
  latest_count  = r.latest_count + EXCLUDED.latest_count,
  value_sum     = coalesce(r.value_sum + EXCLUDED.value_sum, r.value_sum, EXCLUDED.value_sum),
  value_max     = greatest(r.value_max, EXCLUDED.value_max),
  first_time    = least(r.first_time, EXCLUDED.first_time),
  last_time     = greatest(r.last_time, EXCLUDED.last_time),
  seq_max       = greatest(r.seq_max, EXCLUDED.seq_max),
  latest        = greatest(r.latest, EXCLUDED.latest)
$sql$, events_relation);

CREATE FUNCTION usage_unique_keys_sql(events_relation text) RETURNS text LANGUAGE sql IMMUTABLE RETURN format($sql$
WITH hourly AS (
  SELECT 'hour' AS grain, e.type, date_trunc('hour', e.time, 'UTC') AS bucket, e.customer_id, u.meter_id, e.late,
         coalesce(e.dimensions -> u.meter_id, '{}'::jsonb) AS dimensions, e.meter_values ->> u.meter_id AS key, min(e.seq) AS first_seq
    FROM %s AS e
    JOIN usage_meter_kinds u ON u.event_type = e.type AND u.aggregation = 'unique_count' AND e.meter_values ->> u.meter_id IS NOT NULL
   GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
), upserts AS (
  SELECT * FROM hourly
  UNION ALL
  SELECT 'month', type, date_trunc('month', bucket, 'UTC'), customer_id, meter_id, late, dimensions, key, min(first_seq)
    FROM hourly
   GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
)
INSERT INTO usage_unique_keys AS k (grain, type, bucket, customer_id, meter_id, late, dimensions, key, first_seq)
SELECT * FROM upserts
 ORDER BY grain, type, bucket, customer_id, meter_id, late, dimensions, key
ON CONFLICT (grain, type, bucket, customer_id, meter_id, late, dimensions, key) DO UPDATE SET first_seq = EXCLUDED.first_seq
 WHERE EXCLUDED.first_seq < k.first_seq
$sql$, events_relation);

-- The trigger runs the same SQL as static statements (written out here from the one template), so PL/pgSQL plans
-- them once per session instead of once per insert. Enough memory to aggregate a bulk load's statement in one pass.
DO $$
BEGIN
  EXECUTE format($f$CREATE FUNCTION usage_rollups_add() RETURNS trigger LANGUAGE plpgsql SET work_mem = '64MB' AS %L$f$,
    'BEGIN ' || usage_rollup_sql('events_inserted') || '; ' || usage_unique_keys_sql('events_inserted') || '; RETURN NULL; END');
END $$;

-- A removed or changed event cannot be subtracted from a max, a latest or a key set: the months it touched are
-- recounted from the events that remain, for its customer and type. The trigger lists them in usage_rollups_touched.
CREATE FUNCTION usage_rollups_recount_touched() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM usage_rollups r USING usage_rollups_touched t
   WHERE r.customer_id = t.customer_id AND r.type = t.type AND r.bucket >= t.lo AND r.bucket < t.hi;
  DELETE FROM usage_unique_keys k USING usage_rollups_touched t
   WHERE k.customer_id = t.customer_id AND k.type = t.type AND k.bucket >= t.lo AND k.bucket < t.hi;
  EXECUTE usage_rollup_sql('(SELECT e.* FROM events e JOIN usage_rollups_touched t ON e.customer_id = t.customer_id AND e.type = t.type AND e.time >= t.lo AND e.time < t.hi)');
  EXECUTE usage_unique_keys_sql('(SELECT e.* FROM events e JOIN usage_rollups_touched t ON e.customer_id = t.customer_id AND e.type = t.type AND e.time >= t.lo AND e.time < t.hi)');
  DROP TABLE usage_rollups_touched;
END $$;

-- Transition tables are visible only in the trigger's own function, so each one lists what it touched.
CREATE FUNCTION usage_rollups_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE usage_rollups_touched ON COMMIT DROP AS
    SELECT DISTINCT customer_id, type, accrue_month_start(time) AS lo, accrue_month_end(time) AS hi FROM events_removed;
  PERFORM usage_rollups_recount_touched();
  RETURN NULL;
END $$;

CREATE FUNCTION usage_rollups_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  CREATE TEMP TABLE usage_rollups_touched ON COMMIT DROP AS
    SELECT DISTINCT customer_id, type, accrue_month_start(time) AS lo, accrue_month_end(time) AS hi
      FROM (SELECT customer_id, type, time FROM events_removed UNION ALL SELECT customer_id, type, time FROM events_inserted) AS changed;
  PERFORM usage_rollups_recount_touched();
  RETURN NULL;
END $$;

CREATE FUNCTION usage_rollups_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE usage_rollups, usage_unique_keys;
  RETURN NULL;
END $$;

CREATE TRIGGER events_rollups_insert AFTER INSERT ON events REFERENCING NEW TABLE AS events_inserted
  FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_add();
CREATE TRIGGER events_rollups_delete AFTER DELETE ON events REFERENCING OLD TABLE AS events_removed
  FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_on_delete();
CREATE TRIGGER events_rollups_update AFTER UPDATE ON events REFERENCING OLD TABLE AS events_removed NEW TABLE AS events_inserted
  FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_on_update();
CREATE TRIGGER events_rollups_truncate AFTER TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_on_truncate();

-- Rollups from scratch: the same SQL over every stored event at once, which gives the rows ingestion would have
-- built batch by batch (every merge is a sum, a least or a greatest). Inserts wait meanwhile.
CREATE FUNCTION usage_rollups_rebuild() RETURNS void LANGUAGE plpgsql SET work_mem = '256MB' AS $$
BEGIN
  LOCK TABLE events IN SHARE MODE;
  TRUNCATE usage_rollups, usage_unique_keys;
  EXECUTE usage_rollup_sql('events');
  EXECUTE usage_unique_keys_sql('events');
END $$;

-- The events already stored, counted once.
SELECT usage_rollups_rebuild();
