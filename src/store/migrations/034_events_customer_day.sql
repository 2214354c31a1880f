-- A customer's events found by UTC day rather than by the exact time (issue 19, docs/decisions/0006-customer-index-by-day.md).
--
-- events_customer_type_time (033) placed every event by its exact time within its customer and meter. Events of a
-- batch carry times spread over hours or days, so each landed on a different leaf page of that index: a batch of
-- 1,000 touched as many pages, each split and logged in full after a checkpoint. Measured under four concurrent
-- batch writers, that index cost more than the primary key and the seq index together (19–23 µs of PostgreSQL CPU
-- per event with it, 8–12 without).
-- Keyed by the UTC day instead, the events of one customer, meter and day sit together in the order they were
-- stored (a btree orders equal keys by heap position, which only grows), so a batch appends to the end of a few
-- groups, and equal keys are stored once with a list of rows (deduplication). Readers name the days of their window
-- beside its exact bounds (src/store/event-window.ts): the index finds the days, the bounds keep the exact times.
DROP INDEX events_customer_type_time;
CREATE INDEX events_customer_type_day ON events (customer_id, type, ((time AT TIME ZONE 'UTC')::date));
