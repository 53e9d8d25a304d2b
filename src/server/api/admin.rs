//! `/api/v1/admin/…`: the operator's doors (README "Sign-up and the operator"); 404 for everyone
//! else, like a route that does not exist.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};

use super::ApiJson;
use crate::{
    model::{AdminAccountPatch, AdminAccountView, InstanceView},
    server::{admin, auth::Operator, error::ApiError, AppState},
};

/// `GET /api/v1/admin/accounts`
pub async fn accounts(
    State(state): State<AppState>,
    _operator: Operator,
) -> Result<Json<Vec<AdminAccountView>>, ApiError> {
    Ok(Json(admin::list(&state).await?))
}

/// `GET /api/v1/admin/instance`: what is live, the recordings disk, the limits, the last hour.
pub async fn instance(State(state): State<AppState>, _operator: Operator) -> Result<Json<InstanceView>, ApiError> {
    Ok(Json(admin::instance(&state).await?))
}

/// `PATCH /api/v1/admin/accounts/{accountId}` `{disabled?, operator?}` → 200 the account.
pub async fn update(
    State(state): State<AppState>,
    _operator: Operator,
    Path(account_id): Path<String>,
    ApiJson(patch): ApiJson<AdminAccountPatch>,
) -> Result<Json<AdminAccountView>, ApiError> {
    admin::update(&state, &account_id, patch).await?;
    let list = admin::list(&state).await?;
    let account = list.into_iter().find(|a| a.account_id == account_id);
    account.map(Json).ok_or_else(|| ApiError::NotFound("no account with this id".into()))
}

/// `DELETE /api/v1/admin/accounts/{accountId}` → 204.
pub async fn delete(
    State(state): State<AppState>,
    _operator: Operator,
    Path(account_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    admin::delete(&state, &account_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
