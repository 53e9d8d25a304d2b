-- The operator's view of accounts (README "Sign-up and the operator"): a disabled account keeps
-- its rows but cannot log in, publish or use its API keys until it is enabled again.
ALTER TABLE accounts ADD COLUMN disabled_at BIGINT;
ALTER TABLE accounts ADD COLUMN last_login_at BIGINT;

-- Per-account limits the operator sets; NULL follows the server's flags
-- (--max-publishers-per-account, --max-viewers-per-account, --max-egress-per-account).
ALTER TABLE accounts ADD COLUMN max_publishers INTEGER;
ALTER TABLE accounts ADD COLUMN max_viewers INTEGER;
ALTER TABLE accounts ADD COLUMN max_egress_kbps INTEGER;

-- Each account's traffic by hour, estimated from the rates sampled every five seconds (README
-- "Sign-up and the operator": the last 24 h on the Admin page). Rows older than a day go.
CREATE TABLE account_traffic (
    account_id       INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Unix seconds / 3600.
    hour             BIGINT  NOT NULL,
    published_bytes  BIGINT  NOT NULL DEFAULT 0,
    viewed_bytes     BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, hour)
);
