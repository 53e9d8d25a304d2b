-- Recordings: one row per recorded feed (a source of a stream, one continuous publish). The file
-- lives in the recordings folder at `path` (relative to it). Rows outlive their token (token_id
-- becomes NULL) and go with their account.

CREATE TABLE recordings (
    id          TEXT    PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_id    TEXT    REFERENCES publish_tokens (id) ON DELETE SET NULL,
    stream_name TEXT    NOT NULL,
    -- NULL for the main source.
    source_id   TEXT,
    -- 'webm' or 'mp4'.
    container   TEXT    NOT NULL,
    video_codec TEXT,
    audio_codec TEXT,
    width       INTEGER,
    height      INTEGER,
    started_at  BIGINT  NOT NULL,
    ended_at    BIGINT,
    duration_ms BIGINT  NOT NULL DEFAULT 0,
    bytes       BIGINT  NOT NULL DEFAULT 0,
    -- 'recording', 'complete', 'interrupted' or 'failed'.
    status      TEXT    NOT NULL,
    -- Why it is not 'complete' (or ended early), in words.
    reason      TEXT,
    path        TEXT    NOT NULL
);

CREATE INDEX recordings_by_account ON recordings (account_id, started_at);
CREATE INDEX recordings_by_status ON recordings (status);
