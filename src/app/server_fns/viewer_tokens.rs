//! Subscribe token ("viewer token") server functions for the `/viewer-tokens` page. Each runs as
//! the logged-in account through the same service as `/api/v1/subscribe-tokens`.

use leptos::prelude::*;
use leptos::server_fn::ServerFnError;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::model::{SubscribeTokenView, SubscribeTokenWithSecret};

/// The account's viewer tokens, newest first.
#[server(prefix = "/rpc", endpoint = "viewer_tokens")]
pub async fn list_viewer_tokens() -> Result<Vec<SubscribeTokenView>, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::subscribe_tokens::list(&state.pool, &account).await.map_err(|e| ssr::fail(e, None))
}

/// Creates a viewer token; the answer holds its secret, shown once. `streams` is the form's
/// text: names separated by spaces, commas or lines.
#[server(prefix = "/rpc", endpoint = "create_viewer_token")]
pub async fn create_viewer_token(
    label: String,
    streams: String,
    expires_utc: String,
    max_viewers: String,
) -> Result<SubscribeTokenWithSecret, ServerFnError> {
    use crate::server::error::ApiError;
    let (state, account) = ssr::require_account().await?;
    let expires_at = crate::server::timestamps::datetime_local_utc_to_rfc3339(&expires_utc)
        .map_err(|e| ssr::fail(ApiError::invalid("expiresAt", e), None))?;
    let max_viewers = match max_viewers.trim() {
        "" => None,
        text => Some(
            text.parse::<i64>()
                .map_err(|_| ssr::fail(ApiError::invalid("maxViewers", "most viewers must be a whole number"), None))?,
        ),
    };
    let input = crate::model::NewSubscribeToken {
        label,
        streams: streams.split(|c: char| c == ',' || c.is_whitespace()).map(str::to_owned).collect(),
        enabled: Some(true),
        expires_at,
        allowed_origins: None,
        max_viewers,
    };
    crate::server::subscribe_tokens::create(&state.pool, &account, input).await.map_err(|e| ssr::fail(e, None))
}

/// Turns a viewer token on or off.
#[server(prefix = "/rpc", endpoint = "set_viewer_token_enabled")]
pub async fn set_viewer_token_enabled(id: String, enabled: bool) -> Result<SubscribeTokenView, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    let patch = crate::model::SubscribeTokenPatch { enabled: Some(enabled), ..Default::default() };
    crate::server::subscribe_tokens::update(&state.pool, &account, &id, patch).await.map_err(|e| ssr::fail(e, None))
}

/// Deletes a viewer token for good.
#[server(prefix = "/rpc", endpoint = "delete_viewer_token")]
pub async fn delete_viewer_token(id: String) -> Result<(), ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::subscribe_tokens::delete(&state.pool, &account, &id).await.map_err(|e| ssr::fail(e, None))
}
