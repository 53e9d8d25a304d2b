//! Sign-up invites (README "Sign-up and the operator"): one-time codes an operator hands to the
//! people who may join an instance with `--signup invite`, made from the API, the `/admin` page or
//! `ferrocast invite`.

use sqlx::SqlitePool;

use super::{error::ApiError, secrets, timestamps};
use crate::{
    db::{self, invites::InviteRow},
    model::{InviteView, InviteWithCode},
};

/// How long an invite stays usable unless its maker says otherwise: a week.
pub const DEFAULT_LIFETIME_SECS: u64 = 7 * 24 * 3600;
pub const MIN_LIFETIME_SECS: u64 = 60;
pub const MAX_LIFETIME_SECS: u64 = 30 * 24 * 3600;
/// Longest note, in characters.
pub const NOTE_MAX_CHARS: usize = 200;

/// Makes an invite; `created_by` is the operator's account (`None` from the command line).
pub async fn make(
    pool: &SqlitePool,
    public_url: &str,
    created_by: Option<i64>,
    expires_in: Option<u64>,
    note: Option<&str>,
) -> Result<InviteWithCode, ApiError> {
    let lifetime = expires_in.unwrap_or(DEFAULT_LIFETIME_SECS);
    if !(MIN_LIFETIME_SECS..=MAX_LIFETIME_SECS).contains(&lifetime) {
        return Err(ApiError::invalid(
            "expiresIn",
            format!("an invite lasts from {MIN_LIFETIME_SECS} s to {MAX_LIFETIME_SECS} s (30 days)"),
        ));
    }
    let note = note.unwrap_or_default().trim();
    if note.chars().count() > NOTE_MAX_CHARS || note.chars().any(char::is_control) {
        return Err(ApiError::invalid("note", format!("a note is at most {NOTE_MAX_CHARS} characters on one line")));
    }
    let minted = secrets::mint(secrets::INVITE_PREFIX)?;
    let id = secrets::new_id();
    let now = db::now_unix();
    let expires_at = now + lifetime as i64;
    let row =
        db::invites::NewInvite { id: &id, code_hash: &minted.hash, hint: &minted.hint, note, created_by, expires_at };
    db::invites::insert(pool, &row, now).await?;
    let invite = db::invites::find(pool, &id).await?.ok_or_else(|| ApiError::Internal("invite vanished".into()))?;
    tracing::info!(invite = %id, by = ?created_by, "invite made");
    Ok(InviteWithCode {
        url: signup_url(public_url, &minted.secret),
        expires_at: timestamps::to_rfc3339(expires_at),
        code: minted.secret,
        invite: view(invite, now),
    })
}

/// Where an invite's bearer signs up.
pub fn signup_url(public_url: &str, code: &str) -> String {
    format!("{public_url}/signup?invite={code}")
}

pub async fn list(pool: &SqlitePool) -> Result<Vec<InviteView>, ApiError> {
    let now = db::now_unix();
    Ok(db::invites::list(pool).await?.into_iter().map(|row| view(row, now)).collect())
}

/// Withdraws an invite named by its id or its code (used or not: a used one leaves the list).
pub async fn withdraw(pool: &SqlitePool, id_or_code: &str) -> Result<(), ApiError> {
    let key =
        if id_or_code.starts_with(secrets::INVITE_PREFIX) { secrets::hash(id_or_code) } else { id_or_code.to_owned() };
    if db::invites::delete(pool, &key).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound("no such invite".into()))
    }
}

fn view(row: InviteRow, now: i64) -> InviteView {
    let state = match (row.used_at, row.expires_at <= now) {
        (Some(_), _) => "used",
        (None, true) => "expired",
        (None, false) => "open",
    };
    InviteView {
        id: row.id,
        hint: row.hint,
        note: row.note,
        created_at: timestamps::to_rfc3339(row.created_at),
        expires_at: timestamps::to_rfc3339(row.expires_at),
        used_at: row.used_at.map(timestamps::to_rfc3339),
        used_by: row.used_by_email,
        state: state.to_owned(),
    }
}
