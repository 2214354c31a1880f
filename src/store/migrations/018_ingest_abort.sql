-- Ingestion writes a batch with no repeat in it as one statement, with no BEGIN and COMMIT around it (src/ingest/
-- service.ts): it checks first that none of its keys is stored, and when another writer claims one of them after
-- that check, the statement must write nothing at all. A statement can only undo itself by failing: this raises the
-- error it is given, with its own SQLSTATE, so the caller can tell it from any other and write the batch the long way.
CREATE FUNCTION accrue_abort(sqlstate text, message text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message;
END $$;
