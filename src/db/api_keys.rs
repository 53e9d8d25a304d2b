//! The `api_keys` table.

use sqlx::{FromRow, SqlitePool};

use super::accounts::AccountRow;

/// One row of `api_keys`.
#[derive(Clone, Debug, FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub account_id: i64,
    pub label: String,
    pub hint: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str = "id, account_id, label, hint, created_at, last_used_at";

pub async fn insert(
    pool: &SqlitePool,
    id: &str,
    account_id: i64,
    label: &str,
    secret_hash: &str,
    hint: &str,
    now: i64,
) -> Result<ApiKeyRow, sqlx::Error> {
    sqlx::query_as::<_, ApiKeyRow>(&format!(
        "INSERT INTO api_keys (id, account_id, label, secret_hash, hint, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(account_id)
    .bind(label)
    .bind(secret_hash)
    .bind(hint)
    .bind(now)
    .fetch_one(pool)
    .await
}

/// The account's keys, newest first.
pub async fn list(pool: &SqlitePool, account_id: i64) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as::<_, ApiKeyRow>(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY created_at DESC, id"
    ))
    .bind(account_id)
    .fetch_all(pool)
    .await
}

/// Revokes a key; false when it was not the account's.
pub async fn delete(pool: &SqlitePool, account_id: i64, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM api_keys WHERE account_id = $1 AND id = $2")
        .bind(account_id)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The account a key belongs to, by the key's secret hash (one indexed lookup), marking the key
/// used.
pub async fn account_by_secret_hash(
    pool: &SqlitePool,
    secret_hash: &str,
    now: i64,
) -> Result<Option<AccountRow>, sqlx::Error> {
    let account = sqlx::query_as::<_, AccountRow>(concat!(
        "SELECT ",
        super::accounts::account_columns!(),
        "
         FROM api_keys k JOIN accounts a ON a.id = k.account_id
         WHERE k.secret_hash = $1"
    ))
    .bind(secret_hash)
    .fetch_optional(pool)
    .await?;
    if account.is_some() {
        // Minute resolution is enough for "last used" and spares a write per request. Best
        // effort: a database that cannot write (a full disk) must not fail every API call.
        let touched = sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 WHERE secret_hash = $1 AND COALESCE(last_used_at, 0) < $2 - 60",
        )
        .bind(secret_hash)
        .bind(now)
        .execute(pool)
        .await;
        if let Err(err) = touched {
            tracing::warn!(%err, "cannot note an API key's last use");
        }
    }
    Ok(account)
}
