-- Engraft store, PostgreSQL. Timestamps are ISO 8601 UTC strings (sortable); JSON is TEXT.
CREATE TABLE records (
    id          TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    registry    TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    deleted     BIGINT NOT NULL DEFAULT 0,
    record      TEXT NOT NULL,
    bundle      TEXT NOT NULL,
    report      TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (registry, record_id)
);
CREATE TABLE record_history (
    id          TEXT NOT NULL,
    version     BIGINT NOT NULL,
    deleted     BIGINT NOT NULL,
    record      TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE TABLE resources (
    type          TEXT NOT NULL,
    id            TEXT NOT NULL,
    version       BIGINT NOT NULL,
    record        TEXT NOT NULL,
    patient       TEXT NOT NULL,
    date          TEXT,
    last_updated  TEXT NOT NULL,
    deleted       BIGINT NOT NULL DEFAULT 0,
    body          TEXT NOT NULL,
    PRIMARY KEY (type, id)
);
CREATE INDEX resources_by_patient ON resources (type, patient, last_updated);
CREATE INDEX resources_by_record ON resources (record);
CREATE INDEX resources_by_updated ON resources (type, last_updated);
CREATE TABLE resource_history (
    type          TEXT NOT NULL,
    id            TEXT NOT NULL,
    version       BIGINT NOT NULL,
    last_updated  TEXT NOT NULL,
    deleted       BIGINT NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (type, id, version)
);
CREATE TABLE resource_tokens (
    type    TEXT NOT NULL,
    id      TEXT NOT NULL,
    param   TEXT NOT NULL,
    system  TEXT NOT NULL,
    value   TEXT NOT NULL
);
CREATE INDEX resource_tokens_by_value ON resource_tokens (type, param, value, system);
CREATE INDEX resource_tokens_by_owner ON resource_tokens (type, id);
CREATE TABLE outbox (
    seq             BIGSERIAL PRIMARY KEY,
    record          TEXT NOT NULL,
    record_version  BIGINT NOT NULL,
    action          TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    leased_until    TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX outbox_by_status ON outbox (status, seq);
CREATE TABLE audit (
    seq        BIGSERIAL PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    version    BIGINT
);
