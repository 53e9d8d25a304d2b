//! `/api/v1/tokens` and `/api/v1/api-keys`.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use serde::Deserialize;

use super::ApiJson;
use crate::{
    model::{ApiKeyView, ApiKeyWithSecret, NewToken, TokenPatch, TokenView, TokenWithSecret},
    names::{SourceId, StreamName},
    server::{auth::CurrentAccount, error::ApiError, tokens, AppState},
};

/// `GET /api/v1/tokens`
pub async fn list(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(tokens::list(&state.pool, &account).await?))
}

/// `POST /api/v1/tokens` → 201 `{"token": …, "secret": "fcp_…"}`
pub async fn create(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    ApiJson(input): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<TokenWithSecret>), ApiError> {
    Ok((StatusCode::CREATED, Json(tokens::create(&state.pool, &account, input).await?)))
}

/// `GET /api/v1/tokens/{id}`
pub async fn get(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(tokens::get(&state.pool, &account, &id).await?))
}

/// `PATCH /api/v1/tokens/{id}`
pub async fn update(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<TokenPatch>,
) -> Result<Json<TokenView>, ApiError> {
    Ok(Json(tokens::update(&state.pool, &account, &id, patch).await?))
}

/// `DELETE /api/v1/tokens/{id}` → 204
pub async fn delete(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    tokens::delete(&state.pool, &state.sfu, &account, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/tokens/{id}/rotate` → 200 `{"token": …, "secret": "fcp_…"}`
pub async fn rotate(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<Json<TokenWithSecret>, ApiError> {
    let rotated = tokens::rotate(&state.pool, &account, &id).await?;
    state.grants.revoke_token(&id);
    Ok(Json(rotated))
}

/// Body of `POST /api/v1/api-keys`.
#[derive(Deserialize)]
pub struct NewApiKey {
    label: String,
}

/// `GET /api/v1/api-keys`
pub async fn list_api_keys(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    Ok(Json(tokens::list_api_keys(&state.pool, &account).await?))
}

/// `POST /api/v1/api-keys` → 201 `{"apiKey": …, "secret": "fck_…"}`
pub async fn create_api_key(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    ApiJson(input): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<ApiKeyWithSecret>), ApiError> {
    Ok((StatusCode::CREATED, Json(tokens::create_api_key(&state.pool, &account, &input.label).await?)))
}

/// `DELETE /api/v1/api-keys/{id}` → 204
pub async fn delete_api_key(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    tokens::delete_api_key(&state.pool, &account, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantRequest {
    stream_name: String,
    #[serde(default)]
    source_id: Option<String>,
}

/// `POST /api/v1/tokens/{id}/grants` `{streamName, sourceId?}` → 201 `{grant, whipUrl, expiresIn}`:
/// a short-lived publish grant for the online broadcaster (the token's rules still apply at WHIP).
pub async fn grant(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    client: crate::server::client::Client,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<GrantRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let token = tokens::get(&state.pool, &account, &id).await?;
    let stream_name = StreamName::parse(&input.stream_name).map_err(|m| ApiError::invalid("streamName", m))?;
    let source_id = match input.source_id.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(SourceId::parse(raw).map_err(|m| ApiError::invalid("sourceId", m))?),
    };
    // A grant minted by a session dies with it (logout); one minted with an API key expires.
    let session =
        crate::server::session::from_headers(&headers, client.secure_cookies).map(crate::server::session::hash_id);
    let grant = state.grants.mint(&token.id, &stream_name, source_id.as_ref(), session)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "grant": grant,
            "whipUrl": format!("/whip/{stream_name}"),
            "expiresIn": crate::server::grants::GRANT_TTL.as_secs(),
        })),
    ))
}
