-- Two of events' secondary indexes made cheaper to keep (issue 19, docs/decisions/0007-events-lean-indexes.md).
--
-- Storing an event cost PostgreSQL about twice what the same row cost in a bare table keyed by (source, id), and in
-- `perf` nearly half of it was btree insertion: the primary key, the seq index and the (customer, type, day) index,
-- each entered from the root for every event. Measured with four concurrent COPY writers of 1,000-event batches
-- (PostgreSQL CPU per event): bare keyed table 6.6 µs, events' indexes 11.0 µs; with the two indexes below 8.8 µs.
--
-- 1. A customer's events of a meter by day, keyed by one bigint instead of (text, text, date). The key is a 42-bit
--    hash of (customer_id, type) above a 22-bit UTC day number (days since 1970-01-01, held within 0..4194303): one
--    customer's events of one meter over consecutive days have consecutive keys, so a window of days is one range
--    of the index. Two streams whose hashes collide share keys, which readers tell apart by customer_id and type (they
--    name both beside the key range, src/store/event-window.ts). The day number is held within its bounds (event
--    times are 1970..9999, refused otherwise at ingestion), so the key never decreases as time grows: the range
--    from a window's first day's key to its last day's holds every event of the window, whatever was stored.
--    Comparing one bigint instead of two texts and a date, in smaller index tuples: 3.3 → 2.1 µs an event.
-- 2. seq by block range (BRIN) instead of a unique btree. Readers of seq read ranges of it (a fold's events, a close's
--    late arrivals) or the newest: events are appended in about seq order, so the block ranges of seq are narrow.
--    The newest seq is read above the rollups' watermark (usage_rollup_horizon below, src/meter/catch-up.ts), where
--    the unfolded events are. seq stays what the identity sequence gives (GENERATED ALWAYS: an INSERT cannot choose
--    it; one sequence, so no two events share one); the unique index was not the guard of anything a reader relies
--    on: a fold counts every event in its seq range, and a watermark is a bound, not an event. 1.5 µs an event.
--    Summarized as ranges fill (autosummarize, by autovacuum, and by every VACUUM); a range not yet summarized is
--    read by every seq query, as the newest events would be anyway.

CREATE FUNCTION accrue_event_day_key(customer_id text, type text, at timestamptz) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT ((hashtextextended(type, hashtextextended(customer_id, 0)) & 4398046511103) << 22)
              | least(greatest((at AT TIME ZONE 'UTC')::date - DATE '1970-01-01', 0), 4194303) $$;

CREATE INDEX events_customer_type_day_key ON events (accrue_event_day_key(customer_id, type, time));
DROP INDEX events_customer_type_day;

CREATE INDEX events_seq_brin ON events USING brin (seq) WITH (pages_per_range = 32, autosummarize = on);
ALTER TABLE events DROP CONSTRAINT events_seq_key;

-- The seq every event stored up to now is at or below: the newest above the watermark (the events not folded yet,
-- found by events_seq_brin), else the watermark. Meaningful as a fold's horizon only when read under
-- LOCK TABLE events IN SHARE MODE (src/meter/catch-up.ts), which waits for the writers in flight.
CREATE OR REPLACE FUNCTION usage_rollup_horizon() RETURNS bigint LANGUAGE sql STABLE
  RETURN (SELECT greatest(w.seq, (SELECT max(e.seq) FROM events e WHERE e.seq > w.seq)) FROM usage_rollup_watermark w);
