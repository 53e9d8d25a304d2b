//! Recordings (README "Recording"): the `recordings` table kept from what the recording thread
//! reports, off the media path (the thread never waits for SQLite, this task does), and the
//! account's view of them that the API and the `/recordings` page share.

use std::path::Path;

use sqlx::SqlitePool;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::{
    db::{
        self,
        accounts::AccountRow,
        recordings::{Description, NewRecording, RecordingRow},
    },
    model::Recording,
    recorder::{key, Event},
    server::{
        error::ApiError,
        timestamps,
        webhooks::{self, Webhooks},
    },
    sfu::SfuHandle,
};

impl From<RecordingRow> for Recording {
    fn from(row: RecordingRow) -> Self {
        Self {
            file_url: format!("/api/v1/recordings/{}/file", row.id),
            id: row.id,
            stream_name: row.stream_name,
            source_id: row.source_id,
            token_id: row.token_id,
            container: row.container,
            video_codec: row.video_codec,
            audio_codec: row.audio_codec,
            width: row.width,
            height: row.height,
            started_at: timestamps::to_rfc3339(row.started_at),
            ended_at: row.ended_at.map(timestamps::to_rfc3339),
            duration_ms: row.duration_ms,
            bytes: row.bytes,
            status: row.status,
            reason: row.reason,
        }
    }
}

/// The account's recordings, newest first; only one stream's with `stream`.
pub async fn list(pool: &SqlitePool, account: &AccountRow, stream: Option<&str>) -> Result<Vec<Recording>, ApiError> {
    let rows = db::recordings::list(pool, account.id, stream).await?;
    Ok(rows.into_iter().map(Recording::from).collect())
}

/// The account's recording with this id, or 404 (another account's too: it is not theirs to
/// know about).
pub async fn owned(pool: &SqlitePool, account: &AccountRow, id: &str) -> Result<RecordingRow, ApiError> {
    let not_found = || ApiError::NotFound("no such recording".into());
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    db::recordings::get(pool, id).await?.filter(|r| r.account_id == account.id).ok_or_else(not_found)
}

/// Deletes a finished recording and its file; a running one is a conflict.
pub async fn delete(pool: &SqlitePool, folder: &Path, account: &AccountRow, id: &str) -> Result<(), ApiError> {
    let row = owned(pool, account, id).await?;
    if row.status == "recording" {
        return Err(ApiError::Conflict("this recording is still running; stop the broadcast first".into()));
    }
    let path = folder.join(&row.path);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(ApiError::Internal(format!("cannot delete {}: {err}", path.display()))),
    }
    db::recordings::delete(pool, &row.id).await?;
    Ok(())
}

/// Follows the recorder's events until it stops.
pub async fn keep(pool: SqlitePool, mut events: UnboundedReceiver<Event>, sfu: SfuHandle, webhooks: Webhooks) {
    while let Some(event) = events.recv().await {
        if let Err(err) = apply(&pool, &sfu, &webhooks, event).await {
            tracing::error!(%err, "recordings table: database error");
        }
    }
}

async fn apply(pool: &SqlitePool, sfu: &SfuHandle, webhooks: &Webhooks, event: Event) -> Result<(), sqlx::Error> {
    match event {
        Event::Continued { from, start } => {
            let to = start.id;
            insert(pool, &start).await?;
            sfu.recording_continued(from, to).await;
            tracing::info!(recording = %key(from), continued = %key(to), "the feed changed codec: a new recording");
        }
        Event::Started(start) => {
            insert(pool, &start).await?;
            tracing::info!(recording = %key(start.id), stream = %start.stream_name, "recording started");
        }
        Event::Described { id, container, file_name, video, audio } => {
            let what = Description {
                container,
                path: &file_name,
                video_codec: video.map(|v| v.0),
                audio_codec: audio,
                size: video.map(|(_, w, h)| (i64::from(w), i64::from(h))),
            };
            db::recordings::describe(pool, &key(id), &what).await?;
        }
        Event::KeyframeWanted { id } => sfu.recording_keyframe(id).await,
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
            if let Some(done) = db::recordings::get(pool, &row).await? {
                let account = done.account_id;
                let data = serde_json::to_value(Recording::from(done)).unwrap_or_default();
                let event = webhooks::Event::new(webhooks::EventType::RecordingReady, crate::db::now_unix_ms(), data);
                webhooks.emit(webhooks::Owner::Id(account), &event).await;
            }
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

/// A recording's row, as it begins.
async fn insert(pool: &SqlitePool, start: &crate::recorder::RecordingStart) -> Result<(), sqlx::Error> {
    let id = key(start.id);
    // Until the first video packet chooses the container, the row names the WebM file.
    let path = format!("{}.webm", start.file_stem);
    let new = NewRecording {
        id: &id,
        account_public_id: &start.account,
        token_id: &start.token_id,
        stream_name: &start.stream_name,
        source_id: start.source_id.as_deref(),
        container: "webm",
        path: &path,
        started_at: db::now_unix(),
    };
    if !db::recordings::insert(pool, &new).await? {
        tracing::warn!(account = %start.account, "a recording of an account that no longer exists");
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
