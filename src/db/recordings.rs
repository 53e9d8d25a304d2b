//! The `recordings` table: one row per recorded feed, kept by [`crate::server::recordings`] from
//! what the recording thread reports.

use sqlx::{FromRow, SqlitePool};

#[derive(Clone, Debug, FromRow)]
pub struct RecordingRow {
    pub id: String,
    pub account_id: i64,
    pub token_id: Option<String>,
    pub stream_name: String,
    pub source_id: Option<String>,
    pub container: String,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: i64,
    pub bytes: i64,
    pub status: String,
    pub reason: Option<String>,
    pub path: String,
}

/// A recording that begins: its account is found by public id; the token may be gone already.
pub struct NewRecording<'a> {
    pub id: &'a str,
    pub account_public_id: &'a str,
    pub token_id: &'a str,
    pub stream_name: &'a str,
    pub source_id: Option<&'a str>,
    pub container: &'a str,
    pub path: &'a str,
    pub started_at: i64,
}

pub async fn insert(pool: &SqlitePool, new: &NewRecording<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO recordings (id, account_id, token_id, stream_name, source_id, container, started_at, status, path)
         SELECT $1, a.id, (SELECT id FROM publish_tokens WHERE id = $3), $4, $5, $6, $7, 'recording', $8
         FROM accounts a WHERE a.public_id = $2",
    )
    .bind(new.id)
    .bind(new.account_public_id)
    .bind(new.token_id)
    .bind(new.stream_name)
    .bind(new.source_id)
    .bind(new.container)
    .bind(new.started_at)
    .bind(new.path)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn progress(pool: &SqlitePool, id: &str, bytes: i64, duration_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE recordings SET bytes = $2, duration_ms = $3 WHERE id = $1 AND status = 'recording'")
        .bind(id)
        .bind(bytes)
        .bind(duration_ms)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends a recording with its final figures and status (`complete` or `failed`).
pub async fn end(
    pool: &SqlitePool,
    id: &str,
    status: &str,
    bytes: i64,
    duration_ms: i64,
    reason: Option<&str>,
    ended_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE recordings SET status = $2, bytes = $3, duration_ms = $4, reason = $5, ended_at = $6 WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(bytes)
    .bind(duration_ms)
    .bind(reason)
    .bind(ended_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// What the file is, once it exists: its container and name, the codecs and the size.
pub struct Description<'a> {
    pub container: &'a str,
    pub path: &'a str,
    pub video_codec: Option<&'a str>,
    pub audio_codec: Option<&'a str>,
    pub size: Option<(i64, i64)>,
}

pub async fn describe(pool: &SqlitePool, id: &str, what: &Description<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE recordings SET container = $2, path = $3, video_codec = $4, audio_codec = $5, width = $6, height = $7
         WHERE id = $1",
    )
    .bind(id)
    .bind(what.container)
    .bind(what.path)
    .bind(what.video_codec)
    .bind(what.audio_codec)
    .bind(what.size.map(|s| s.0))
    .bind(what.size.map(|s| s.1))
    .execute(pool)
    .await?;
    Ok(())
}

/// Rows still `recording` when the server starts: their writer died with the last process.
pub async fn left_recording(pool: &SqlitePool) -> Result<Vec<RecordingRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM recordings WHERE status = 'recording'").fetch_all(pool).await
}

pub async fn get(pool: &SqlitePool, id: &str) -> Result<Option<RecordingRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM recordings WHERE id = $1").bind(id).fetch_optional(pool).await
}

/// An account's recordings, newest first, optionally of one stream.
pub async fn list(pool: &SqlitePool, account_id: i64, stream: Option<&str>) -> Result<Vec<RecordingRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM recordings WHERE account_id = $1 AND ($2 IS NULL OR stream_name = $2)
         ORDER BY started_at DESC, id DESC",
    )
    .bind(account_id)
    .bind(stream)
    .fetch_all(pool)
    .await
}

pub async fn delete(pool: &SqlitePool, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM recordings WHERE id = $1").bind(id).execute(pool).await?;
    Ok(())
}

/// How many recordings there are, and the bytes they take.
pub async fn totals(pool: &SqlitePool) -> Result<(i64, u64), sqlx::Error> {
    let (count, bytes): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM recordings").fetch_one(pool).await?;
    Ok((count, bytes.max(0) as u64))
}
