//! The `invites` table: one-time sign-up codes made by an operator (or the command line).

use sqlx::{FromRow, SqlitePool};

/// One row of `invites`, with the email of the account that used it.
#[derive(Clone, Debug, FromRow)]
pub struct InviteRow {
    pub id: String,
    pub hint: String,
    pub note: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub used_by_email: Option<String>,
}

const COLUMNS: &str = "i.id, i.hint, i.note, i.created_at, i.expires_at, i.used_at,
     (SELECT email FROM accounts a WHERE a.id = i.used_by) AS used_by_email";

/// What an invite is fit for at sign-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteState {
    Unknown,
    Used,
    Expired,
    Usable,
}

pub struct NewInvite<'a> {
    pub id: &'a str,
    pub code_hash: &'a str,
    pub hint: &'a str,
    pub note: &'a str,
    pub created_by: Option<i64>,
    pub expires_at: i64,
}

pub async fn insert(pool: &SqlitePool, invite: &NewInvite<'_>, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invites (id, code_hash, hint, note, created_by, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(invite.id)
    .bind(invite.code_hash)
    .bind(invite.hint)
    .bind(invite.note)
    .bind(invite.created_by)
    .bind(now)
    .bind(invite.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Every invite, newest first (the instance has few: one per person asked to join).
pub async fn list(pool: &SqlitePool) -> Result<Vec<InviteRow>, sqlx::Error> {
    sqlx::query_as::<_, InviteRow>(&format!("SELECT {COLUMNS} FROM invites i ORDER BY i.created_at DESC, i.id"))
        .fetch_all(pool)
        .await
}

pub async fn find(pool: &SqlitePool, id: &str) -> Result<Option<InviteRow>, sqlx::Error> {
    sqlx::query_as::<_, InviteRow>(&format!("SELECT {COLUMNS} FROM invites i WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Deletes the invite with this id or this code's hash; whether there was one.
pub async fn delete(pool: &SqlitePool, id_or_code_hash: &str) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM invites WHERE id = $1 OR code_hash = $1").bind(id_or_code_hash).execute(pool).await?;
    Ok(done.rows_affected() > 0)
}

/// Why an invite cannot be used now (after [`take`] found nothing to take).
pub async fn state(pool: &SqlitePool, code_hash: &str, now: i64) -> Result<InviteState, sqlx::Error> {
    let row: Option<(Option<i64>, i64)> =
        sqlx::query_as("SELECT used_at, expires_at FROM invites WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(pool)
            .await?;
    Ok(match row {
        None => InviteState::Unknown,
        Some((Some(_), _)) => InviteState::Used,
        Some((None, expires_at)) if expires_at <= now => InviteState::Expired,
        Some(_) => InviteState::Usable,
    })
}
