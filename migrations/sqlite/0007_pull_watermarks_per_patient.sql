-- Pull watermarks per (destination, resource type, patient): a patient Engraft comes to know
-- later is pulled from its beginning, not from where the others have got to. The watermarks
-- per type are dropped: the next pull fetches every known patient's resources once more, and
-- review items are unique per remote version, so nothing is proposed twice.
DROP TABLE sync_watermarks;
CREATE TABLE sync_watermarks (
    destination   TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    patient       TEXT NOT NULL,
    watermark     TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (destination, resource_type, patient)
);
