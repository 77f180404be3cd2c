-- Accepting a review item applies it to the registry record: what came of the decision
-- ('applied', 'already-in-record', or 'manual' when a person entered it by hand), the
-- record version it produced and the change as JSON Patch operations on the record.
ALTER TABLE sync_reviews ADD COLUMN outcome TEXT;
ALTER TABLE sync_reviews ADD COLUMN record_version BIGINT;
ALTER TABLE sync_reviews ADD COLUMN patch TEXT;
