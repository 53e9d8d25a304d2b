-- Webhooks (README "Webhooks"): endpoints an account's own systems listen on, and the queue of
-- deliveries to them. A delivery stays in the table after it is sent (the dashboard's log); the
-- sender keeps the newest per endpoint and forgets the rest.
CREATE TABLE webhook_endpoints (
    id         TEXT    PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url        TEXT    NOT NULL,
    -- JSON array of event types.
    events     TEXT    NOT NULL,
    enabled    BOOLEAN NOT NULL,
    -- The signing secret as it is: the server signs with it, so it cannot be kept as a hash.
    secret     TEXT    NOT NULL,
    hint       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE INDEX webhook_endpoints_by_account ON webhook_endpoints (account_id, created_at);

-- Times in Unix milliseconds (retries are seconds apart).
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id     TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    -- The JSON body, exactly as it is signed and sent.
    payload         TEXT    NOT NULL,
    -- pending, delivered or failed (gave up after 24 h).
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT  NOT NULL,
    -- When to try next (pending only).
    next_attempt_at BIGINT,
    last_attempt_at BIGINT,
    last_status     INTEGER,
    last_error      TEXT,
    last_latency_ms INTEGER
);

CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (status, endpoint_id, id) WHERE status = 'pending';
