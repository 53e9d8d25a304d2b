-- Who runs the instance, and who may join it (README "Sign-up and the operator").

-- Operators see /admin and make invites. The first account of an empty data folder becomes one;
-- on a folder from before this migration the oldest account does, so every instance has one.
ALTER TABLE accounts ADD COLUMN operator INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET operator = 1 WHERE id = (SELECT MIN(id) FROM accounts);

-- One-time sign-up invites. Only the SHA-256 (hex) of the code is stored, like every other
-- secret; `id` names the invite in lists and URLs without revealing it.
CREATE TABLE invites (
    id          TEXT    PRIMARY KEY,
    code_hash   TEXT    NOT NULL UNIQUE,
    hint        TEXT    NOT NULL,
    note        TEXT    NOT NULL DEFAULT '',
    -- NULL when made from the command line (or its maker's account is gone).
    created_by  INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT,
    used_by     INTEGER REFERENCES accounts (id) ON DELETE SET NULL
);
