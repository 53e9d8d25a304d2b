//! The `sessions` table: one row per logged-in browser, keyed by the hash of the cookie value.

use sqlx::SqlitePool;

use super::accounts::AccountRow;

/// Stores a new session.
pub async fn insert(
    pool: &SqlitePool,
    id_hash: &str,
    account_id: i64,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO sessions (id_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(id_hash)
        .bind(account_id)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok(())
}

/// The account of a session that exists and has not expired.
pub async fn find_account(pool: &SqlitePool, id_hash: &str, now: i64) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as::<_, AccountRow>(concat!(
        "SELECT ",
        super::accounts::account_columns!(),
        "
         FROM sessions s JOIN accounts a ON a.id = s.account_id
         WHERE s.id_hash = $1 AND s.expires_at > $2"
    ))
    .bind(id_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
}

/// Revokes one session (logout). Deleting a missing session is not an error.
pub async fn delete(pool: &SqlitePool, id_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(pool).await?;
    Ok(())
}

/// Drops sessions past their expiry; called now and then so the table does not grow forever.
pub async fn delete_expired(pool: &SqlitePool, now: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(pool).await?;
    Ok(done.rows_affected())
}

/// Ends every session of an account but `keep` (the one asking, when it should stay logged
/// in); answers the hashes of the ended ones.
pub async fn delete_for_account(
    pool: &SqlitePool,
    account_id: i64,
    keep: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("DELETE FROM sessions WHERE account_id = $1 AND ($2 IS NULL OR id_hash <> $2) RETURNING id_hash")
        .bind(account_id)
        .bind(keep)
        .fetch_all(pool)
        .await
}
