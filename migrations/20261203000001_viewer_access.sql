-- Who may watch and where (README "Viewer access"). On publish tokens: `embed_origins`, the sites
-- that may embed the streams the token covers (a JSON array of origins, or NULL for anywhere),
-- and `secure_viewer`, whether watching those streams needs a subscribe token.

ALTER TABLE publish_tokens ADD COLUMN embed_origins TEXT;
ALTER TABLE publish_tokens ADD COLUMN secure_viewer BOOLEAN NOT NULL DEFAULT FALSE;

-- Subscribe tokens (`fcs_…`): secrets that let their bearer watch the streams they name. Stored
-- like publish tokens: only the SHA-256 of the secret, under a UNIQUE index.
CREATE TABLE subscribe_tokens (
    id              TEXT    PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    label           TEXT    NOT NULL,
    -- JSON array of stream names: exact, "prefix*", or "*".
    streams         TEXT    NOT NULL,
    enabled         BOOLEAN NOT NULL,
    expires_at      BIGINT,
    -- JSON array of origins a web page may watch from, or NULL for any.
    allowed_origins TEXT,
    secret_hash     TEXT    NOT NULL UNIQUE,
    hint            TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    last_used_at    BIGINT
);

CREATE INDEX subscribe_tokens_by_account ON subscribe_tokens (account_id, created_at);

-- Keys the server signs with (viewer grants). Made on first use; kept so that grants survive a
-- restart.
CREATE TABLE server_keys (
    name       TEXT   PRIMARY KEY,
    key        BLOB   NOT NULL,
    created_at BIGINT NOT NULL
);
