-- Exceptions outside the checkpoints are opened by one TypeScript writer (src/store/exceptions.ts), which fills the
-- payment scope and writes the opening exception_events row itself: the triggers of 008 that did both are dropped.
-- The append-only and final guards of 008 stay.

DROP TRIGGER exceptions_payment_scope ON exceptions;
DROP FUNCTION exceptions_payment_scope();
DROP FUNCTION exception_payment_scope(jsonb);

DROP TRIGGER exceptions_payment_opened ON exceptions;
DROP FUNCTION exceptions_payment_opened();
