//! Server functions behind the pages: run on the server, called from the browser over HTTP
//! (`/rpc/...`), and plain form targets when JavaScript is off. They share the account rules
//! with the JSON API through [`crate::server::accounts::Accounts`].

use leptos::prelude::*;
use leptos::server_fn::ServerFnError;

use crate::model::AccountView;

/// The logged-in account, or `None`.
#[server(prefix = "/rpc", endpoint = "current_account")]
pub async fn current_account() -> Result<Option<AccountView>, ServerFnError> {
    use ssr::*;
    let state = state()?;
    let parts = request_parts()?;
    let account = crate::server::auth::account_from_headers(&state, &parts.headers).await.map_err(|e| fail(e, None))?;
    Ok(account.as_ref().map(AccountView::from))
}

/// Whether this server lets strangers sign up.
#[server(prefix = "/rpc", endpoint = "signup_open")]
pub async fn signup_open() -> Result<bool, ServerFnError> {
    let state = ssr::state()?;
    Ok(state.accounts.signup_mode() == crate::config::SignupMode::Open)
}

/// Logs in and goes to `next` (a local path) or the dashboard.
#[server(prefix = "/rpc", endpoint = "login")]
pub async fn log_in(email: String, password: String, next: Option<String>) -> Result<(), ServerFnError> {
    use ssr::*;
    let state = state()?;
    let client = client_ip().await;
    let back = format!("/login?{}", next.as_deref().map(|n| format!("next={}&", encode(n))).unwrap_or_default());
    let logged_in = state.accounts.log_in(&email, &password, client).await.map_err(|e| fail(e, Some(&back)))?;
    set_cookie(crate::server::session::set_cookie(&logged_in.session, state.settings.secure_cookies));
    leptos_axum::redirect(&local_path_or_dashboard(next.as_deref()));
    Ok(())
}

/// Creates an account, logs it in and opens the dashboard.
#[server(prefix = "/rpc", endpoint = "signup")]
pub async fn sign_up(email: String, password: String) -> Result<(), ServerFnError> {
    use ssr::*;
    let state = state()?;
    let account = state.accounts.sign_up(&email, &password).await.map_err(|e| fail(e, Some("/signup?")))?;
    let session = state.accounts.open_session(&account).await.map_err(|e| fail(e, Some("/signup?")))?;
    set_cookie(crate::server::session::set_cookie(&session, state.settings.secure_cookies));
    leptos_axum::redirect("/tokens");
    Ok(())
}

/// Revokes the session and goes to the login page.
#[server(prefix = "/rpc", endpoint = "logout")]
pub async fn log_out() -> Result<(), ServerFnError> {
    use ssr::*;
    let state = state()?;
    let parts = request_parts()?;
    if let Some(id) = crate::server::session::from_headers(&parts.headers) {
        state.accounts.log_out(id).await.map_err(|e| fail(e, None))?;
    }
    set_cookie(crate::server::session::clear_cookie(state.settings.secure_cookies));
    leptos_axum::redirect("/login");
    Ok(())
}

#[cfg(feature = "ssr")]
mod ssr {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    use axum::{
        extract::ConnectInfo,
        http::{header, request::Parts, HeaderValue},
    };
    use leptos::prelude::*;
    use leptos::server_fn::ServerFnError;
    use leptos_axum::ResponseOptions;

    use crate::server::{error::ApiError, AppState};

    pub fn state() -> Result<AppState, ServerFnError> {
        use_context::<AppState>().ok_or_else(|| ServerFnError::new("application state missing"))
    }

    pub fn request_parts() -> Result<Parts, ServerFnError> {
        use_context::<Parts>().ok_or_else(|| ServerFnError::new("request missing"))
    }

    /// The peer address; only loopback if the connection info is missing (it never is when
    /// served through `Application`).
    pub async fn client_ip() -> IpAddr {
        leptos_axum::extract::<ConnectInfo<SocketAddr>>()
            .await
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    pub fn set_cookie(value: HeaderValue) {
        if let Some(response) = use_context::<ResponseOptions>() {
            response.append_header(header::SET_COOKIE, value);
        }
    }

    /// Turns an `ApiError` into what the page shows. A plain form post (JavaScript off) is sent
    /// back to `back_to` with the message in `?error=`, since it cannot read a JSON error.
    pub fn fail(err: ApiError, back_to: Option<&str>) -> ServerFnError {
        let message = err.public_message();
        if let Some(response) = use_context::<ResponseOptions>() {
            response.set_status(err.status());
            if let ApiError::TooManyRequests { retry_after_secs } = err {
                response.insert_header(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
        }
        let plain_form = use_context::<Parts>()
            .and_then(|p| p.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(|v| v.contains("text/html")))
            .unwrap_or(false);
        if let (true, Some(back)) = (plain_form, back_to) {
            leptos_axum::redirect(&format!("{back}error={}", encode(&message)));
            if let Some(response) = use_context::<ResponseOptions>() {
                response.set_status(axum::http::StatusCode::SEE_OTHER);
            }
        }
        ServerFnError::new(message)
    }

    /// Percent-encodes a query value.
    pub fn encode(value: &str) -> String {
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
    }

    /// Only same-site paths are followed after login, so `?next=` cannot send people elsewhere.
    pub fn local_path_or_dashboard(next: Option<&str>) -> String {
        match next {
            Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path.to_owned(),
            _ => "/tokens".to_owned(),
        }
    }
}
