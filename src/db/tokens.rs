//! The `publish_tokens` table.

use sqlx::{FromRow, Sqlite, SqlitePool};

/// One row of `publish_tokens`, lists still as JSON text.
#[derive(Clone, Debug, FromRow)]
pub struct TokenRow {
    pub id: String,
    pub account_id: i64,
    pub label: String,
    pub streams: String,
    pub enabled: bool,
    pub record: bool,
    pub multisource: bool,
    pub expires_at: Option<i64>,
    pub allowed_origins: Option<String>,
    pub embed_origins: Option<String>,
    pub secure_viewer: bool,
    pub hint: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
}

/// A token's owner as the publish rule needs it.
#[derive(Clone, Debug, FromRow)]
pub struct TokenWithOwner {
    #[sqlx(flatten)]
    pub token: TokenRow,
    pub account_public_id: String,
    /// The owner was disabled by the operator: the token publishes nothing.
    pub account_disabled: bool,
}

const COLUMNS: &str = "id, account_id, label, streams, enabled, record, multisource, expires_at, allowed_origins, \
                       embed_origins, secure_viewer, hint, created_at, updated_at, last_used_at";

/// Fields written on create and update.
pub struct TokenFields<'a> {
    pub label: &'a str,
    pub streams_json: &'a str,
    pub enabled: bool,
    pub record: bool,
    pub multisource: bool,
    pub expires_at: Option<i64>,
    pub allowed_origins_json: Option<&'a str>,
    pub embed_origins_json: Option<&'a str>,
    pub secure_viewer: bool,
}

pub async fn insert(
    pool: &SqlitePool,
    id: &str,
    account_id: i64,
    fields: &TokenFields<'_>,
    secret_hash: &str,
    hint: &str,
    now: i64,
) -> Result<TokenRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO publish_tokens (id, account_id, label, streams, enabled, record, multisource, expires_at,
             allowed_origins, embed_origins, secure_viewer, secret_hash, hint, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)
         RETURNING {COLUMNS}"
    );
    let query = sqlx::query_as::<_, TokenRow>(&sql).bind(id).bind(account_id);
    bind_fields(query, fields).bind(secret_hash).bind(hint).bind(now).fetch_one(pool).await
}

type TokenQuery<'q> = sqlx::query::QueryAs<'q, Sqlite, TokenRow, <Sqlite as sqlx::Database>::Arguments<'q>>;

/// Binds the editable fields as the next nine parameters (the same order in insert and update).
fn bind_fields<'q>(query: TokenQuery<'q>, fields: &TokenFields<'q>) -> TokenQuery<'q> {
    query
        .bind(fields.label)
        .bind(fields.streams_json)
        .bind(fields.enabled)
        .bind(fields.record)
        .bind(fields.multisource)
        .bind(fields.expires_at)
        .bind(fields.allowed_origins_json)
        .bind(fields.embed_origins_json)
        .bind(fields.secure_viewer)
}

/// The account's tokens, newest first.
pub async fn list(pool: &SqlitePool, account_id: i64) -> Result<Vec<TokenRow>, sqlx::Error> {
    sqlx::query_as::<_, TokenRow>(&format!(
        "SELECT {COLUMNS} FROM publish_tokens WHERE account_id = $1 ORDER BY created_at DESC, id"
    ))
    .bind(account_id)
    .fetch_all(pool)
    .await
}

/// One token of the account; another account's token is `None`, exactly like a missing one.
pub async fn get(pool: &SqlitePool, account_id: i64, id: &str) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as::<_, TokenRow>(&format!("SELECT {COLUMNS} FROM publish_tokens WHERE account_id = $1 AND id = $2"))
        .bind(account_id)
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Replaces every editable field; `None` when the token is not the account's.
pub async fn update(
    pool: &SqlitePool,
    account_id: i64,
    id: &str,
    fields: &TokenFields<'_>,
    now: i64,
) -> Result<Option<TokenRow>, sqlx::Error> {
    let sql = format!(
        "UPDATE publish_tokens SET label = $3, streams = $4, enabled = $5, record = $6, multisource = $7,
             expires_at = $8, allowed_origins = $9, embed_origins = $10, secure_viewer = $11, updated_at = $12
         WHERE id = $1 AND account_id = $2
         RETURNING {COLUMNS}"
    );
    let query = sqlx::query_as::<_, TokenRow>(&sql).bind(id).bind(account_id);
    bind_fields(query, fields).bind(now).fetch_optional(pool).await
}

/// Swaps the secret; the old one stops working at once.
pub async fn set_secret(
    pool: &SqlitePool,
    account_id: i64,
    id: &str,
    secret_hash: &str,
    hint: &str,
    now: i64,
) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as::<_, TokenRow>(&format!(
        "UPDATE publish_tokens SET secret_hash = $3, hint = $4, updated_at = $5
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

/// Deletes a token for good; false when it was not the account's.
pub async fn delete(pool: &SqlitePool, account_id: i64, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM publish_tokens WHERE account_id = $1 AND id = $2")
        .bind(account_id)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A token row with its owner's public id, for the publish rule.
const WITH_OWNER: &str = "SELECT t.id, t.account_id, t.label, t.streams, t.enabled, t.record, t.multisource,
        t.expires_at, t.allowed_origins, t.embed_origins, t.secure_viewer, t.hint, t.created_at, t.updated_at, t.last_used_at,
        a.public_id AS account_public_id, a.disabled_at IS NOT NULL AS account_disabled
     FROM publish_tokens t JOIN accounts a ON a.id = t.account_id";

/// The token whose secret hashes to `secret_hash`, with its account's public id: one lookup
/// through the UNIQUE index.
pub async fn find_by_secret_hash(pool: &SqlitePool, secret_hash: &str) -> Result<Option<TokenWithOwner>, sqlx::Error> {
    sqlx::query_as::<_, TokenWithOwner>(&format!("{WITH_OWNER} WHERE t.secret_hash = $1"))
        .bind(secret_hash)
        .fetch_optional(pool)
        .await
}

/// A token by id with its owner's public id (for publish grants minted from a session).
pub async fn find_with_owner(pool: &SqlitePool, id: &str) -> Result<Option<TokenWithOwner>, sqlx::Error> {
    sqlx::query_as::<_, TokenWithOwner>(&format!("{WITH_OWNER} WHERE t.id = $1")).bind(id).fetch_optional(pool).await
}

/// Records that a token was just used to publish.
pub async fn touch(pool: &SqlitePool, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE publish_tokens SET last_used_at = $2 WHERE id = $1").bind(id).bind(now).execute(pool).await?;
    Ok(())
}

/// What one token says about who may watch the streams it covers.
#[derive(Clone, Debug, FromRow)]
pub struct ViewerRule {
    pub streams: String,
    pub embed_origins: Option<String>,
    pub secure_viewer: bool,
}

/// The viewer rules of an account's tokens (by the account's public id) that restrict viewing:
/// those with an embed list or the secure viewer flag.
pub async fn viewer_rules(pool: &SqlitePool, account_public_id: &str) -> Result<Vec<ViewerRule>, sqlx::Error> {
    sqlx::query_as::<_, ViewerRule>(
        "SELECT t.streams, t.embed_origins, t.secure_viewer FROM publish_tokens t JOIN accounts a ON a.id = t.account_id
         WHERE a.public_id = $1 AND (t.embed_origins IS NOT NULL OR t.secure_viewer)",
    )
    .bind(account_public_id)
    .fetch_all(pool)
    .await
}
