-- resource_history now holds superseded versions only: the current version of a resource is its
-- row in resources (vread and _history read both). Drop the copies of current versions.
DELETE FROM resource_history
WHERE EXISTS (
    SELECT 1 FROM resources r
    WHERE r.type = resource_history.type AND r.id = resource_history.id AND r.version = resource_history.version
);
