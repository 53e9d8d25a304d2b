//! Publish token and API key server functions. Each one runs as the logged-in account through the
//! same service as `/api/v1/tokens` and `/api/v1/api-keys`.

use leptos::prelude::*;
use leptos::server_fn::ServerFnError;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::model::{ApiKeyView, ApiKeyWithSecret, TokenView, TokenWithSecret};

/// The fields of the create and settings forms, as the browser sends them.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct TokenForm {
    pub label: String,
    /// Stream name rows (`form[streams][0]`, …); empty rows are ignored.
    #[serde(default)]
    pub streams: Vec<String>,
    /// Checkbox: adds `*`.
    #[serde(default)]
    pub any_stream: Option<String>,
    #[serde(default)]
    pub enabled: Option<String>,
    #[serde(default)]
    pub record: Option<String>,
    #[serde(default)]
    pub multisource: Option<String>,
    #[serde(default)]
    pub secure_viewer: Option<String>,
    /// `YYYY-MM-DDTHH:MM` in UTC (a `datetime-local` input), or empty.
    #[serde(default)]
    pub expires_utc: String,
    /// Origins, one per line; empty for any.
    #[serde(default)]
    pub allowed_origins: String,
    /// Sites that may embed, one per line; empty for any.
    #[serde(default)]
    pub embed_origins: String,
}

#[cfg(feature = "ssr")]
impl TokenForm {
    fn streams(&self) -> Vec<String> {
        let mut streams = self.streams.clone();
        if self.any_stream.is_some() {
            streams.push("*".to_owned());
        }
        streams
    }

    fn origins(&self) -> Vec<String> {
        self.allowed_origins.lines().map(str::to_owned).collect()
    }

    fn embed_origins(&self) -> Vec<String> {
        self.embed_origins.lines().map(str::to_owned).collect()
    }

    fn expires_at(&self) -> Result<Option<String>, crate::server::error::ApiError> {
        crate::server::timestamps::datetime_local_utc_to_rfc3339(&self.expires_utc)
            .map_err(|e| crate::server::error::ApiError::invalid("expiresAt", e))
    }
}

/// The account's tokens, newest first.
#[server(prefix = "/rpc", endpoint = "tokens")]
pub async fn list_tokens() -> Result<Vec<TokenView>, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::tokens::list(&state.pool, &account).await.map_err(|e| ssr::fail(e, None))
}

/// One of the account's tokens.
#[server(prefix = "/rpc", endpoint = "token")]
pub async fn get_token(id: String) -> Result<TokenView, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::tokens::get(&state.pool, &account, &id).await.map_err(|e| ssr::fail(e, None))
}

/// Creates a token; the answer holds its secret, shown once.
#[server(prefix = "/rpc", endpoint = "create_token")]
pub async fn create_token(form: TokenForm) -> Result<TokenWithSecret, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    let input = crate::model::NewToken {
        label: form.label.clone(),
        streams: form.streams(),
        enabled: Some(true),
        record: form.record.is_some(),
        multisource: form.multisource.is_some(),
        expires_at: form.expires_at().map_err(|e| ssr::fail(e, None))?,
        allowed_origins: Some(form.origins()),
        embed_origins: Some(form.embed_origins()),
        secure_viewer: form.secure_viewer.is_some(),
    };
    crate::server::tokens::create(&state.pool, &account, input).await.map_err(|e| ssr::fail(e, None))
}

/// Saves every field of the settings form.
#[server(prefix = "/rpc", endpoint = "save_token")]
pub async fn save_token(id: String, form: TokenForm) -> Result<TokenView, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    let patch = crate::model::TokenPatch {
        label: Some(form.label.clone()),
        streams: Some(form.streams()),
        enabled: Some(form.enabled.is_some()),
        record: Some(form.record.is_some()),
        multisource: Some(form.multisource.is_some()),
        expires_at: Some(form.expires_at().map_err(|e| ssr::fail(e, None))?),
        allowed_origins: Some(Some(form.origins())),
        embed_origins: Some(Some(form.embed_origins())),
        secure_viewer: Some(form.secure_viewer.is_some()),
    };
    crate::server::tokens::update(&state.pool, &account, &id, patch).await.map_err(|e| ssr::fail(e, None))
}

/// The quick action: enable or disable a token.
#[server(prefix = "/rpc", endpoint = "set_token_enabled")]
pub async fn set_token_enabled(id: String, enabled: bool) -> Result<TokenView, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::tokens::set_enabled(&state.pool, &account, &id, enabled).await.map_err(|e| ssr::fail(e, None))
}

/// Gives a token a new secret, shown once.
#[server(prefix = "/rpc", endpoint = "rotate_token")]
pub async fn rotate_token(id: String) -> Result<TokenWithSecret, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    let rotated = crate::server::tokens::rotate(&state.pool, &account, &id).await.map_err(|e| ssr::fail(e, None))?;
    state.grants.revoke_token(&id);
    Ok(rotated)
}

/// Deletes a token for good.
#[server(prefix = "/rpc", endpoint = "delete_token")]
pub async fn delete_token(id: String) -> Result<(), ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::tokens::delete(&state.pool, &state.sfu, &account, &id).await.map_err(|e| ssr::fail(e, None))
}

/// The account's API keys.
#[server(prefix = "/rpc", endpoint = "api_keys")]
pub async fn list_api_keys() -> Result<Vec<ApiKeyView>, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::tokens::list_api_keys(&state.pool, &account).await.map_err(|e| ssr::fail(e, None))
}

/// Creates an API key; the answer holds its secret, shown once.
#[server(prefix = "/rpc", endpoint = "create_api_key")]
pub async fn create_api_key(label: String) -> Result<ApiKeyWithSecret, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::tokens::create_api_key(&state.pool, &account, &label).await.map_err(|e| ssr::fail(e, None))
}

/// Revokes an API key.
#[server(prefix = "/rpc", endpoint = "delete_api_key")]
pub async fn delete_api_key(id: String) -> Result<(), ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::tokens::delete_api_key(&state.pool, &account, &id).await.map_err(|e| ssr::fail(e, None))
}
