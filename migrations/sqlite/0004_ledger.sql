-- EHR sync ledger: per (destination, local resource) what the destination holds, its remote
-- id and version, and a hash of what was sent (unchanged resources are not sent again).
CREATE TABLE sync_ledger (
    destination TEXT NOT NULL,
    record TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    remote TEXT NOT NULL,
    remote_version TEXT,
    hash TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (destination, resource_type, resource_id)
);
CREATE INDEX sync_ledger_by_record ON sync_ledger (destination, record);
