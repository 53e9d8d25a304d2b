-- Accounts and their server-side sessions.
-- Timestamps are unix seconds in BIGINT columns so the schema ports to PostgreSQL unchanged.

CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY,
    -- Short public id used in stream ids ({accountId}/{streamName}) and viewer links.
    public_id     TEXT    NOT NULL UNIQUE,
    -- Stored lower-cased: emails are unique case-insensitively.
    email         TEXT    NOT NULL UNIQUE,
    -- argon2id PHC string.
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE sessions (
    -- SHA-256 (hex) of the random session id held in the cookie; the id itself is never stored.
    id_hash     TEXT    PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);

CREATE INDEX sessions_by_account ON sessions (account_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
