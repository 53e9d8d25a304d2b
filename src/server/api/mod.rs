//! The JSON API under `/api/v1` (README "HTTP API").

mod accounts;
mod admin;
mod invites;
mod json;
mod links;
mod recordings;
mod self_check;
mod streams;
mod subscribe_tokens;
mod tokens;
mod webhooks;

use axum::{
    extract::DefaultBodyLimit,
    routing::{delete, get, post},
    Router,
};

pub use json::ApiJson;

use super::{error::ApiError, AppState};

/// Routes of `/api/v1`, to be nested there. Unknown paths and methods answer JSON errors too.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", post(accounts::sign_up))
        .route("/login", post(accounts::log_in))
        .route("/logout", post(accounts::log_out))
        .route("/me", get(accounts::me).delete(accounts::delete_account))
        .route("/me/password", post(accounts::change_password))
        .route("/me/logout-everywhere", post(accounts::log_out_everywhere))
        // The operator's doors answer a method they lack with the same 404 as a missing route (a
        // 405 would tell everyone they exist).
        .route("/admin/accounts", get(admin::accounts).fallback(not_found))
        .route("/admin/instance", get(admin::instance).fallback(not_found))
        .route(
            "/admin/accounts/{account}",
            axum::routing::patch(admin::update).delete(admin::delete).fallback(not_found),
        )
        .route("/invites", get(invites::list).post(invites::create).fallback(not_found))
        .route("/invites/{code}", delete(invites::delete).fallback(not_found))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", get(tokens::get).patch(tokens::update).delete(tokens::delete))
        .route("/tokens/{id}/rotate", post(tokens::rotate))
        .route("/tokens/{id}/grants", post(tokens::grant))
        .route("/subscribe-tokens", get(subscribe_tokens::list).post(subscribe_tokens::create))
        .route(
            "/subscribe-tokens/{id}",
            get(subscribe_tokens::get).patch(subscribe_tokens::update).delete(subscribe_tokens::delete),
        )
        .route("/subscribe-tokens/{id}/rotate", post(subscribe_tokens::rotate))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::get).patch(webhooks::update).delete(webhooks::delete))
        .route("/webhooks/{id}/rotate", post(webhooks::rotate))
        .route("/webhooks/{id}/test", post(webhooks::test))
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/webhooks/{id}/deliveries/{delivery}/resend", post(webhooks::resend))
        .route("/api-keys", get(tokens::list_api_keys).post(tokens::create_api_key))
        .route("/api-keys/{id}", delete(tokens::delete_api_key))
        .route("/self-check", get(self_check::self_check))
        .route("/recordings", get(recordings::list))
        .route("/recordings/{id}", get(recordings::get).delete(recordings::delete))
        .route("/recordings/{id}/file", get(recordings::file))
        .route("/streams", get(streams::list))
        .route("/streams/{account}/{stream}", get(streams::public))
        // `{account}` is the stream's name here (one router segment cannot have two names); a GET
        // is the public state of a stream called "links".
        .route("/streams/{account}/links", get(streams::public_of_links).post(links::create))
        .route("/streams/{account}/{stream}/events", get(streams::public_events))
        .route("/streams/{account}/{stream}/grants", post(subscribe_tokens::exchange))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(super::limits::limit_body))
        .layer(DefaultBodyLimit::max(super::limits::MAX_REQUEST_BODY))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such API route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
