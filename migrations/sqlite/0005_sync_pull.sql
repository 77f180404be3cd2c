-- EHR sync, second part.
-- Ledger rows say whether Engraft created the remote resource ('sent') or found it there
-- ('matched': the EHR's own Patient, found by MRN; never updated or deleted by Engraft).
ALTER TABLE sync_ledger ADD COLUMN origin TEXT NOT NULL DEFAULT 'sent';

-- Pull: per (destination, resource type) the _lastUpdated watermark of the last pull.
CREATE TABLE sync_watermarks (
    destination   TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    watermark     TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (destination, resource_type)
);

-- Pull: EHR resources proposed as registry updates, waiting for a person to accept or reject
-- them. One row per remote resource version; the resource is kept for the reviewer.
CREATE TABLE sync_reviews (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    destination    TEXT NOT NULL,
    record         TEXT NOT NULL,
    remote         TEXT NOT NULL,
    remote_version TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    code           TEXT NOT NULL,
    display        TEXT,
    resource       TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'proposed',
    created_at     TEXT NOT NULL,
    decided_at     TEXT,
    decided_by     TEXT,
    UNIQUE (destination, remote, remote_version)
);
CREATE INDEX sync_reviews_by_status ON sync_reviews (status, id);
