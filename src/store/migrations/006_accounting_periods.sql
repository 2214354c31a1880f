-- Accounting periods per legal entity: open unless closed. A journal dated in a closed period follows the configured
-- policy (refuse, or post on the first day of the next open period) and records what was done.
CREATE TABLE accounting_periods (
  legal_entity text NOT NULL,
  period       text NOT NULL CHECK (period ~ '^\d{4}-(0[1-9]|1[0-2])$'),
  status       text NOT NULL CHECK (status IN ('open', 'closed')),
  closed_at    timestamptz,
  closed_by    text,
  PRIMARY KEY (legal_entity, period)
);
ALTER TABLE journals ADD COLUMN dated_on date;              -- the date the source document asked for
ALTER TABLE journals ADD COLUMN posting_policy text NOT NULL DEFAULT 'as_dated' CHECK (posting_policy IN ('as_dated', 'next_open_period'));
