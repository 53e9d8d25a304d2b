//! `/api/v1/invites`: the operator's sign-up invites (README "Sign-up and the operator").

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};

use super::ApiJson;
use crate::{
    model::{InviteView, InviteWithCode, NewInvite},
    server::{auth::Operator, error::ApiError, invites, AppState},
};

/// `GET /api/v1/invites` → every invite, newest first.
pub async fn list(State(state): State<AppState>, _operator: Operator) -> Result<Json<Vec<InviteView>>, ApiError> {
    Ok(Json(invites::list(&state.pool).await?))
}

/// `POST /api/v1/invites` `{expiresIn?, note?}` → 201 `{code, url, expiresAt, invite}`.
pub async fn create(
    State(state): State<AppState>,
    Operator(operator): Operator,
    ApiJson(input): ApiJson<NewInvite>,
) -> Result<(StatusCode, Json<InviteWithCode>), ApiError> {
    let public_url = &state.settings.public_url;
    let made =
        invites::make(&state.pool, public_url, Some(operator.id), input.expires_in, input.note.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// `DELETE /api/v1/invites/{code}` (the code, or the invite's id) → 204.
pub async fn delete(
    State(state): State<AppState>,
    _operator: Operator,
    Path(code): Path<String>,
) -> Result<StatusCode, ApiError> {
    invites::withdraw(&state.pool, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}
