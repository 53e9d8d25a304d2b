-- The operator's view of accounts (README "Sign-up and the operator"): a disabled account keeps
-- its rows but cannot log in, publish or use its API keys until it is enabled again.
ALTER TABLE accounts ADD COLUMN disabled_at BIGINT;
ALTER TABLE accounts ADD COLUMN last_login_at BIGINT;

-- Per-account limits the operator sets; NULL follows the server's flags
-- (--max-publishers-per-account, --max-viewers-per-account, --max-egress-per-account).
ALTER TABLE accounts ADD COLUMN max_publishers INTEGER;
ALTER TABLE accounts ADD COLUMN max_viewers INTEGER;
ALTER TABLE accounts ADD COLUMN max_egress_kbps INTEGER;
