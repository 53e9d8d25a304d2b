//! `/api/v1/recordings`: an account's recordings, their files (with `Range`), and deletion.
//! Another account's recording answers 404, exactly like one that does not exist.

use axum::{
    body::Body,
    extract::{Path, Query, Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::{
    db::{self, accounts::AccountRow, recordings::RecordingRow},
    server::{auth::CurrentAccount, error::ApiError, timestamps, AppState},
};

/// A recording as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingView {
    id: String,
    stream_name: String,
    source_id: Option<String>,
    token_id: Option<String>,
    container: String,
    video_codec: Option<String>,
    audio_codec: Option<String>,
    width: Option<i64>,
    height: Option<i64>,
    started_at: String,
    ended_at: Option<String>,
    duration_ms: i64,
    bytes: i64,
    status: String,
    reason: Option<String>,
    file_url: String,
}

impl From<RecordingRow> for RecordingView {
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

#[derive(Deserialize)]
pub struct ListQuery {
    stream: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<RecordingView>>, ApiError> {
    let rows = db::recordings::list(&state.pool, account.id, query.stream.as_deref()).await?;
    Ok(Json(rows.into_iter().map(RecordingView::from).collect()))
}

pub async fn get(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<Json<RecordingView>, ApiError> {
    Ok(Json(owned(&state, &account, &id).await?.into()))
}

#[derive(Deserialize)]
pub struct FileQuery {
    download: Option<String>,
}

/// The file, with `Range`, `Accept-Ranges`, `Last-Modified` and its content type;
/// `?download=1` adds `Content-Disposition: attachment` with a readable name.
pub async fn file(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
    Query(query): Query<FileQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let row = owned(&state, &account, &id).await?;
    let path = state.settings.recordings_folder.join(&row.path);
    let content_type = if row.container == "mp4" { "video/mp4" } else { "video/webm" };
    let served = ServeFile::new_with_mime(&path, &content_type.parse().expect("a valid MIME type"))
        .oneshot(request)
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    if served.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::NotFound("the recording's file is gone".into()));
    }
    let mut response = served.map(Body::new).into_response();
    let headers = response.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_str(&format!("\"{}-{}\"", row.id, row.bytes)).expect("ASCII"));
    if query.download.as_deref() == Some("1") {
        let source = row.source_id.as_deref().map(|s| format!("-{s}")).unwrap_or_default();
        let day = timestamps::to_rfc3339(row.started_at).replace([':', 'T'], "-").trim_end_matches('Z').to_owned();
        let name = format!("{}{source}-{day}.{}", row.stream_name, row.container);
        if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    Ok(response)
}

pub async fn delete(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let row = owned(&state, &account, &id).await?;
    if row.status == "recording" {
        return Err(ApiError::Conflict("this recording is still running; stop the broadcast first".into()));
    }
    let path = state.settings.recordings_folder.join(&row.path);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(ApiError::Internal(format!("cannot delete {}: {err}", path.display()))),
    }
    db::recordings::delete(&state.pool, &row.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account's recording with this id, or 404.
async fn owned(state: &AppState, account: &AccountRow, id: &str) -> Result<RecordingRow, ApiError> {
    let not_found = || ApiError::NotFound("no such recording".into());
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    db::recordings::get(&state.pool, id).await?.filter(|r| r.account_id == account.id).ok_or_else(not_found)
}
