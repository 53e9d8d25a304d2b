//! `/api/v1/signup`, `/login`, `/logout`, `/me`.

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;

use super::ApiJson;
use crate::{
    model::AccountView,
    server::{auth::CurrentAccount, client::Client, error::ApiError, session, AppState},
};

/// Body of signup and login.
#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
}

/// `POST /api/v1/signup` → 201 with the new account, logged in.
pub async fn sign_up(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let account = state.accounts.sign_up(&body.email, &body.password, client.ip).await?;
    let session = state.accounts.open_session(&account).await?;
    let cookie = session::set_cookie(&session, client.secure_cookies);
    Ok((StatusCode::CREATED, [(header::SET_COOKIE, cookie)], Json(AccountView::from(&account))).into_response())
}

/// `POST /api/v1/login` → 200 with the account and a session cookie.
pub async fn log_in(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Response, ApiError> {
    let logged_in = state.accounts.log_in(&body.email, &body.password, client.ip).await?;
    let cookie = session::set_cookie(&logged_in.session, client.secure_cookies);
    Ok(([(header::SET_COOKIE, cookie)], Json(AccountView::from(&logged_in.account))).into_response())
}

/// `POST /api/v1/logout` → 204; revokes the session (if any) and clears the cookie.
pub async fn log_out(State(state): State<AppState>, client: Client, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(id) = session::from_headers(&headers, client.secure_cookies) {
        state.accounts.log_out(id).await?;
        state.grants.revoke_session(&session::hash_id(id));
    }
    let cookie = session::clear_cookie(client.secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// `GET /api/v1/me` → `{"accountId", "email"}`.
pub async fn me(CurrentAccount(account): CurrentAccount) -> Json<AccountView> {
    Json(AccountView::from(&account))
}
