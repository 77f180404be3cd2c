-- Search tokens carry their record, and are found by (record, type, id): a record's tokens then
-- sit together in the index, where (type, id) scattered them (resource ids are random UUIDs), so
-- storing a record dirtied one index page per resource.
ALTER TABLE resource_tokens ADD COLUMN record TEXT NOT NULL DEFAULT '';
UPDATE resource_tokens SET record = COALESCE(
    (SELECT r.record FROM resources r WHERE r.type = resource_tokens.type AND r.id = resource_tokens.id),
    ''
);
DROP INDEX resource_tokens_by_owner;
CREATE INDEX resource_tokens_by_owner ON resource_tokens (record, type, id);
