-- events_claim_keys (migration 014) checks that each inserted event's key is held by that event, claiming it if
-- free. Ingestion has always claimed the keys itself, so the check finds them all; its cost is the point. Its plan
-- is made once per session and kept (until the table's statistics change): planned while event_keys was small, it
-- hashed the whole of event_keys for every insert, a sequential scan that grew with the table (32 ms for a batch of
-- 500 at 40,000 keys, most of the batch's time), and even planned afresh the planner prefers that hash up to some
-- hundred thousand keys. With hash joins, merge joins and sequential scans off for this function only, the one plan
-- left probes one of event_keys' unique indexes (seq, or the primary key) once per inserted event, whatever the
-- table's size when it was planned.
CREATE OR REPLACE FUNCTION events_claim_keys() RETURNS trigger LANGUAGE plpgsql
  SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off AS $$
BEGIN
  INSERT INTO event_keys (source, id, seq, content_hash, time)
  SELECT n.source, n.id, n.seq, n.content_hash, n.time FROM events_inserted n
   WHERE NOT EXISTS (SELECT 1 FROM event_keys k WHERE k.source = n.source AND k.id = n.id AND k.seq = n.seq)
   ORDER BY n.source, n.id;
  RETURN NULL;
END $$;
