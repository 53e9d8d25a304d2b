//! Publish tokens and API keys: validation and storage, shared by the JSON API and the pages.
//! Every function takes the acting account, so one account can never reach another's rows.

use sqlx::SqlitePool;
use url::Url;

use super::{error::ApiError, secrets, timestamps};
use crate::{
    db::{
        self,
        accounts::AccountRow,
        api_keys::ApiKeyRow,
        tokens::{TokenFields, TokenRow},
    },
    model::{
        normalize_label, normalize_streams, ApiKeyView, ApiKeyWithSecret, NewToken, TokenPatch, TokenView,
        TokenWithSecret, ORIGINS_PER_TOKEN_MAX,
    },
    sfu::SfuHandle,
};

/// A token's editable fields after validation.
struct ValidToken {
    label: String,
    streams_json: String,
    enabled: bool,
    record: bool,
    multisource: bool,
    expires_at: Option<i64>,
    allowed_origins_json: Option<String>,
    embed_origins_json: Option<String>,
    secure_viewer: bool,
}

impl ValidToken {
    fn fields(&self) -> TokenFields<'_> {
        TokenFields {
            label: &self.label,
            streams_json: &self.streams_json,
            enabled: self.enabled,
            record: self.record,
            multisource: self.multisource,
            expires_at: self.expires_at,
            allowed_origins_json: self.allowed_origins_json.as_deref(),
            embed_origins_json: self.embed_origins_json.as_deref(),
            secure_viewer: self.secure_viewer,
        }
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such token".into())
}

/// The account's tokens, newest first.
pub async fn list(pool: &SqlitePool, account: &AccountRow) -> Result<Vec<TokenView>, ApiError> {
    Ok(db::tokens::list(pool, account.id).await?.iter().map(view).collect())
}

/// One of the account's tokens.
pub async fn get(pool: &SqlitePool, account: &AccountRow, id: &str) -> Result<TokenView, ApiError> {
    db::tokens::get(pool, account.id, id).await?.as_ref().map(view).ok_or_else(not_found)
}

/// Creates a token and returns it with its secret (the only time the secret is seen).
pub async fn create(pool: &SqlitePool, account: &AccountRow, input: NewToken) -> Result<TokenWithSecret, ApiError> {
    let now = db::now_unix();
    let valid = ValidToken {
        label: normalize_label(&input.label)?,
        streams_json: streams_json(&input.streams)?,
        enabled: input.enabled.unwrap_or(true),
        record: input.record,
        multisource: input.multisource,
        expires_at: expiry(input.expires_at.as_deref(), now)?,
        allowed_origins_json: origins_json("allowedOrigins", input.allowed_origins.as_deref())?,
        embed_origins_json: origins_json("embedOrigins", input.embed_origins.as_deref())?,
        secure_viewer: input.secure_viewer,
    };
    let minted = secrets::mint(secrets::PUBLISH_TOKEN_PREFIX)?;
    let row =
        db::tokens::insert(pool, &secrets::new_id(), account.id, &valid.fields(), &minted.hash, &minted.hint, now)
            .await?;
    Ok(TokenWithSecret { token: view(&row), secret: minted.secret })
}

/// Applies a partial update; absent fields keep their values. Nothing is written on error.
pub async fn update(
    pool: &SqlitePool,
    account: &AccountRow,
    id: &str,
    patch: TokenPatch,
) -> Result<TokenView, ApiError> {
    let now = db::now_unix();
    let current = db::tokens::get(pool, account.id, id).await?.ok_or_else(not_found)?;
    let valid = ValidToken {
        label: match &patch.label {
            Some(label) => normalize_label(label)?,
            None => current.label,
        },
        streams_json: match &patch.streams {
            Some(streams) => streams_json(streams)?,
            None => current.streams,
        },
        enabled: patch.enabled.unwrap_or(current.enabled),
        record: patch.record.unwrap_or(current.record),
        multisource: patch.multisource.unwrap_or(current.multisource),
        expires_at: match &patch.expires_at {
            Some(expires_at) => expiry(expires_at.as_deref(), now)?,
            None => current.expires_at,
        },
        allowed_origins_json: match &patch.allowed_origins {
            Some(origins) => origins_json("allowedOrigins", origins.as_deref())?,
            None => current.allowed_origins,
        },
        embed_origins_json: match &patch.embed_origins {
            Some(origins) => origins_json("embedOrigins", origins.as_deref())?,
            None => current.embed_origins,
        },
        secure_viewer: patch.secure_viewer.unwrap_or(current.secure_viewer),
    };
    let row = db::tokens::update(pool, account.id, id, &valid.fields(), now).await?.ok_or_else(not_found)?;
    Ok(view(&row))
}

