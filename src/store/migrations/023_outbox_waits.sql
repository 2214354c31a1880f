-- The outbox with real ERP connections (issue #15): `attempts` counts calls made to the ERP for the row (no longer
-- claims), `failures` the transient failures in a row (what dead-letters it), and `post_on` the date the document is
-- sent with when the ERP's period for its own date is closed and the connection posts on the first open day.
ALTER TABLE outbox
  ADD COLUMN failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
  ADD COLUMN post_on  date;

-- Calls to an ERP connection, shared by every process and caller (outbox, customer sync, payment polling,
-- reconciliation, erp check): the slots in flight (the ERP's concurrency limit), and a log of recent calls for its
-- per-minute and per-day limits, counted over sliding windows as Xero counts them.
CREATE TABLE erp_call_slots (
  connection  text NOT NULL REFERENCES erp_connections (name),
  slot        integer NOT NULL CHECK (slot >= 1),
  holder      text,
  lease_until timestamptz,                 -- a crashed holder's slot comes back when its lease ends
  PRIMARY KEY (connection, slot)
);
CREATE TABLE erp_call_log (
  id         bigserial PRIMARY KEY,
  connection text NOT NULL REFERENCES erp_connections (name),
  at         timestamptz NOT NULL          -- when the call was sent, moved to when its answer came: the ERP counted it in between
);
CREATE INDEX erp_call_log_recent ON erp_call_log (connection, at);
