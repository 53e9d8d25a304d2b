//! Server functions behind the pages: they run on the server, are called from the browser over
//! HTTP (`/rpc/...`), and are plain form targets when JavaScript is off. They share every rule
//! with the JSON API through the services in [`crate::server`].

mod accounts;
mod admin;
mod live;
mod recordings;
mod tokens;
mod viewer_tokens;
mod webhooks;

pub use accounts::*;
pub use admin::*;
pub use live::*;
pub use recordings::*;
pub use tokens::*;
pub use viewer_tokens::*;
pub use webhooks::*;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use axum::http::{header, request::Parts, HeaderValue};
    use leptos::prelude::*;
    use leptos::server_fn::ServerFnError;
    use leptos_axum::ResponseOptions;

    use crate::{
        db::accounts::AccountRow,
        server::{client::Client, error::ApiError, AppState},
    };

    pub fn state() -> Result<AppState, ServerFnError> {
        use_context::<AppState>().ok_or_else(|| ServerFnError::new("application state missing"))
    }

    pub fn request_parts() -> Result<Parts, ServerFnError> {
        use_context::<Parts>().ok_or_else(|| ServerFnError::new("request missing"))
    }

    /// The logged-in account, or the error the page shows when the session is gone.
    pub async fn require_account() -> Result<(AppState, AccountRow), ServerFnError> {
        let state = state()?;
        let parts = request_parts()?;
        match crate::server::auth::account_from_parts(&state, &parts).await {
            Ok(Some(account)) => Ok((state, account)),
            Ok(None) => Err(fail(ApiError::Unauthenticated, None)),
            Err(err) => Err(fail(err, None)),
        }
    }

    /// [`require_account`] for the operator's page: anyone else gets the 404 of a page that does
    /// not exist.
    pub async fn require_operator() -> Result<(AppState, AccountRow), ServerFnError> {
        let (state, account) = require_account().await?;
        if !account.operator {
            return Err(fail(ApiError::NotFound("no such page".into()), None));
        }
        Ok((state, account))
    }

    /// The client of the request (its address after trusted proxies, and its cookie flags).
    pub fn client() -> Result<Client, ServerFnError> {
        Ok(Client::of(&request_parts()?))
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
            if let ApiError::TooManyRequests { retry_after_secs } | ApiError::Busy { retry_after_secs, .. } = err {
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

    /// The sentence the Live and Recordings pages show while the recordings disk is below
    /// `--recordings-min-free`.
    pub fn recording_paused(state: &AppState) -> Option<String> {
        let disk = state.recorder.disk();
        disk.low.then(|| {
            format!(
                "Recording is paused: {}. Running recordings were ended, and new broadcasts are not recorded until space is freed.",
                disk.reason()
            )
        })
    }

    /// Percent-encodes a query value.
    pub fn encode(value: &str) -> String {
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
    }

    /// Only same-site paths are followed after login, so `?next=` cannot send people elsewhere:
    /// one leading slash, then visible ASCII only. Browsers drop tabs and newlines from a
    /// `Location` (`/<TAB>/evil.example` becomes `//evil.example`) and read `\` as `/`; a control
    /// character cannot stand in a header at all.
    pub fn local_path_or_dashboard(next: Option<&str>) -> String {
        let same_site = |path: &str| {
            path.starts_with('/') && !path.starts_with("//") && path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        };
        match next {
            Some(path) if same_site(path) => path.to_owned(),
            _ => "/tokens".to_owned(),
        }
    }
}
