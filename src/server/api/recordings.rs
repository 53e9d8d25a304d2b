//! `/api/v1/recordings`: an account's recordings, their files (with `Range`), and deletion.
//! Another account's recording answers 404, exactly like one that does not exist.

use axum::{
    body::Body,
    extract::{Path, Query, Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::{
    model::Recording,
    server::{auth::CurrentAccount, error::ApiError, recordings, timestamps, AppState},
};

#[derive(Deserialize)]
pub struct ListQuery {
    stream: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Recording>>, ApiError> {
    Ok(Json(recordings::list(&state.pool, &account, query.stream.as_deref()).await?))
}

pub async fn get(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<Json<Recording>, ApiError> {
    Ok(Json(recordings::owned(&state.pool, &account, &id).await?.into()))
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
    let row = recordings::owned(&state.pool, &account, &id).await?;
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
    recordings::delete(&state.pool, &state.settings.recordings_folder, &account, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
