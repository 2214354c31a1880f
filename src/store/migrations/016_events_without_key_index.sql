-- events (source, id) was indexed twice: by event_keys' primary key, which every writer claims first, and by an index
-- on every events partition that only the explanation of one event read. That lookup now goes through event_keys
-- (seq and time, so one partition's seq index), and the index goes: about 36 bytes per stored event and one index
-- entry less per insert.
DROP INDEX events_source_id;
