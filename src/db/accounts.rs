//! The `accounts` table.

use sqlx::{FromRow, SqlitePool};

/// One row of `accounts`.
#[derive(Clone, Debug, FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub public_id: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
}

/// Inserts an account; fails with a unique violation when the email or public id is taken.
pub async fn insert(
    pool: &SqlitePool,
    public_id: &str,
    email: &str,
    password_hash: &str,
    now: i64,
) -> Result<AccountRow, sqlx::Error> {
    sqlx::query_as::<_, AccountRow>(
        "INSERT INTO accounts (public_id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)
         RETURNING id, public_id, email, password_hash, created_at",
    )
    .bind(public_id)
    .bind(email)
    .bind(password_hash)
    .bind(now)
    .fetch_one(pool)
    .await
}

/// Finds an account by its (already lower-cased) email.
pub async fn find_by_email(pool: &SqlitePool, email: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as::<_, AccountRow>(
        "SELECT id, public_id, email, password_hash, created_at FROM accounts WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(pool)
    .await
}

/// Whether an email is already registered.
pub async fn email_exists(pool: &SqlitePool, email: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM accounts WHERE email = $1").bind(email).fetch_optional(pool).await?;
    Ok(found.is_some())
}

/// Whether an account has this public id (the one in stream URLs).
pub async fn public_id_exists(pool: &SqlitePool, public_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM accounts WHERE public_id = $1").bind(public_id).fetch_optional(pool).await?;
    Ok(found.is_some())
}

/// Stores a new password hash.
pub async fn set_password_hash(pool: &SqlitePool, id: i64, password_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes an account; its sessions, tokens, API keys and recording rows go with it (`ON DELETE
/// CASCADE`).
pub async fn delete(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM accounts WHERE id = $1").bind(id).execute(pool).await?;
    Ok(())
}
