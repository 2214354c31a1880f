-- The outbox with real ERP connections (issue #15): `attempts` counts calls made to the ERP for the row (no longer
-- claims), `failures` the transient failures in a row (what dead-letters it), and `post_on` the date the document is
-- sent with when the ERP's period for its own date is closed and the connection posts on the first open day.
ALTER TABLE outbox
  ADD COLUMN failures integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
  ADD COLUMN post_on  date;
