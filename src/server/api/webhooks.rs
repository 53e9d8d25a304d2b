//! `/api/v1/webhooks`: an account's webhook endpoints, their delivery logs, resends and test
//! events (README "Webhooks").

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};

use super::ApiJson;
use crate::{
    model::{
        NewWebhookEndpoint, WebhookDeliveryView, WebhookEndpointPatch, WebhookEndpointView, WebhookEndpointWithSecret,
    },
    server::{auth::CurrentAccount, error::ApiError, webhooks::endpoints, AppState},
};

/// `GET /api/v1/webhooks`
pub async fn list(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
) -> Result<Json<Vec<WebhookEndpointView>>, ApiError> {
    Ok(Json(endpoints::list(&state.pool, &account).await?))
}

/// `POST /api/v1/webhooks` → 201 `{"endpoint": …, "secret": "fcw_…"}`
pub async fn create(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    ApiJson(input): ApiJson<NewWebhookEndpoint>,
) -> Result<(StatusCode, Json<WebhookEndpointWithSecret>), ApiError> {
    let allow_private = state.settings.webhooks_private_networks;
    Ok((StatusCode::CREATED, Json(endpoints::create(&state.pool, &account, input, allow_private).await?)))
}

/// `GET /api/v1/webhooks/{id}`
pub async fn get(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    Ok(Json(endpoints::get(&state.pool, &account, &id).await?))
}

/// `PATCH /api/v1/webhooks/{id}`
pub async fn update(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<WebhookEndpointPatch>,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    let allow_private = state.settings.webhooks_private_networks;
    Ok(Json(endpoints::update(&state.pool, &account, &id, patch, allow_private).await?))
}

/// `DELETE /api/v1/webhooks/{id}` → 204
pub async fn delete(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    endpoints::delete(&state.pool, &account, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhooks/{id}/rotate` → 200 `{"endpoint": …, "secret": "fcw_…"}`
pub async fn rotate(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<Json<WebhookEndpointWithSecret>, ApiError> {
    Ok(Json(endpoints::rotate(&state.pool, &account, &id).await?))
}

/// `GET /api/v1/webhooks/{id}/deliveries` → the newest 100, newest first
pub async fn deliveries(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<Json<Vec<WebhookDeliveryView>>, ApiError> {
    Ok(Json(endpoints::deliveries(&state.pool, &account, &id).await?))
}

/// `POST /api/v1/webhooks/{id}/deliveries/{deliveryId}/resend` → 202 the new delivery
pub async fn resend(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<(StatusCode, Json<WebhookDeliveryView>), ApiError> {
    let queued = endpoints::resend(&state.pool, &state.webhooks, &account, &id, &delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

/// `POST /api/v1/webhooks/{id}/test` → 202 the queued `webhook.test` delivery
pub async fn test(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<WebhookDeliveryView>), ApiError> {
    let queued = endpoints::send_test(&state.pool, &state.webhooks, &account, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}
