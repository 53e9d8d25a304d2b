-- Publish tokens (they authorise broadcasting) and account API keys (they authorise automation).
-- Secrets are never stored: only their SHA-256, under a UNIQUE index, so presenting a secret is
-- one indexed lookup. Lists (streams, origins) are JSON arrays in TEXT columns.

CREATE TABLE publish_tokens (
    id              TEXT    PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    label           TEXT    NOT NULL,
    -- JSON array of stream names: exact, "prefix*", or "*".
    streams         TEXT    NOT NULL,
    enabled         BOOLEAN NOT NULL,
    record          BOOLEAN NOT NULL,
    multisource     BOOLEAN NOT NULL,
    expires_at      BIGINT,
    -- JSON array of origins, or NULL for any.
    allowed_origins TEXT,
    secret_hash     TEXT    NOT NULL UNIQUE,
    hint            TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    last_used_at    BIGINT
);

CREATE INDEX publish_tokens_by_account ON publish_tokens (account_id, created_at);

CREATE TABLE api_keys (
    id           TEXT    PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    label        TEXT    NOT NULL,
    secret_hash  TEXT    NOT NULL UNIQUE,
    hint         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT
);

CREATE INDEX api_keys_by_account ON api_keys (account_id, created_at);
