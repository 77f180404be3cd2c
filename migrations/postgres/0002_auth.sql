-- The built-in token endpoint's replay cache: a client assertion's jti is refused when seen
-- before within its lifetime. Shared by every instance on the same database.
CREATE TABLE auth_jti (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX auth_jti_expires ON auth_jti (expires_at);
