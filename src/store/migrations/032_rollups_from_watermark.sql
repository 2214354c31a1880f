-- Usage rollups caught up from a watermark instead of on every insert (issue 19, src/meter/catch-up.ts).
--
-- Folding each batch into the rollups as it was inserted (015's statement trigger) was the largest part of what an
-- event cost to store: the hour and month rows of a batch's customers, upserted under row locks that concurrent
-- batches of the same customers wait for. Ingestion now only stores events; the rollups cover every event up to
-- usage_rollup_watermark.seq, and usage_rollups_catch_up folds the events above it, in order, each fold and the
-- watermark's move in one transaction. What is folded is what a recount counts, once:
--   - the horizon a fold may reach is read under LOCK TABLE events IN SHARE MODE (as a close's watermark is), which
--     waits for every writer in flight: no event at or below it commits later;
--   - a fold takes the watermark row FOR UPDATE, so two folds never fold the same events;
--   - the insert trigger folds only an event written with a seq the watermark has passed (a row written back with
--     its own seq by SQL); every event stored with a new seq is left to the fold;
--   - a recount after an update or delete (015) recounts the events up to the watermark only, holding it FOR SHARE
--     so no fold moves it meanwhile; the events above it are the fold's.
-- Readers never see a partial answer: src/meter/rollups.ts catches up before reading when the rollups do not reach
-- what it reads (a close's event watermark, or the newest event stored).

CREATE TABLE usage_rollup_watermark (
  one  boolean PRIMARY KEY DEFAULT true CHECK (one),  -- exactly one row
  seq  bigint NOT NULL CHECK (seq >= 0)
);
-- Every event stored so far was folded by 015's trigger as it was inserted.
INSERT INTO usage_rollup_watermark (seq) SELECT coalesce(max(seq), 0) FROM events;

CREATE FUNCTION usage_rollup_watermark_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'UPDATE' THEN RAISE EXCEPTION 'usage_rollup_watermark has exactly one row: it is moved, never % ', TG_OP; END IF;
  IF NEW.seq < OLD.seq THEN RAISE EXCEPTION 'the rollup watermark only moves forward (% to %)', OLD.seq, NEW.seq; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER usage_rollup_watermark_kept BEFORE INSERT OR UPDATE OR DELETE ON usage_rollup_watermark
  FOR EACH ROW EXECUTE FUNCTION usage_rollup_watermark_kept();
CREATE TRIGGER usage_rollup_watermark_no_truncate BEFORE TRUNCATE ON usage_rollup_watermark
  FOR EACH STATEMENT EXECUTE FUNCTION accrue_refuse_statement();

-- The seq every event stored up to now is at or below. Meaningful as a fold's horizon only when read under
-- LOCK TABLE events IN SHARE MODE (src/meter/catch-up.ts), which waits for the writers in flight.
CREATE FUNCTION usage_rollup_horizon() RETURNS bigint LANGUAGE sql STABLE
  RETURN (SELECT greatest(coalesce(max(seq), 0), (SELECT seq FROM usage_rollup_watermark)) FROM events);

-- Folds the events above the watermark up to `horizon` (at most; the caller's horizon must have been read under
-- the SHARE lock) into the rollups and moves the watermark there, in the caller's transaction. Returns the watermark.
CREATE FUNCTION usage_rollups_catch_up(horizon bigint) RETURNS bigint LANGUAGE plpgsql SET work_mem = '64MB' AS $$
DECLARE
  mark bigint;
  tail text;
BEGIN
  SELECT seq INTO mark FROM usage_rollup_watermark FOR UPDATE;
  IF horizon <= mark THEN RETURN mark; END IF;
  tail := format('(SELECT * FROM events WHERE seq > %s AND seq <= %s)', mark, horizon);
  EXECUTE usage_rollup_sql(tail);
  EXECUTE usage_unique_keys_sql(tail);
  UPDATE usage_rollup_watermark SET seq = horizon;
  RETURN horizon;
END $$;

-- The insert trigger (015) folds only events the watermark has passed: those written back with their own seq.
DO $$
DECLARE
  folded text := '(SELECT * FROM events_inserted WHERE seq <= (SELECT seq FROM usage_rollup_watermark))';
BEGIN
  EXECUTE format($f$CREATE OR REPLACE FUNCTION usage_rollups_add() RETURNS trigger LANGUAGE plpgsql SET work_mem = '64MB' AS %L$f$,
    'BEGIN IF EXISTS (SELECT 1 FROM ' || folded || ' AS f) THEN '
    || usage_rollup_sql(folded) || '; ' || usage_unique_keys_sql(folded) || '; END IF; RETURN NULL; END');
END $$;

-- A recount after an update or delete covers the events up to the watermark, which it holds still meanwhile.
CREATE OR REPLACE FUNCTION usage_rollups_recount_touched() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  mark bigint;
  events_touched text;
BEGIN
  SELECT seq INTO mark FROM usage_rollup_watermark FOR SHARE;
  DELETE FROM usage_rollups r USING usage_rollups_touched t
   WHERE r.customer_id = t.customer_id AND r.type = t.type AND r.bucket >= t.lo AND r.bucket < t.hi;
  DELETE FROM usage_unique_keys k USING usage_rollups_touched t
   WHERE k.customer_id = t.customer_id AND k.type = t.type AND k.bucket >= t.lo AND k.bucket < t.hi;
  events_touched := format('(SELECT e.* FROM events e JOIN usage_rollups_touched t ON e.customer_id = t.customer_id AND e.type = t.type '
                           'AND e.time >= t.lo AND e.time < t.hi WHERE e.seq <= %s)', mark);
  EXECUTE usage_rollup_sql(events_touched);
  EXECUTE usage_unique_keys_sql(events_touched);
  DROP TABLE usage_rollups_touched;
END $$;

-- A rebuild counts every event stored and moves the watermark to the newest.
CREATE OR REPLACE FUNCTION usage_rollups_rebuild() RETURNS void LANGUAGE plpgsql SET work_mem = '256MB' AS $$
DECLARE
  horizon bigint;
  stored text;
BEGIN
  LOCK TABLE events IN SHARE MODE;
  PERFORM 1 FROM usage_rollup_watermark FOR UPDATE;
  horizon := usage_rollup_horizon();
  stored := format('(SELECT * FROM events WHERE seq <= %s)', horizon);
  TRUNCATE usage_rollups, usage_unique_keys;
  EXECUTE usage_rollup_sql(stored);
  EXECUTE usage_unique_keys_sql(stored);
  UPDATE usage_rollup_watermark SET seq = horizon;
END $$;
