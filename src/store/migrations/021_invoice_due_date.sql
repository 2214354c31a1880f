-- An invoice's legal dates as columns (the document holds them too, with the seller and buyer it was issued to):
-- issue_date, and due_date = issue_date + payment terms (docs/catalog.md "Legal content"), so that what is due or
-- overdue is a query. Credit notes have no due date. Documents stored before this migration keep NULL in both:
-- their dates were never decided, and are not invented now.
ALTER TABLE invoices ADD COLUMN issue_date date, ADD COLUMN due_date date;
ALTER TABLE invoices ADD CONSTRAINT invoices_due_after_issue CHECK (due_date IS NULL OR (issue_date IS NOT NULL AND due_date >= issue_date));
ALTER TABLE invoices ADD CONSTRAINT invoices_credit_note_not_due CHECK (kind <> 'credit_note' OR due_date IS NULL);
CREATE INDEX invoices_due_date ON invoices (due_date) WHERE due_date IS NOT NULL;
