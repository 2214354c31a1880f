-- Payment polling from ERP targets: a cursor per target, and each ERP payment seen, so a repeat poll applies
-- nothing twice and the payment sync delay (ERP modification time to Accrue) can be measured per payment.

CREATE TABLE payment_sync_cursors (
  target                 text PRIMARY KEY,
  cursor                 text,            -- the newest payment modification time seen, as the ERP writes it (sortable text)
  newest_erp_modified_at text,            -- the same, kept apart from the cursor so a reset cursor keeps the history
  last_polled_at         timestamptz,     -- when the last poll finished
  last_outcome           jsonb,
  lease_until            timestamptz      -- one poll per target at a time; an expired lease frees it
);

CREATE TABLE erp_payment_sync (
  target          text NOT NULL,
  erp_payment_id  text NOT NULL,         -- the ERP's payment id (NetSuite: payment/invoice, one row per application)
  payment_id      text NOT NULL,         -- payments.id in Accrue: <target>:<erp payment id>
  erp_modified_at text NOT NULL,         -- the ERP's last modification time of the payment, as the ERP writes it
  outcome         text NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'exception', 'skipped')),
  first_polled_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (target, erp_payment_id)
);

-- Matching an ERP payment to the Accrue invoice it pays: by the ERP's id of the document we posted, or by our key as
-- the ERP stores it (NetSuite external IDs replace characters outside [A-Za-z0-9_-] with '-').
CREATE INDEX outbox_target_reference ON outbox (target, target_reference) WHERE target_reference IS NOT NULL;
CREATE INDEX outbox_stored_key ON outbox ((regexp_replace(key, '[^A-Za-z0-9_-]', '-', 'g')));
