-- Settlement: payments applied once to invoices; what cannot be applied safely becomes an exception, not a guess.

CREATE TABLE payments (
  id            text PRIMARY KEY,               -- the payment's id at its source (ERP or processor): the idempotency key
  source        text NOT NULL CHECK (source IN ('webhook', 'erp')),
  invoice_ref   text NOT NULL,                  -- as sent: an invoice number or id
  invoice_id    text REFERENCES invoices (id),  -- set when applied
  currency      text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  amount_minor  bigint NOT NULL CHECK (amount_minor > 0),
  received_on   date NOT NULL,
  status        text NOT NULL CHECK (status IN ('applied', 'exception')),
  content_hash  text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- Signed webhook deliveries seen, so a replayed delivery is refused.
CREATE TABLE webhook_deliveries (
  signature    text PRIMARY KEY,
  received_at  timestamptz NOT NULL DEFAULT now()
);

-- Exceptions for owned queues (reconciliation adds its checkpoints to the same table).
CREATE TABLE exceptions (
  id           text PRIMARY KEY,               -- exc:v1:<sha256 of kind and subject>
  kind         text NOT NULL,
  owner_queue  text NOT NULL CHECK (owner_queue IN ('finance_operations', 'billing_engineering', 'integration_support')),
  status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'assigned', 'resolved', 'waived')),
  subject      text NOT NULL,
  details      jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);
