//! Keeps the `recordings` table from what the recording thread reports (README "Recording"),
//! off the media path: the thread never waits for SQLite, this task does.

use std::path::Path;

use sqlx::SqlitePool;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::{
    db::{self, recordings::NewRecording},
    recorder::{key, Event},
    sfu::SfuHandle,
};

/// Follows the recorder's events until it stops.
pub async fn keep(pool: SqlitePool, mut events: UnboundedReceiver<Event>, sfu: SfuHandle) {
    while let Some(event) = events.recv().await {
        if let Err(err) = apply(&pool, &sfu, event).await {
            tracing::error!(%err, "recordings table: database error");
        }
    }
}

async fn apply(pool: &SqlitePool, sfu: &SfuHandle, event: Event) -> Result<(), sqlx::Error> {
    match event {
        Event::Started(start) => {
            let id = key(start.id);
            let new = NewRecording {
                id: &id,
                account_public_id: &start.account,
                token_id: &start.token_id,
                stream_name: &start.stream_name,
                source_id: start.source_id.as_deref(),
                container: "webm",
                path: &start.file_name,
                started_at: db::now_unix(),
            };
            if !db::recordings::insert(pool, &new).await? {
                tracing::warn!(account = %start.account, "a recording of an account that no longer exists");
            }
            tracing::info!(recording = %id, stream = %start.stream_name, "recording started");
        }
        Event::Described { id, video, audio } => {
            let size = video.map(|(_, w, h)| (i64::from(w), i64::from(h)));
            db::recordings::describe(pool, &key(id), video.map(|v| v.0), audio, size).await?;
        }
        Event::Progress { id, bytes, duration_ms } => {
            db::recordings::progress(pool, &key(id), bytes as i64, duration_ms as i64).await?;
        }
        Event::Ended { id, bytes, duration_ms, reason } => {
            let row = key(id);
            db::recordings::end(
                pool,
                &row,
                "complete",
                bytes as i64,
                duration_ms as i64,
                reason.as_deref(),
                db::now_unix(),
            )
            .await?;
            if reason.is_some() {
                sfu.recording_ended(id).await;
            }
            tracing::info!(recording = %row, bytes, duration_ms, reason = reason.as_deref().unwrap_or(""), "recording complete");
        }
        Event::Failed { id, reason } => {
            let row = key(id);
            db::recordings::end(pool, &row, "failed", 0, 0, Some(&reason), db::now_unix()).await?;
            sfu.recording_ended(id).await;
            tracing::warn!(recording = %row, %reason, "recording failed");
        }
    }
    Ok(())
}

/// At start-up: recordings the last process left `recording` are `interrupted`. Their files
/// play up to the last cluster written (at most a second before the stop).
pub async fn interrupt_leftovers(pool: &SqlitePool, folder: &Path) -> Result<usize, sqlx::Error> {
    let rows = db::recordings::left_recording(pool).await?;
    for row in &rows {
        let bytes = std::fs::metadata(folder.join(&row.path)).map(|m| m.len() as i64).unwrap_or(row.bytes);
        db::recordings::end(
            pool,
            &row.id,
            "interrupted",
            bytes,
            row.duration_ms,
            Some("the server stopped while recording; the file plays up to that moment"),
            db::now_unix(),
        )
        .await?;
    }
    Ok(rows.len())
}
