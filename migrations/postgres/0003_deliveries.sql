-- EHR sync: outbox rows per destination. A row is pending, leased (a worker holds it until
-- leased_until), delivered, failed (terminal until replayed, with its reason category, last
-- HTTP status and the server's OperationOutcome) or skipped (nothing to send, with why).
-- Rows with destination '' are written when no destination is configured.
ALTER TABLE outbox ADD COLUMN destination TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN next_attempt_at TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN reason TEXT;
ALTER TABLE outbox ADD COLUMN last_status BIGINT;
ALTER TABLE outbox ADD COLUMN outcome TEXT;
ALTER TABLE outbox ADD COLUMN updated_at TEXT;
CREATE INDEX outbox_by_destination ON outbox (destination, status, next_attempt_at, seq);
