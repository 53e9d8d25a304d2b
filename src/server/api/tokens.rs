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
    Ok(Json(tokens::rotate(&state.pool, &account, &id).await?))
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
