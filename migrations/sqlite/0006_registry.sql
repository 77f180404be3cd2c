-- Registry submission (CIBMTR Direct FHIR style).
-- Each patient's CRID per registry destination: requested once, never again once known.
CREATE TABLE registry_crids (
    destination TEXT NOT NULL,
    patient     TEXT NOT NULL,
    crid        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (destination, patient)
);

-- The report of the latest submission attempt of each record to each registry: per resource
-- what was sent and what the registry answered (JSON).
CREATE TABLE registry_reports (
    destination    TEXT NOT NULL,
    record         TEXT NOT NULL,
    record_version INTEGER NOT NULL,
    report         TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (destination, record)
);

-- Submissions asked for through the CLI or the API: which records, and the report of each.
CREATE TABLE registry_submissions (
    id          TEXT PRIMARY KEY,
    destination TEXT NOT NULL,
    dry_run     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    records     TEXT NOT NULL,
    report      TEXT,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    finished_at TEXT
);
