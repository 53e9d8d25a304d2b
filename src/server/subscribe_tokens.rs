//! Subscribe tokens (`fcs_…`): validation and storage, shared by the JSON API and the pages. They
//! let their bearer watch streams whose publish token asks for a secure viewer (README "Viewer
//! tokens"). Every function takes the acting account, so one account never reaches another's.

use sqlx::SqlitePool;

use super::{
    error::ApiError,
    secrets, timestamps,
    tokens::{expiry, origins_json, parse_json_list, streams_json},
};
use crate::{
    db::{
        self,
        accounts::AccountRow,
        subscribe_tokens::{SubscribeTokenFields, SubscribeTokenRow},
    },
    model::{
        check_max_viewers, normalize_label, NewSubscribeToken, SubscribeTokenPatch, SubscribeTokenView,
        SubscribeTokenWithSecret,
    },
};

fn not_found() -> ApiError {
    ApiError::NotFound("no such subscribe token".into())
}

/// The account's subscribe tokens, newest first.
pub async fn list(pool: &SqlitePool, account: &AccountRow) -> Result<Vec<SubscribeTokenView>, ApiError> {
    Ok(db::subscribe_tokens::list(pool, account.id).await?.iter().map(view).collect())
}

/// One of the account's subscribe tokens.
pub async fn get(pool: &SqlitePool, account: &AccountRow, id: &str) -> Result<SubscribeTokenView, ApiError> {
    db::subscribe_tokens::get(pool, account.id, id).await?.as_ref().map(view).ok_or_else(not_found)
}

/// Creates a subscribe token and returns it with its secret (the only time it is seen).
pub async fn create(
    pool: &SqlitePool,
    account: &AccountRow,
    input: NewSubscribeToken,
) -> Result<SubscribeTokenWithSecret, ApiError> {
    let now = db::now_unix();
    let label = normalize_label(&input.label)?;
    let streams = streams_json(&input.streams)?;
    let expires_at = expiry(input.expires_at.as_deref(), now)?;
    let origins = origins_json("allowedOrigins", input.allowed_origins.as_deref())?;
    let fields = SubscribeTokenFields {
        label: &label,
        streams_json: &streams,
        enabled: input.enabled.unwrap_or(true),
        expires_at,
        allowed_origins_json: origins.as_deref(),
        max_viewers: check_max_viewers(input.max_viewers)?,
    };
    let minted = secrets::mint(secrets::SUBSCRIBE_TOKEN_PREFIX)?;
    let row =
        db::subscribe_tokens::insert(pool, &secrets::new_id(), account.id, &fields, &minted.hash, &minted.hint, now)
            .await?;
    Ok(SubscribeTokenWithSecret { token: view(&row), secret: minted.secret })
}

/// Applies a partial update; absent fields keep their values. Nothing is written on error. A
/// lower `maxViewers` turns away new viewers; those watching stay.
pub async fn update(
    pool: &SqlitePool,
    account: &AccountRow,
    id: &str,
    patch: SubscribeTokenPatch,
) -> Result<SubscribeTokenView, ApiError> {
    let now = db::now_unix();
    let current = db::subscribe_tokens::get(pool, account.id, id).await?.ok_or_else(not_found)?;
    let label = match &patch.label {
        Some(label) => normalize_label(label)?,
        None => current.label,
    };
    let streams = match &patch.streams {
        Some(streams) => streams_json(streams)?,
        None => current.streams,
    };
    let expires_at = match &patch.expires_at {
        Some(expires_at) => expiry(expires_at.as_deref(), now)?,
        None => current.expires_at,
    };
    let origins = match &patch.allowed_origins {
        Some(origins) => origins_json("allowedOrigins", origins.as_deref())?,
        None => current.allowed_origins,
    };
    let max_viewers = match patch.max_viewers {
        Some(max) => check_max_viewers(max)?,
        None => current.max_viewers,
    };
    let fields = SubscribeTokenFields {
        label: &label,
        streams_json: &streams,
        enabled: patch.enabled.unwrap_or(current.enabled),
        expires_at,
        allowed_origins_json: origins.as_deref(),
        max_viewers,
    };
    let row = db::subscribe_tokens::update(pool, account.id, id, &fields, now).await?.ok_or_else(not_found)?;
    Ok(view(&row))
}

/// Gives the token a new secret; the old one stops working at once. Viewer grants already made
/// from it stay valid until they expire (minutes): they name the token, not its secret.
pub async fn rotate(pool: &SqlitePool, account: &AccountRow, id: &str) -> Result<SubscribeTokenWithSecret, ApiError> {
    let minted = secrets::mint(secrets::SUBSCRIBE_TOKEN_PREFIX)?;
    let row = db::subscribe_tokens::set_secret(pool, account.id, id, &minted.hash, &minted.hint, db::now_unix())
        .await?
        .ok_or_else(not_found)?;
    Ok(SubscribeTokenWithSecret { token: view(&row), secret: minted.secret })
}

/// Deletes a subscribe token for good: its secret and the viewer grants made from it are
/// refused from the next offer on.
pub async fn delete(pool: &SqlitePool, account: &AccountRow, id: &str) -> Result<(), ApiError> {
    if db::subscribe_tokens::delete(pool, account.id, id).await? {
        Ok(())
    } else {
        Err(not_found())
    }
}

/// The stored row as the API shows it.
pub fn view(row: &SubscribeTokenRow) -> SubscribeTokenView {
    SubscribeTokenView {
        id: row.id.clone(),
        label: row.label.clone(),
        streams: parse_json_list(&row.streams),
        enabled: row.enabled,
        expires_at: row.expires_at.map(timestamps::to_rfc3339),
        allowed_origins: row.allowed_origins.as_deref().map(parse_json_list),
        max_viewers: row.max_viewers,
        created_at: timestamps::to_rfc3339(row.created_at),
        updated_at: timestamps::to_rfc3339(row.updated_at),
        last_used_at: row.last_used_at.map(timestamps::to_rfc3339),
        hint: row.hint.clone(),
    }
}
