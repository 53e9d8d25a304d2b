//! `/api/v1/signup`, `/login`, `/logout`, `/me` and what an account does to itself:
//! `/me/password`, `/me/logout-everywhere`, `DELETE /me`.

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
    server::{account_settings, auth::CurrentAccount, client::Client, error::ApiError, session, AppState},
};

/// Body of login.
#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
}

/// Body of signup: the credentials and, on an invite-only instance, the invite code.
#[derive(Deserialize)]
pub struct SignUp {
    email: String,
    password: String,
    #[serde(default)]
    invite: Option<String>,
}

/// `POST /api/v1/signup` → 201 with the new account, logged in.
pub async fn sign_up(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<SignUp>,
) -> Result<Response, ApiError> {
    let account = state.accounts.sign_up(&body.email, &body.password, body.invite.as_deref(), client.ip).await?;
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/me/password` `{currentPassword, newPassword}` → 204; every other session ends.
pub async fn change_password(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    CurrentAccount(account): CurrentAccount,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, ApiError> {
    let this_session = session::from_headers(&headers, client.secure_cookies);
    account_settings::change_password(&state, &account, &body.current_password, &body.new_password, this_session)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/me/logout-everywhere` → 204; every session of the account ends, this one too.
pub async fn log_out_everywhere(
    State(state): State<AppState>,
    client: Client,
    CurrentAccount(account): CurrentAccount,
) -> Result<Response, ApiError> {
    account_settings::log_out_everywhere(&state, &account).await?;
    let cookie = session::clear_cookie(client.secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

#[derive(Deserialize)]
pub struct PasswordConfirmation {
    password: String,
}

/// `DELETE /api/v1/me` `{password}` → 204: the account, its tokens, keys, sessions, feeds and
/// recordings are gone.
pub async fn delete_account(
    State(state): State<AppState>,
    client: Client,
    CurrentAccount(account): CurrentAccount,
    ApiJson(body): ApiJson<PasswordConfirmation>,
) -> Result<Response, ApiError> {
    account_settings::delete_account(&state, &account, &body.password).await?;
    let cookie = session::clear_cookie(client.secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}
