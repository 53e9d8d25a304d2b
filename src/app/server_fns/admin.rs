//! The operator's server functions for `/admin`, through the same services as the operator's API.

use leptos::prelude::*;
use leptos::server_fn::ServerFnError;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::model::{InviteView, InviteWithCode};

/// Every invite, newest first.
#[server(prefix = "/rpc", endpoint = "invites")]
pub async fn list_invites() -> Result<Vec<InviteView>, ServerFnError> {
    let (state, _) = ssr::require_operator().await?;
    crate::server::invites::list(&state.pool).await.map_err(|e| ssr::fail(e, None))
}

/// Makes an invite lasting `days`; the answer holds its link, shown once.
#[server(prefix = "/rpc", endpoint = "create_invite")]
pub async fn create_invite(note: String, days: u64) -> Result<InviteWithCode, ServerFnError> {
    let (state, operator) = ssr::require_operator().await?;
    let lifetime = days.saturating_mul(24 * 3600);
    crate::server::invites::make(
        &state.pool,
        &state.settings.public_url,
        Some(operator.id),
        Some(lifetime),
        Some(&note),
    )
    .await
    .map_err(|e| ssr::fail(e, None))
}

/// Withdraws an invite (its link stops working).
#[server(prefix = "/rpc", endpoint = "withdraw_invite")]
pub async fn withdraw_invite(id: String) -> Result<(), ServerFnError> {
    let (state, _) = ssr::require_operator().await?;
    crate::server::invites::withdraw(&state.pool, &id).await.map_err(|e| ssr::fail(e, None))
}

/// Every account with what it has live now.
#[server(prefix = "/rpc", endpoint = "admin_accounts")]
pub async fn list_admin_accounts() -> Result<Vec<crate::model::AdminAccountView>, ServerFnError> {
    let (state, _) = ssr::require_operator().await?;
    crate::server::admin::list(&state).await.map_err(|e| ssr::fail(e, None))
}

/// Disables or enables an account, or gives or takes the operator role.
#[server(prefix = "/rpc", endpoint = "update_admin_account")]
pub async fn update_admin_account(
    account_id: String,
    #[server(default)] disabled: Option<bool>,
    #[server(default)] operator: Option<bool>,
) -> Result<(), ServerFnError> {
    let (state, _) = ssr::require_operator().await?;
    let patch = crate::model::AdminAccountPatch { disabled, operator, ..Default::default() };
    crate::server::admin::update(&state, &account_id, patch).await.map_err(|e| ssr::fail(e, None))
}

/// Deletes an account with everything of it.
#[server(prefix = "/rpc", endpoint = "delete_admin_account")]
pub async fn delete_admin_account(account_id: String) -> Result<(), ServerFnError> {
    let (state, _) = ssr::require_operator().await?;
    crate::server::admin::delete(&state, &account_id).await.map_err(|e| ssr::fail(e, None))
}

/// Sets an account's limits from the form: a number, or empty for the server's default.
#[server(prefix = "/rpc", endpoint = "set_account_limits")]
pub async fn set_account_limits(
    account_id: String,
    max_publishers: String,
    max_viewers: String,
    max_egress_mbps: String,
) -> Result<(), ServerFnError> {
    use crate::server::error::ApiError;
    let (state, _) = ssr::require_operator().await?;
    fn number<T: std::str::FromStr>(field: &'static str, text: &str) -> Result<Option<T>, ApiError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| ApiError::invalid(field, "a number, or empty for the server's default"))
    }
    let patch = (|| {
        Ok::<_, ApiError>(crate::model::AdminAccountPatch {
            max_publishers: Some(number("maxPublishers", &max_publishers)?),
            max_viewers: Some(number("maxViewers", &max_viewers)?),
            max_egress_mbps: Some(number("maxEgressMbps", &max_egress_mbps)?),
            ..Default::default()
        })
    })()
    .map_err(|e| ssr::fail(e, None))?;
    crate::server::admin::update(&state, &account_id, patch).await.map_err(|e| ssr::fail(e, None))
}

/// The instance now and over the last hour.
#[server(prefix = "/rpc", endpoint = "admin_instance")]
pub async fn admin_instance() -> Result<crate::model::InstanceView, ServerFnError> {
    let (state, _) = ssr::require_operator().await?;
    crate::server::admin::instance(&state).await.map_err(|e| ssr::fail(e, None))
}
