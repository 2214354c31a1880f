-- Signed checkpoints of the audit chain's head (src/audit/checkpoints.ts) are announced like every other fact: a row in
-- the notifications outbox of type 'audit.checkpoint', which the publisher sends to JetStream (<prefix>.audit.checkpoint,
-- on the notifications stream) and to webhooks. The checkpoint itself is signed outside the database; the row only
-- carries it out. A later migration that redefines the list of types must keep 'audit.checkpoint'.
ALTER TABLE notifications DROP CONSTRAINT notifications_type_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_type_check CHECK (type IN ('invoice.finalized', 'credit_note.finalized',
  'document.posted', 'document.posting_failed', 'exception.opened', 'period.closed', 'audit.checkpoint'));

-- An audit.checkpoint notification carries a well-formed version-1 checkpoint document under its deterministic id.
ALTER TABLE notifications ADD CONSTRAINT notifications_audit_checkpoint_shape CHECK (
  type <> 'audit.checkpoint' OR (
    id = 'ntf:v1:audit.checkpoint:' || (data->>'seq') || ':' || left(data->>'hash', 16) || ':' || left(data->>'key_id', 16)
    AND subject = 'audit:' || (data->>'seq')
    AND data->>'version' = '1'
    AND data->>'seq' ~ '^(0|[1-9][0-9]{0,18})$'
    AND data->>'hash' ~ '^[0-9a-f]{64}$'
    AND data->>'key_id' ~ '^[0-9a-f]{64}$'
    AND data->>'signature' ~ '^[A-Za-z0-9_-]{86}$'
    AND jsonb_typeof(data->'at') = 'string'));
