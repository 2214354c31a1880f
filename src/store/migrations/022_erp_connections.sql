-- ERP connections (issue #15): one Xero organisation (tenant) or one NetSuite account each, named in configuration
-- (erp.connections); each legal entity posts to exactly one connection. Their secrets are sealed with the operator's
-- key (ACCRUE_SECRET_KEY or a key file), and the mappings from Accrue's ids to the ERP's are versioned data.

CREATE TABLE erp_connections (
  name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
  kind          text NOT NULL CHECK (kind IN ('xero', 'netsuite')),
  -- unauthorized: never connected; active: posting; needs_reauthorization: a refresh or grant was refused, its
  -- entries wait (nothing is dead-lettered) until `accrue connect` stores new credentials.
  status        text NOT NULL DEFAULT 'unauthorized' CHECK (status IN ('unauthorized', 'active', 'needs_reauthorization')),
  status_reason text,
  status_since  timestamptz NOT NULL DEFAULT now(),
  -- A daily limit reached: no call to this connection before parked_until; attempts are not spent meanwhile.
  parked_until  timestamptz,
  parked_reason text,
  settings      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'), -- non-secret: tenant, account, base URL, limits
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Each legal entity posts to exactly one connection: the primary key says so.
CREATE TABLE erp_entity_connections (
  legal_entity text PRIMARY KEY CHECK (legal_entity <> ''),
  connection   text NOT NULL REFERENCES erp_connections (name)
);
CREATE INDEX erp_entity_connections_connection ON erp_entity_connections (connection);

-- Tokens, consumer and token secrets, private keys: one sealed JSON document per connection (AES-256-GCM). The
-- database never holds the key; key_id is the key's fingerprint, so a wrong key is named rather than misread.
CREATE TABLE erp_credentials (
  connection        text PRIMARY KEY REFERENCES erp_connections (name),
  sealed            bytea NOT NULL,
  key_id            text NOT NULL,
  access_expires_at timestamptz,            -- when the sealed access token expires (none for TBA)
  generation        bigint NOT NULL DEFAULT 1 CHECK (generation >= 1), -- +1 on every refresh or connect
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Mappings from Accrue's ids to the ERP's, per connection, effective-dated and append-only: a change is a new row
-- (a higher version for the same start, or a later start); a NULL target ends the mapping from effective_from.
CREATE TABLE erp_mappings (
  id             bigserial PRIMARY KEY,
  connection     text NOT NULL REFERENCES erp_connections (name),
  kind           text NOT NULL CHECK (kind IN ('customer', 'item', 'account', 'tax_code', 'tax_type', 'nexus', 'currency', 'subsidiary')),
  source         text NOT NULL CHECK (source <> ''),
  target         text CHECK (target IS NULL OR target <> ''),
  effective_from date NOT NULL,
  version        integer NOT NULL CHECK (version >= 1),
  recorded_by    text NOT NULL CHECK (recorded_by <> ''),
  recorded_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (connection, kind, source, effective_from, version)
);

CREATE FUNCTION erp_mappings_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'erp_mappings is append-only; import a new version instead';
END $$;
CREATE TRIGGER erp_mappings_append_only BEFORE UPDATE OR DELETE ON erp_mappings FOR EACH ROW EXECUTE FUNCTION erp_mappings_append_only();
