//! `POST /api/v1/streams/{streamName}/links`: signed viewer links for private shows (README
//! "Viewer links"), made by the stream's owner and opened by anyone it is given to.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use serde::Deserialize;

use super::ApiJson;
use crate::{
    names::{AccountId, StreamName},
    server::{
        auth::CurrentAccount,
        error::ApiError,
        timestamps,
        viewer_access::{self, LinkRefused},
        AppState,
    },
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewLink {
    /// Seconds from now.
    pub expires_in: u64,
    #[serde(default)]
    pub max_viewers: Option<u32>,
}

/// → 201 `{url, grant, expiresAt, maxViewers}`.
pub async fn create(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(stream): Path<String>,
    ApiJson(input): ApiJson<NewLink>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let stream = StreamName::parse(&stream).map_err(|e| ApiError::invalid("streamName", e.to_string()))?;
    let owner = AccountId::parse(&account.public_id)
        .map_err(|_| ApiError::Internal("an account's public id is not an account id".into()))?;
    let (grant, expires_at) = viewer_access::make_link(&state, &owner, &stream, input.expires_in, input.max_viewers)
        .await?
        .map_err(|refused| match refused {
            LinkRefused::Lifetime => ApiError::invalid("expiresIn", refused.to_string()),
            LinkRefused::NoViewers => ApiError::invalid("maxViewers", refused.to_string()),
            LinkRefused::OpenStream => ApiError::Conflict(refused.to_string()),
        })?;
    let url = format!("{}/watch/{owner}/{stream}?grant={grant}", state.settings.public_url);
    let body = serde_json::json!({
        "url": url,
        "grant": grant,
        "expiresAt": timestamps::to_rfc3339(expires_at),
        "maxViewers": input.max_viewers,
    });
    Ok((StatusCode::CREATED, Json(body)))
}
