//! The `subscribe_tokens` table.

use sqlx::{FromRow, Sqlite, SqlitePool};

/// One row of `subscribe_tokens`, lists still as JSON text.
#[derive(Clone, Debug, FromRow)]
pub struct SubscribeTokenRow {
    pub id: String,
    pub account_id: i64,
    pub label: String,
    pub streams: String,
    pub enabled: bool,
    pub expires_at: Option<i64>,
    pub allowed_origins: Option<String>,
    pub max_viewers: Option<i64>,
    pub hint: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
}

const COLUMNS: &str =
    "id, account_id, label, streams, enabled, expires_at, allowed_origins, max_viewers, hint, created_at, updated_at,
     last_used_at";

/// Fields written on create and update.
pub struct SubscribeTokenFields<'a> {
    pub label: &'a str,
    pub streams_json: &'a str,
    pub enabled: bool,
    pub expires_at: Option<i64>,
    pub allowed_origins_json: Option<&'a str>,
    pub max_viewers: Option<i64>,
}

pub async fn insert(
    pool: &SqlitePool,
    id: &str,
    account_id: i64,
    fields: &SubscribeTokenFields<'_>,
    secret_hash: &str,
    hint: &str,
    now: i64,
) -> Result<SubscribeTokenRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO subscribe_tokens (id, account_id, label, streams, enabled, expires_at, allowed_origins,
             max_viewers, secret_hash, hint, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         RETURNING {COLUMNS}"
    );
    let query = sqlx::query_as::<_, SubscribeTokenRow>(&sql).bind(id).bind(account_id);
    bind_fields(query, fields).bind(secret_hash).bind(hint).bind(now).fetch_one(pool).await
}

type RowQuery<'q> = sqlx::query::QueryAs<'q, Sqlite, SubscribeTokenRow, <Sqlite as sqlx::Database>::Arguments<'q>>;

/// Binds the editable fields as the next six parameters (the same order in insert and update).
fn bind_fields<'q>(query: RowQuery<'q>, fields: &SubscribeTokenFields<'q>) -> RowQuery<'q> {
    query
        .bind(fields.label)
        .bind(fields.streams_json)
        .bind(fields.enabled)
        .bind(fields.expires_at)
        .bind(fields.allowed_origins_json)
        .bind(fields.max_viewers)
}

/// The account's subscribe tokens, newest first.
pub async fn list(pool: &SqlitePool, account_id: i64) -> Result<Vec<SubscribeTokenRow>, sqlx::Error> {
    sqlx::query_as::<_, SubscribeTokenRow>(&format!(
        "SELECT {COLUMNS} FROM subscribe_tokens WHERE account_id = $1 ORDER BY created_at DESC, id"
    ))
    .bind(account_id)
    .fetch_all(pool)
    .await
}

/// One subscribe token of the account; another account's is `None`, exactly like a missing one.
pub async fn get(pool: &SqlitePool, account_id: i64, id: &str) -> Result<Option<SubscribeTokenRow>, sqlx::Error> {
    sqlx::query_as::<_, SubscribeTokenRow>(&format!(
        "SELECT {COLUMNS} FROM subscribe_tokens WHERE account_id = $1 AND id = $2"
    ))
    .bind(account_id)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// A subscribe token with its owner's public id, for the viewer check.
#[derive(Clone, Debug, FromRow)]
pub struct SubscribeTokenWithOwner {
    #[sqlx(flatten)]
    pub token: SubscribeTokenRow,
    pub account_public_id: String,
}

const WITH_OWNER: &str = "SELECT t.id, t.account_id, t.label, t.streams, t.enabled, t.expires_at, t.allowed_origins,
        t.max_viewers, t.hint, t.created_at, t.updated_at, t.last_used_at, a.public_id AS account_public_id
     FROM subscribe_tokens t JOIN accounts a ON a.id = t.account_id";

/// A subscribe token by id, whoever owns it (a viewer grant names its token).
pub async fn find_with_owner(pool: &SqlitePool, id: &str) -> Result<Option<SubscribeTokenWithOwner>, sqlx::Error> {
    sqlx::query_as::<_, SubscribeTokenWithOwner>(&format!("{WITH_OWNER} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The subscribe token whose secret hashes to `secret_hash`: one lookup through the UNIQUE index.
pub async fn find_by_secret_hash(
    pool: &SqlitePool,
    secret_hash: &str,
) -> Result<Option<SubscribeTokenWithOwner>, sqlx::Error> {
    sqlx::query_as::<_, SubscribeTokenWithOwner>(&format!("{WITH_OWNER} WHERE t.secret_hash = $1"))
        .bind(secret_hash)
        .fetch_optional(pool)
        .await
}

/// Replaces every editable field; `None` when the token is not the account's.
pub async fn update(
    pool: &SqlitePool,
    account_id: i64,
    id: &str,
    fields: &SubscribeTokenFields<'_>,
    now: i64,
) -> Result<Option<SubscribeTokenRow>, sqlx::Error> {
    let sql = format!(
        "UPDATE subscribe_tokens SET label = $3, streams = $4, enabled = $5, expires_at = $6, allowed_origins = $7,
             max_viewers = $8, updated_at = $9
         WHERE id = $1 AND account_id = $2
         RETURNING {COLUMNS}"
    );
    let query = sqlx::query_as::<_, SubscribeTokenRow>(&sql).bind(id).bind(account_id);
    bind_fields(query, fields).bind(now).fetch_optional(pool).await
}

/// Deletes a subscribe token for good; false when it was not the account's.
pub async fn delete(pool: &SqlitePool, account_id: i64, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM subscribe_tokens WHERE account_id = $1 AND id = $2")
        .bind(account_id)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Records that a token was just used to watch.
pub async fn touch(pool: &SqlitePool, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE subscribe_tokens SET last_used_at = $2 WHERE id = $1").bind(id).bind(now).execute(pool).await?;
    Ok(())
}

/// Swaps the secret; the old one stops working at once.
pub async fn set_secret(
    pool: &SqlitePool,
    account_id: i64,
    id: &str,
    secret_hash: &str,
    hint: &str,
    now: i64,
) -> Result<Option<SubscribeTokenRow>, sqlx::Error> {
    sqlx::query_as::<_, SubscribeTokenRow>(&format!(
        "UPDATE subscribe_tokens SET secret_hash = $3, hint = $4, updated_at = $5
         WHERE account_id = $1 AND id = $2
         RETURNING {COLUMNS}"
    ))
    .bind(account_id)
    .bind(id)
    .bind(secret_hash)
    .bind(hint)
    .bind(now)
    .fetch_optional(pool)
    .await
}
