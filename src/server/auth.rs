//! Who is asking: extractors that turn a session cookie into an account.

use axum::{extract::FromRequestParts, http::request::Parts};

use super::{error::ApiError, session, AppState};
use crate::db::accounts::AccountRow;

/// The logged-in account; a request without a live session is refused with 401.
pub struct CurrentAccount(pub AccountRow);

/// The logged-in account if there is one; never refuses.
pub struct MaybeAccount(pub Option<AccountRow>);

/// Looks up the account of the session cookie among `headers`.
pub async fn account_from_headers(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<AccountRow>, ApiError> {
    match session::from_headers(headers) {
        Some(id) => state.accounts.session_account(id).await,
        None => Ok(None),
    }
}

impl FromRequestParts<AppState> for CurrentAccount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        account_from_headers(state, &parts.headers).await?.map(Self).ok_or(ApiError::Unauthenticated)
    }
}

impl FromRequestParts<AppState> for MaybeAccount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(account_from_headers(state, &parts.headers).await?))
    }
}