/// Turns a token on or off (the dashboard's quick action).
pub async fn set_enabled(
    pool: &SqlitePool,
    account: &AccountRow,
    id: &str,
    enabled: bool,
) -> Result<TokenView, ApiError> {
    update(pool, account, id, TokenPatch { enabled: Some(enabled), ..TokenPatch::default() }).await
}

/// Gives the token a new secret; the old one stops working at once.
pub async fn rotate(pool: &SqlitePool, account: &AccountRow, id: &str) -> Result<TokenWithSecret, ApiError> {
    let minted = secrets::mint(secrets::PUBLISH_TOKEN_PREFIX)?;
    let row = db::tokens::set_secret(pool, account.id, id, &minted.hash, &minted.hint, db::now_unix())
        .await?
        .ok_or_else(not_found)?;
    Ok(TokenWithSecret { token: view(&row), secret: minted.secret })
}

/// Deletes a token for good, and ends the feeds it is publishing (disabling does not).
pub async fn delete(pool: &SqlitePool, sfu: &SfuHandle, account: &AccountRow, id: &str) -> Result<(), ApiError> {
    if !db::tokens::delete(pool, account.id, id).await? {
        return Err(not_found());
    }
    match sfu.end_token(id.to_owned()).await {
        Ok(0) => {}
        Ok(ended) => tracing::info!(token = id, ended, "deleted token: its live feeds were ended"),
        Err(err) => tracing::warn!(token = id, %err, "deleted token: could not end its live feeds"),
    }
    Ok(())
}

/// The account's API keys, newest first.
pub async fn list_api_keys(pool: &SqlitePool, account: &AccountRow) -> Result<Vec<ApiKeyView>, ApiError> {
    Ok(db::api_keys::list(pool, account.id).await?.iter().map(api_key_view).collect())
}

/// Creates an API key and returns it with its secret (the only time the secret is seen).
pub async fn create_api_key(
    pool: &SqlitePool,
    account: &AccountRow,
    label: &str,
) -> Result<ApiKeyWithSecret, ApiError> {
    let label = normalize_label(label)?;
    let minted = secrets::mint(secrets::API_KEY_PREFIX)?;
    let row =
        db::api_keys::insert(pool, &secrets::new_id(), account.id, &label, &minted.hash, &minted.hint, db::now_unix())
            .await?;
    Ok(ApiKeyWithSecret { api_key: api_key_view(&row), secret: minted.secret })
}

/// Revokes an API key.
pub async fn delete_api_key(pool: &SqlitePool, account: &AccountRow, id: &str) -> Result<(), ApiError> {
    if db::api_keys::delete(pool, account.id, id).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound("no such API key".into()))
    }
}

/// The stored row as the API shows it.
pub fn view(row: &TokenRow) -> TokenView {
    TokenView {
        id: row.id.clone(),
        label: row.label.clone(),
        streams: parse_json_list(&row.streams),
        enabled: row.enabled,
        record: row.record,
        multisource: row.multisource,
        expires_at: row.expires_at.map(timestamps::to_rfc3339),
        allowed_origins: row.allowed_origins.as_deref().map(parse_json_list),
        embed_origins: row.embed_origins.as_deref().map(parse_json_list),
        secure_viewer: row.secure_viewer,
        created_at: timestamps::to_rfc3339(row.created_at),
        updated_at: timestamps::to_rfc3339(row.updated_at),
        last_used_at: row.last_used_at.map(timestamps::to_rfc3339),
        hint: row.hint.clone(),
    }
}

