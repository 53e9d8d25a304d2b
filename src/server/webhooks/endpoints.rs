//! Webhook endpoints: validation and storage for `/api/v1/webhooks`. Every function takes the
//! acting account, so one account never reaches another's.

use sqlx::SqlitePool;

use super::{events::EventType, sender, Event, Webhooks};
use crate::{
    db::{
        self,
        accounts::AccountRow,
        webhooks::{DeliveryRow, EndpointFields, EndpointRow},
    },
    model::{
        NewWebhookEndpoint, WebhookDeliveryView, WebhookEndpointPatch, WebhookEndpointView, WebhookEndpointWithSecret,
    },
    server::{error::ApiError, secrets, timestamps, tokens::parse_json_list},
};

/// Endpoints one account may have.
pub const MAX_ENDPOINTS: i64 = 16;
const URL_MAX_BYTES: usize = 2048;
/// Deliveries the log shows.
const LOG_LIMIT: i64 = 100;

fn not_found() -> ApiError {
    ApiError::NotFound("no such webhook endpoint".into())
}

/// Whether an endpoint's `events` (JSON) include `kind`.
pub fn wants(events_json: &str, kind: EventType) -> bool {
    parse_json_list(events_json).iter().any(|e| e == kind.as_str())
}

/// An `http(s)://` URL without credentials; an address literal on a private network only when
/// the server allows those (names are checked when they are resolved, at each attempt).
fn check_url(raw: &str, allow_private: bool) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::invalid("url", why.to_owned());
    let raw = raw.trim();
    if raw.len() > URL_MAX_BYTES {
        return Err(bad("url must be at most 2048 bytes"));
    }
    let url = url::Url::parse(raw).map_err(|e| bad(&format!("url is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("url must start with https:// or http://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("url must not hold a user name or password: authenticate with the signature"));
    }
    let ip = match url.host() {
        None => return Err(bad("url needs a host")),
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
    };
    if ip.is_some_and(|ip| !allow_private && !sender::is_public(ip)) {
        return Err(bad("url is on a private network; the server's --webhooks-private-networks allows that"));
    }
    Ok(url.to_string())
}

/// Known event names, de-duplicated in the README's order; at least one.
fn check_events(raw: &[String]) -> Result<String, ApiError> {
    let mut kinds = Vec::new();
    for name in raw {
        let kind = EventType::parse(name.trim()).ok_or_else(|| {
            let known: Vec<&str> = EventType::SUBSCRIBABLE.iter().map(|e| e.as_str()).collect();
            ApiError::invalid("events", format!("unknown event {name:?}; known: {}", known.join(", ")))
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return Err(ApiError::invalid("events", "events must name at least one event"));
    }
    let names: Vec<&str> = EventType::SUBSCRIBABLE.iter().filter(|k| kinds.contains(k)).map(|k| k.as_str()).collect();
    Ok(serde_json::to_string(&names).expect("strings serialize"))
}

pub async fn list(pool: &SqlitePool, account: &AccountRow) -> Result<Vec<WebhookEndpointView>, ApiError> {
    Ok(db::webhooks::endpoints(pool, account.id).await?.iter().map(view).collect())
}

async fn find(pool: &SqlitePool, account: &AccountRow, id: &str) -> Result<EndpointRow, ApiError> {
    db::webhooks::endpoint(pool, account.id, id).await?.ok_or_else(not_found)
}

pub async fn get(pool: &SqlitePool, account: &AccountRow, id: &str) -> Result<WebhookEndpointView, ApiError> {
    Ok(view(&find(pool, account, id).await?))
}

pub async fn create(
    pool: &SqlitePool,
    account: &AccountRow,
    input: NewWebhookEndpoint,
    allow_private: bool,
) -> Result<WebhookEndpointWithSecret, ApiError> {
    let url = check_url(&input.url, allow_private)?;
    let events = check_events(&input.events)?;
    if db::webhooks::count_endpoints(pool, account.id).await? >= MAX_ENDPOINTS {
        return Err(ApiError::Conflict(format!(
            "an account has at most {MAX_ENDPOINTS} webhook endpoints; delete one first"
        )));
    }
    let fields = EndpointFields { url: &url, events_json: &events, enabled: input.enabled.unwrap_or(true) };
    let minted = secrets::mint(secrets::WEBHOOK_SECRET_PREFIX)?;
    let row = db::webhooks::insert_endpoint(
        pool,
        &secrets::new_id(),
        account.id,
        &fields,
        &minted.secret,
        &minted.hint,
        db::now_unix(),
    )
    .await?;
    Ok(WebhookEndpointWithSecret { endpoint: view(&row), secret: minted.secret })
}

pub async fn update(
    pool: &SqlitePool,
    account: &AccountRow,
    id: &str,
    patch: WebhookEndpointPatch,
    allow_private: bool,
) -> Result<WebhookEndpointView, ApiError> {
    let current = find(pool, account, id).await?;
    let url = match &patch.url {
        Some(url) => check_url(url, allow_private)?,
        None => current.url,
    };
    let events = match &patch.events {
        Some(events) => check_events(events)?,
        None => current.events,
    };
    let fields = EndpointFields { url: &url, events_json: &events, enabled: patch.enabled.unwrap_or(current.enabled) };
    let row =
        db::webhooks::update_endpoint(pool, account.id, id, &fields, db::now_unix()).await?.ok_or_else(not_found)?;
    Ok(view(&row))
}

/// A new signing secret; deliveries from now on are signed with it, queued ones included.
pub async fn rotate(pool: &SqlitePool, account: &AccountRow, id: &str) -> Result<WebhookEndpointWithSecret, ApiError> {
    let minted = secrets::mint(secrets::WEBHOOK_SECRET_PREFIX)?;
    let row = db::webhooks::set_endpoint_secret(pool, account.id, id, &minted.secret, &minted.hint, db::now_unix())
        .await?
        .ok_or_else(not_found)?;
    Ok(WebhookEndpointWithSecret { endpoint: view(&row), secret: minted.secret })
}

/// Deletes the endpoint with its queue and log.
pub async fn delete(pool: &SqlitePool, account: &AccountRow, id: &str) -> Result<(), ApiError> {
    if db::webhooks::delete_endpoint(pool, account.id, id).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// The endpoint's newest deliveries first.
pub async fn deliveries(
    pool: &SqlitePool,
    account: &AccountRow,
    id: &str,
) -> Result<Vec<WebhookDeliveryView>, ApiError> {
    let endpoint = find(pool, account, id).await?;
    Ok(db::webhooks::deliveries(pool, &endpoint.id, LOG_LIMIT).await?.iter().map(delivery_view).collect())
}

/// Queues the delivery's event again, at the end of the endpoint's queue (same event id, so a
/// receiver that de-duplicates sees it is the same event).
pub async fn resend(
    pool: &SqlitePool,
    webhooks: &Webhooks,
    account: &AccountRow,
    id: &str,
    delivery_id: &str,
) -> Result<WebhookDeliveryView, ApiError> {
    let endpoint = find(pool, account, id).await?;
    let missing = || ApiError::NotFound("no such delivery".into());
    let delivery_id: i64 = delivery_id.parse().map_err(|_| missing())?;
    let old = db::webhooks::delivery(pool, &endpoint.id, delivery_id).await?.ok_or_else(missing)?;
    let row = webhooks.queue_for(&endpoint.id, &old.event_id, &old.event_type, &old.payload).await?;
    Ok(delivery_view(&row))
}

/// Queues a `webhook.test` event for the endpoint, whatever it subscribed to.
pub async fn send_test(
    pool: &SqlitePool,
    webhooks: &Webhooks,
    account: &AccountRow,
    id: &str,
) -> Result<WebhookDeliveryView, ApiError> {
    let endpoint = find(pool, account, id).await?;
    let data = serde_json::json!({ "accountId": account.public_id, "endpointId": endpoint.id });
    let event = Event::new(EventType::Test, crate::db::now_unix_ms(), data);
    let row = webhooks.queue_for(&endpoint.id, &event.id, event.kind.as_str(), &event.body()).await?;
    Ok(delivery_view(&row))
}

fn view(row: &EndpointRow) -> WebhookEndpointView {
    WebhookEndpointView {
        id: row.id.clone(),
        url: row.url.clone(),
        events: parse_json_list(&row.events),
        enabled: row.enabled,
        created_at: timestamps::to_rfc3339(row.created_at),
        updated_at: timestamps::to_rfc3339(row.updated_at),
        hint: row.hint.clone(),
    }
}

fn delivery_view(row: &DeliveryRow) -> WebhookDeliveryView {
    let time = |ms: i64| timestamps::to_rfc3339(ms.div_euclid(1000));
    WebhookDeliveryView {
        id: row.id,
        event_id: row.event_id.clone(),
        event_type: row.event_type.clone(),
        status: row.status.clone(),
        attempts: row.attempts,
        created_at: time(row.created_at),
        last_attempt_at: row.last_attempt_at.map(time),
        last_status: row.last_status,
        last_error: row.last_error.clone(),
        latency_ms: row.last_latency_ms,
        next_attempt_at: row.next_attempt_at.map(time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_without_credentials_and_public_unless_allowed() {
        assert_eq!(check_url(" https://hooks.example.com/in ", false).unwrap(), "https://hooks.example.com/in");
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        for bad in [
            "",
            "hooks.example.com",
            "ftp://x.example/",
            "https://u:p@x.example/",
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://169.254.169.254/latest",
            "http://10.0.0.1/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url(&format!("https://x.example/{}", "a".repeat(2048)), false).is_err());
    }

    #[test]
    fn events_are_known_names_in_a_stable_order() {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_events(&list(&["stream.ended", "stream.started", "stream.ended"])).unwrap(),
            r#"["stream.started","stream.ended"]"#
        );
        assert!(check_events(&list(&[])).is_err());
        assert!(check_events(&list(&["webhook.test"])).is_err());
        assert!(check_events(&list(&["stream.begun"])).is_err());
        assert!(wants(r#"["stream.started"]"#, EventType::StreamStarted));
        assert!(!wants(r#"["stream.started"]"#, EventType::StreamEnded));
    }
}
