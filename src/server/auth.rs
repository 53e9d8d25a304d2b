//! Who is asking: extractors that turn a session cookie or an API key into an account.

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};

use super::{client::Client, error::ApiError, secrets, session, AppState};
use crate::db::{self, accounts::AccountRow};

/// The logged-in account; a request without a live session is refused with 401.
pub struct CurrentAccount(pub AccountRow);

/// The logged-in account when it is the instance's operator. Anyone else, logged in or not, gets
/// the 404 of a route that does not exist: the operator's doors are not advertised.
pub struct Operator(pub AccountRow);

/// The logged-in account if there is one; never refuses.
pub struct MaybeAccount(pub Option<AccountRow>);

/// The account a page request was found to have by the page guard ([`super::pages::guard`]),
/// kept in the request's extensions so the server functions rendering the page do not look the
/// session up again (`cargo bench --bench web`: each lookup is a round trip to an SQLite thread).
#[derive(Clone)]
pub struct ResolvedAccount(pub Option<AccountRow>);

/// [`account_from_headers`], reusing what the page guard already resolved for this request.
pub async fn account_from_parts(state: &AppState, parts: &Parts) -> Result<Option<AccountRow>, ApiError> {
    match parts.extensions.get::<ResolvedAccount>() {
        Some(ResolvedAccount(account)) => Ok(account.clone()),
        None => account_from_headers(state, &parts.headers, Client::of(parts)).await,
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme is case-insensitive, RFC 9110
/// §11.1), for API keys here and publish tokens at the WHIP door.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Looks up the account of the request: an `Authorization: Bearer` API key when one is sent
/// (a wrong key is an error, never "anonymous"), else the session cookie.
pub async fn account_from_headers(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    client: Client,
) -> Result<Option<AccountRow>, ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        let key = bearer_token(headers)
            .filter(|k| k.starts_with(secrets::API_KEY_PREFIX))
            .ok_or(ApiError::Unauthenticated)?;
        let account = db::api_keys::account_by_secret_hash(&state.pool, &secrets::hash(key), db::now_unix()).await?;
        return match account {
            Some(account) if account.disabled => Err(ApiError::AccountDisabled),
            Some(account) => Ok(Some(account)),
            None => Err(ApiError::Unauthenticated),
        };
    }
    match session::from_headers(headers, client.secure_cookies) {
        // Disabling ends the sessions; one that raced it is no session either.
        Some(id) => Ok(state.accounts.session_account(id).await?.filter(|a| !a.disabled)),
        None => Ok(None),
    }
}

impl FromRequestParts<AppState> for CurrentAccount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        account_from_headers(state, &parts.headers, Client::of(parts)).await?.map(Self).ok_or(ApiError::Unauthenticated)
    }
}

impl FromRequestParts<AppState> for MaybeAccount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(account_from_headers(state, &parts.headers, Client::of(parts)).await?))
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let not_found = || ApiError::NotFound("no such API route".into());
        let account = match account_from_headers(state, &parts.headers, Client::of(parts)).await {
            Ok(account) => account,
            // A failure of ours stays one; a wrong or disabled key is just "someone else".
            Err(err @ (ApiError::Database(_) | ApiError::Internal(_))) => return Err(err),
            Err(_) => None,
        };
        account.filter(|a| a.operator).map(Self).ok_or_else(not_found)
    }
}
