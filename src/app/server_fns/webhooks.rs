//! Webhook server functions for the `/webhooks` page, through the same service as
//! `/api/v1/webhooks`.

use leptos::prelude::*;
use leptos::server_fn::ServerFnError;

#[cfg(feature = "ssr")]
use super::ssr;
use crate::model::{WebhookDeliveryView, WebhookEndpointView, WebhookEndpointWithSecret};

/// The account's endpoints, each with its newest deliveries.
#[server(prefix = "/rpc", endpoint = "webhooks")]
pub async fn list_webhooks() -> Result<Vec<(WebhookEndpointView, Vec<WebhookDeliveryView>)>, ServerFnError> {
    use crate::server::webhooks::endpoints;
    let (state, account) = ssr::require_account().await?;
    let list = endpoints::list(&state.pool, &account).await.map_err(|e| ssr::fail(e, None))?;
    let mut out = Vec::with_capacity(list.len());
    for endpoint in list {
        let mut log =
            endpoints::deliveries(&state.pool, &account, &endpoint.id).await.map_err(|e| ssr::fail(e, None))?;
        log.truncate(20);
        out.push((endpoint, log));
    }
    Ok(out)
}

/// Adds an endpoint; the answer holds its signing secret, shown once. `events` come from the
/// form's checkboxes (`events[]`).
#[server(prefix = "/rpc", endpoint = "create_webhook")]
pub async fn create_webhook(
    url: String,
    events: Option<Vec<String>>,
) -> Result<WebhookEndpointWithSecret, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    let input = crate::model::NewWebhookEndpoint { url, events: events.unwrap_or_default(), enabled: Some(true) };
    let allow_private = state.settings.webhooks_private_networks;
    crate::server::webhooks::endpoints::create(&state.pool, &account, input, allow_private)
        .await
        .map_err(|e| ssr::fail(e, None))
}

/// Turns an endpoint on or off.
#[server(prefix = "/rpc", endpoint = "set_webhook_enabled")]
pub async fn set_webhook_enabled(id: String, enabled: bool) -> Result<WebhookEndpointView, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    let patch = crate::model::WebhookEndpointPatch { enabled: Some(enabled), ..Default::default() };
    let allow_private = state.settings.webhooks_private_networks;
    crate::server::webhooks::endpoints::update(&state.pool, &account, &id, patch, allow_private)
        .await
        .map_err(|e| ssr::fail(e, None))
}

/// Deletes an endpoint with its queue and log.
#[server(prefix = "/rpc", endpoint = "delete_webhook")]
pub async fn delete_webhook(id: String) -> Result<(), ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::webhooks::endpoints::delete(&state.pool, &account, &id).await.map_err(|e| ssr::fail(e, None))
}

/// Queues a `webhook.test` event for the endpoint.
#[server(prefix = "/rpc", endpoint = "send_test_webhook")]
pub async fn send_test_webhook(id: String) -> Result<WebhookDeliveryView, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::webhooks::endpoints::send_test(&state.pool, &state.webhooks, &account, &id)
        .await
        .map_err(|e| ssr::fail(e, None))
}

/// Queues a delivery's event again.
#[server(prefix = "/rpc", endpoint = "resend_webhook")]
pub async fn resend_webhook(id: String, delivery: String) -> Result<WebhookDeliveryView, ServerFnError> {
    let (state, account) = ssr::require_account().await?;
    crate::server::webhooks::endpoints::resend(&state.pool, &state.webhooks, &account, &id, &delivery)
        .await
        .map_err(|e| ssr::fail(e, None))
}