fn api_key_view(row: &ApiKeyRow) -> ApiKeyView {
    ApiKeyView {
        id: row.id.clone(),
        label: row.label.clone(),
        hint: row.hint.clone(),
        created_at: timestamps::to_rfc3339(row.created_at),
        last_used_at: row.last_used_at.map(timestamps::to_rfc3339),
    }
}

/// Lists are written by this module only, so bad JSON means a damaged row: show it as empty
/// (which the publish rule treats as "allows nothing") rather than fail the whole page.
pub fn parse_json_list(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

pub(super) fn streams_json(streams: &[String]) -> Result<String, ApiError> {
    let streams = normalize_streams(streams)?;
    serde_json::to_string(&streams).map_err(|e| ApiError::Internal(e.to_string()))
}

/// An expiry must be a valid RFC 3339 time in the future.
pub(super) fn expiry(expires_at: Option<&str>, now: i64) -> Result<Option<i64>, ApiError> {
    let Some(text) = expires_at.filter(|t| !t.trim().is_empty()) else { return Ok(None) };
    let at = timestamps::from_rfc3339(text).map_err(|e| ApiError::invalid("expiresAt", e))?;
    if at <= now {
        return Err(ApiError::invalid("expiresAt", "expiresAt must be in the future"));
    }
    Ok(Some(at))
}

/// Origins are normalised to `scheme://host[:port]` (what browsers send in `Origin`); an empty
/// list means any origin, like `null`. `field` names the list in errors.
pub(super) fn origins_json(field: &'static str, origins: Option<&[String]>) -> Result<Option<String>, ApiError> {
    let Some(origins) = origins else { return Ok(None) };
    let mut normalized: Vec<String> = Vec::new();
    for raw in origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        let origin = normalize_origin(raw).map_err(|e| ApiError::invalid(field, e))?;
        if !normalized.contains(&origin) {
            normalized.push(origin);
        }
    }
    if normalized.len() > ORIGINS_PER_TOKEN_MAX {
        return Err(ApiError::invalid(field, format!("at most {ORIGINS_PER_TOKEN_MAX} origins")));
    }
    if normalized.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(&normalized).map(Some).map_err(|e| ApiError::Internal(e.to_string()))
}

pub fn normalize_origin(raw: &str) -> Result<String, String> {
    let bad = || format!("{raw:?} is not an origin such as https://example.com or http://localhost:8080");
    let url = Url::parse(raw).map_err(|_| bad())?;
    let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || !bare || !url.username().is_empty() {
        return Err(bad());
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_checked() {
        assert_eq!(normalize_origin("HTTPS://Example.com/").unwrap(), "https://example.com");
        assert_eq!(normalize_origin("http://localhost:8080").unwrap(), "http://localhost:8080");
        assert_eq!(normalize_origin("https://example.com:443").unwrap(), "https://example.com");
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://a.com?x",
            "null",
            "https://u@a.com",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad}");
        }
        let list = vec!["https://a.com".to_owned(), "https://A.com/".to_owned(), " ".to_owned()];
        assert_eq!(origins_json("allowedOrigins", Some(&list)).unwrap().unwrap(), r#"["https://a.com"]"#);
        assert_eq!(origins_json("allowedOrigins", Some(&[])).unwrap(), None);
        let bad = vec!["a.com".to_owned()];
        assert!(
            matches!(origins_json("embedOrigins", Some(&bad)), Err(ApiError::Validation(e)) if e.field == "embedOrigins")
        );
    }

    #[test]
    fn expiry_must_be_in_the_future() {
        let now = 2_000_000_000;
        assert_eq!(expiry(None, now).unwrap(), None);
        assert_eq!(expiry(Some(" "), now).unwrap(), None);
        assert!(expiry(Some("2000-01-01T00:00:00Z"), now).is_err());
        assert!(expiry(Some("2100-01-01T00:00:00Z"), now).unwrap().is_some());
        assert!(matches!(expiry(Some("soon"), now), Err(ApiError::Validation(e)) if e.field == "expiresAt"));
    }
}
