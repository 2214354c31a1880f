-- Stream ingestion (src/stream/consumer.ts): a JetStream message that cannot become an event (not JSON, not a valid
-- CloudEvent) is terminated at JetStream so it is never redelivered; this row is then the only record of it.
CREATE TABLE stream_rejections (
  seq           bigserial PRIMARY KEY,
  stream        text NOT NULL,
  stream_seq    bigint NOT NULL CHECK (stream_seq > 0),   -- the message's sequence in its stream
  nats_subject  text NOT NULL,
  payload_hash  text NOT NULL CHECK (payload_hash ~ '^[0-9a-f]{64}$'),  -- SHA-256 of the payload bytes
  payload       bytea NOT NULL,
  headers       jsonb NOT NULL DEFAULT '{}',
  source        text,                                     -- the CloudEvent's source and id, when it had them
  id            text,
  problems      jsonb NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now(),
  -- A redelivery (crash after the ingest commit, before the ack) records nothing twice; a recreated stream
  -- reusing a sequence number with another payload is still recorded.
  UNIQUE (stream, stream_seq, payload_hash)
);
CREATE INDEX stream_rejections_received ON stream_rejections (received_at);
