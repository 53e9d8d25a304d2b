//! `/api/v1/subscribe-tokens` (the same shapes as `/api/v1/tokens`) and the viewer grant
//! exchange `POST /api/v1/streams/{accountId}/{streamName}/grants`.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    Json,
};

use super::ApiJson;
use crate::{
    model::{NewSubscribeToken, SubscribeTokenPatch, SubscribeTokenView, SubscribeTokenWithSecret},
    names::{AccountId, StreamName},
    server::{auth::CurrentAccount, error::ApiError, subscribe_tokens, viewer_access, AppState},
};

/// `GET /api/v1/subscribe-tokens`
pub async fn list(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
) -> Result<Json<Vec<SubscribeTokenView>>, ApiError> {
    Ok(Json(subscribe_tokens::list(&state.pool, &account).await?))
}

/// `POST /api/v1/subscribe-tokens` → 201 `{"token": …, "secret": "fcs_…"}`
pub async fn create(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    ApiJson(input): ApiJson<NewSubscribeToken>,
) -> Result<(StatusCode, Json<SubscribeTokenWithSecret>), ApiError> {
    Ok((StatusCode::CREATED, Json(subscribe_tokens::create(&state.pool, &account, input).await?)))
}

/// `GET /api/v1/subscribe-tokens/{id}`
pub async fn get(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<Json<SubscribeTokenView>, ApiError> {
    Ok(Json(subscribe_tokens::get(&state.pool, &account, &id).await?))
}

/// `PATCH /api/v1/subscribe-tokens/{id}`
pub async fn update(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<SubscribeTokenPatch>,
) -> Result<Json<SubscribeTokenView>, ApiError> {
    Ok(Json(subscribe_tokens::update(&state.pool, &account, &id, patch).await?))
}

/// `DELETE /api/v1/subscribe-tokens/{id}` → 204
pub async fn delete(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    subscribe_tokens::delete(&state.pool, &account, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/subscribe-tokens/{id}/rotate` → 200 `{"token": …, "secret": "fcs_…"}`
pub async fn rotate(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<Json<SubscribeTokenWithSecret>, ApiError> {
    Ok(Json(subscribe_tokens::rotate(&state.pool, &account, &id).await?))
}

/// `POST /api/v1/streams/{accountId}/{streamName}/grants` with `Authorization: Bearer fcs_…` (or
/// a viewer grant, to renew it) → 201 `{grant: "fcv_…", expiresIn}`: what `/watch?token=`
/// trades the secret for.
pub async fn exchange(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((account, stream)): Path<(String, String)>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let not_found = || ApiError::NotFound(format!("there is no stream {account}/{stream}"));
    let (Ok(account_id), Ok(stream_name)) = (AccountId::parse(&account), StreamName::parse(&stream)) else {
        return Err(not_found());
    };
    let (grant, lasts) = viewer_access::exchange(&state, &headers, &account_id, &stream_name).await??;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "grant": grant, "expiresIn": lasts.as_secs() }))))
}
