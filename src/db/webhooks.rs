//! The `webhook_endpoints` and `webhook_deliveries` tables.

use sqlx::{FromRow, SqlitePool};

#[derive(Clone, Debug, FromRow)]
pub struct EndpointRow {
    pub id: String,
    pub account_id: i64,
    pub url: String,
    /// JSON array of event types.
    pub events: String,
    pub enabled: bool,
    pub secret: String,
    pub hint: String,
    pub created_at: i64,
    pub updated_at: i64,
}

const ENDPOINT_COLUMNS: &str = "id, account_id, url, events, enabled, secret, hint, created_at, updated_at";

/// Every endpoint of an account, oldest first.
pub async fn endpoints(pool: &SqlitePool, account_id: i64) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE account_id = $1 ORDER BY created_at, id"
    ))
    .bind(account_id)
    .fetch_all(pool)
    .await
}

/// The enabled endpoints of the account whose public id is `account_public_id`.
pub async fn endpoints_of_public_id(
    pool: &SqlitePool,
    account_public_id: &str,
) -> Result<Vec<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {} FROM webhook_endpoints e JOIN accounts a ON a.id = e.account_id
         WHERE a.public_id = $1 AND e.enabled ORDER BY e.created_at, e.id",
        ENDPOINT_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ")
    ))
    .bind(account_public_id)
    .fetch_all(pool)
    .await
}

/// One endpoint of the account; another account's is `None`, like a missing one.
pub async fn endpoint(pool: &SqlitePool, account_id: i64, id: &str) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE account_id = $1 AND id = $2"))
        .bind(account_id)
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn count_endpoints(pool: &SqlitePool, account_id: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(pool)
        .await
}

/// Fields written on create and update.
pub struct EndpointFields<'a> {
    pub url: &'a str,
    pub events_json: &'a str,
    pub enabled: bool,
}

pub async fn insert_endpoint(
    pool: &SqlitePool,
    id: &str,
    account_id: i64,
    fields: &EndpointFields<'_>,
    secret: &str,
    hint: &str,
    now: i64,
) -> Result<EndpointRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO webhook_endpoints (id, account_id, url, events, enabled, secret, hint, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(id)
    .bind(account_id)
    .bind(fields.url)
    .bind(fields.events_json)
    .bind(fields.enabled)
    .bind(secret)
    .bind(hint)
    .bind(now)
    .fetch_one(pool)
    .await
}

pub async fn update_endpoint(
    pool: &SqlitePool,
    account_id: i64,
    id: &str,
    fields: &EndpointFields<'_>,
    now: i64,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE webhook_endpoints SET url = $3, events = $4, enabled = $5, updated_at = $6
         WHERE account_id = $1 AND id = $2 RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(account_id)
    .bind(id)
    .bind(fields.url)
    .bind(fields.events_json)
    .bind(fields.enabled)
    .bind(now)
    .fetch_optional(pool)
    .await
}

pub async fn set_endpoint_secret(
    pool: &SqlitePool,
    account_id: i64,
    id: &str,
    secret: &str,
    hint: &str,
    now: i64,
) -> Result<Option<EndpointRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE webhook_endpoints SET secret = $3, hint = $4, updated_at = $5
         WHERE account_id = $1 AND id = $2 RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(account_id)
    .bind(id)
    .bind(secret)
    .bind(hint)
    .bind(now)
    .fetch_optional(pool)
    .await
}

/// Deletes an endpoint and its deliveries; false when it was not the account's.
pub async fn delete_endpoint(pool: &SqlitePool, account_id: i64, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE account_id = $1 AND id = $2")
        .bind(account_id)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

#[derive(Clone, Debug, FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
}

const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, event_type, payload, status, attempts, created_at,
    next_attempt_at, last_attempt_at, last_status, last_error, last_latency_ms";

/// Queues one delivery, due now.
pub async fn enqueue(
    pool: &SqlitePool,
    endpoint_id: &str,
    event_id: &str,
    event_type: &str,
    payload: &str,
    now_ms: i64,
) -> Result<DeliveryRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, payload, status, created_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $5) RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(endpoint_id)
    .bind(event_id)
    .bind(event_type)
    .bind(payload)
    .bind(now_ms)
    .fetch_one(pool)
    .await
}

/// The endpoint's newest deliveries first.
pub async fn deliveries(pool: &SqlitePool, endpoint_id: &str, limit: i64) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(endpoint_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn delivery(pool: &SqlitePool, endpoint_id: &str, id: i64) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 AND id = $2"))
        .bind(endpoint_id)
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A due delivery with what sending it needs.
#[derive(Clone, Debug, FromRow)]
pub struct DueDelivery {
    pub id: i64,
    pub endpoint_id: String,
    pub event_type: String,
    pub payload: String,
    pub attempts: i64,
    pub created_at: i64,
    pub url: String,
    pub secret: String,
}

/// The head of each endpoint's queue (its oldest pending delivery), when it is due by `now_ms`:
/// one endpoint's deliveries go out in order, one at a time.
pub async fn due(pool: &SqlitePool, now_ms: i64, limit: i64) -> Result<Vec<DueDelivery>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.id, d.endpoint_id, d.event_type, d.payload, d.attempts, d.created_at, e.url, e.secret
         FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
         WHERE d.status = 'pending'
           AND d.id = (SELECT MIN(id) FROM webhook_deliveries WHERE endpoint_id = d.endpoint_id AND status = 'pending')
           AND d.next_attempt_at <= $1
         ORDER BY d.next_attempt_at LIMIT $2",
    )
    .bind(now_ms)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// When the next queue head is due, if any is pending.
pub async fn next_due_at(pool: &SqlitePool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'")
        .fetch_one(pool)
        .await
}

/// What one attempt gave.
pub struct Attempt<'a> {
    pub at_ms: i64,
    pub status: Option<i64>,
    pub error: Option<&'a str>,
    pub latency_ms: i64,
    /// `pending` (with `next_attempt_at`), `delivered` or `failed`.
    pub outcome: &'a str,
    pub next_attempt_at: Option<i64>,
}

pub async fn record_attempt(pool: &SqlitePool, id: i64, attempt: &Attempt<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = $2, last_status = $3,
             last_error = $4, last_latency_ms = $5, status = $6, next_attempt_at = $7
         WHERE id = $1",
    )
    .bind(id)
    .bind(attempt.at_ms)
    .bind(attempt.status)
    .bind(attempt.error)
    .bind(attempt.latency_ms)
    .bind(attempt.outcome)
    .bind(attempt.next_attempt_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Keeps the newest `keep` deliveries of each endpoint that are done (delivered or failed).
pub async fn prune(pool: &SqlitePool, keep: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM webhook_deliveries AS d WHERE d.status != 'pending'
           AND (SELECT COUNT(*) FROM webhook_deliveries x WHERE x.endpoint_id = d.endpoint_id AND x.id > d.id) >= $1",
    )
    .bind(keep)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
