//! The publish rule: may this secret publish this stream (and source) from this origin?
//!
//! One function for the WHIP door to call once authorisation is all that is left to settle;
//! the SFU only ever sees streams that passed it.

use axum::http::StatusCode;
use sqlx::SqlitePool;

use super::{
    grants::{PublishGrants, GRANT_PREFIX},
    secrets,
    tokens::parse_json_list,
};
use crate::{
    db::{self, tokens::TokenWithOwner},
    model::StreamPattern,
    names::{SourceId, StreamName},
};

/// What a publisher presents.
#[derive(Clone, Copy, Debug)]
pub struct PublishRequest<'a> {
    /// The bearer secret (`fcp_…`).
    pub secret: &'a str,
    pub stream_name: &'a StreamName,
    /// `None` for the main source.
    pub source_id: Option<&'a SourceId>,
    /// The request's `Origin` header, when a browser sent it.
    pub origin: Option<&'a str>,
}

/// Permission to publish, with what the SFU needs to know about the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishGrant {
    pub account_id: i64,
    /// The account's public id: the first half of the stream id.
    pub account_public_id: String,
    pub token_id: String,
    pub record: bool,
    pub multisource: bool,
}

/// Why publishing is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishDenied {
    #[error("unknown publish token")]
    UnknownToken,
    #[error("the publish token is disabled")]
    Disabled,
    #[error("account disabled: this server's operator has disabled the account this token belongs to")]
    AccountDisabled,
    #[error("the publish token has expired")]
    Expired,
    #[error("the publish token does not allow this stream name")]
    StreamNotAllowed,
    #[error("the publish token does not allow publishing from this origin")]
    OriginNotAllowed,
    #[error("a sourceId needs a publish token with the multisource flag")]
    SourceIdWithoutMultisource,
    #[error("this broadcast grant is for another stream name or source")]
    GrantMismatch,
}

impl PublishDenied {
    /// 401 when the token is not known at all (RFC 9725 §4.5 / RFC 6750), 403 when it is known but
    /// does not allow this publish (README "The publish rule").
    pub fn status(self) -> StatusCode {
        match self {
            Self::UnknownToken => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

/// The public id of the account whose token (or broadcast grant) `secret` is, if it is one: who
/// hears of a refused publish (the `publish.refused` webhook).
pub async fn owner_of(pool: &SqlitePool, grants: &PublishGrants, secret: &str) -> Result<Option<String>, sqlx::Error> {
    let token = if secret.starts_with(GRANT_PREFIX) {
        match grants.find(secret) {
            Some(grant) => db::tokens::find_with_owner(pool, &grant.token_id).await?,
            None => None,
        }
    } else {
        db::tokens::find_by_secret_hash(pool, &secrets::hash(secret)).await?
    };
    Ok(token.map(|t| t.account_public_id))
}

/// Looks the secret up (one indexed lookup of its hash) and applies [`evaluate`]; a grant marks
/// the token used. A short-lived broadcast grant (`fcg_…`, see [`super::grants`]) stands for its
/// token, for the one stream name and source it was minted for.
pub async fn authorize(
    pool: &SqlitePool,
    grants: &PublishGrants,
    mut request: PublishRequest<'_>,
) -> Result<Result<PublishGrant, PublishDenied>, sqlx::Error> {
    let token = if request.secret.starts_with(GRANT_PREFIX) {
        let Some(grant) = grants.find(request.secret) else {
            return Ok(Err(PublishDenied::UnknownToken));
        };
        if grant.stream_name != *request.stream_name || grant.source_id.as_ref() != request.source_id {
            return Ok(Err(PublishDenied::GrantMismatch));
        }
        // Minted for a logged-in owner on this site: the token's origin list is for pages
        // holding its secret, which this page does not.
        request.origin = None;
        db::tokens::find_with_owner(pool, &grant.token_id).await?
    } else {
        db::tokens::find_by_secret_hash(pool, &secrets::hash(request.secret)).await?
    };
    let Some(token) = token else {
        return Ok(Err(PublishDenied::UnknownToken));
    };
    let now = db::now_unix();
    let verdict = evaluate(&token, now, request);
    if verdict.is_ok() {
        // Best effort: a database that cannot write (a full disk) must not stop publishing.
        if let Err(err) = db::tokens::touch(pool, &token.token.id, now).await {
            tracing::warn!(%err, "cannot note a token's last use");
        }
    }
    Ok(verdict)
}

/// The rule itself, over a token that matched the secret. Checked in this order: its account not
/// disabled, enabled, not
/// expired, stream name covered by one of the token's patterns, origin allowed (a request without
/// `Origin` is not from a browser page and is not restricted), `sourceId` only with multisource.
pub fn evaluate(token: &TokenWithOwner, now: i64, request: PublishRequest<'_>) -> Result<PublishGrant, PublishDenied> {
    let row = &token.token;
    if token.account_disabled {
        return Err(PublishDenied::AccountDisabled);
    }
    if !row.enabled {
        return Err(PublishDenied::Disabled);
    }
    if row.expires_at.is_some_and(|at| at <= now) {
        return Err(PublishDenied::Expired);
    }
    let stream_allowed = parse_json_list(&row.streams)
        .iter()
        .filter_map(|raw| StreamPattern::parse(raw).ok())
        .any(|pattern| pattern.matches(request.stream_name));
    if !stream_allowed {
        return Err(PublishDenied::StreamNotAllowed);
    }
    if let (Some(allowed), Some(origin)) = (row.allowed_origins.as_deref(), request.origin) {
        if !parse_json_list(allowed).iter().any(|a| a.eq_ignore_ascii_case(origin.trim_end_matches('/'))) {
            return Err(PublishDenied::OriginNotAllowed);
        }
    }
    if request.source_id.is_some() && !row.multisource {
        return Err(PublishDenied::SourceIdWithoutMultisource);
    }
    Ok(PublishGrant {
        account_id: row.account_id,
        account_public_id: token.account_public_id.clone(),
        token_id: row.id.clone(),
        record: row.record,
        multisource: row.multisource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::tokens::TokenRow;

    const NOW: i64 = 1_800_000_000;

    fn token(streams: &str) -> TokenWithOwner {
        TokenWithOwner {
            token: TokenRow {
                id: "t1".into(),
                account_id: 7,
                label: "studio".into(),
                streams: streams.into(),
                enabled: true,
                record: false,
                multisource: false,
                expires_at: None,
                allowed_origins: None,
                embed_origins: None,
                secure_viewer: false,
                hint: "fcp_…abcd".into(),
                created_at: NOW - 100,
                updated_at: NOW - 100,
                last_used_at: None,
            },
            account_public_id: "abc123".into(),
            account_disabled: false,
        }
    }

    fn request(stream: &str, source: Option<&str>, origin: Option<&'static str>) -> PublishRequest<'static> {
        // Parsed as the WHIP handler parses them; leaked so the table can hold the borrows.
        let stream_name = Box::leak(Box::new(StreamName::parse(stream).unwrap()));
        let source_id = source.map(|s| &*Box::leak(Box::new(SourceId::parse(s).unwrap())));
        PublishRequest { secret: "fcp_x", stream_name, source_id, origin }
    }

    #[test]
    fn the_rule_as_a_table() {
        use PublishDenied::*;
        let exact = token(r#"["main"]"#);
        let prefix = token(r#"["cam-*"]"#);
        let any = token(r#"["*"]"#);
        let mixed = token(r#"["main", "*"]"#);
        let several = token(r#"["a", "b-*"]"#);
        let disabled = TokenWithOwner { token: TokenRow { enabled: false, ..exact.token.clone() }, ..exact.clone() };
        let expired =
            TokenWithOwner { token: TokenRow { expires_at: Some(NOW), ..exact.token.clone() }, ..exact.clone() };
        let not_yet =
            TokenWithOwner { token: TokenRow { expires_at: Some(NOW + 1), ..exact.token.clone() }, ..exact.clone() };
        let multi = TokenWithOwner { token: TokenRow { multisource: true, ..exact.token.clone() }, ..exact.clone() };
        let origins = TokenWithOwner {
            token: TokenRow { allowed_origins: Some(r#"["https://studio.example"]"#.into()), ..exact.token.clone() },
            ..exact.clone()
        };
        let damaged = token("not json");
        let owner_disabled = TokenWithOwner { account_disabled: true, ..any.clone() };

        let table: Vec<(&str, &TokenWithOwner, PublishRequest, Result<(), PublishDenied>)> = vec![
            ("exact name", &exact, request("main", None, None), Ok(())),
            ("exact is exact", &exact, request("main2", None, None), Err(StreamNotAllowed)),
            ("names are case-sensitive", &exact, request("Main", None, None), Err(StreamNotAllowed)),
            ("prefix covers longer names", &prefix, request("cam-1", None, None), Ok(())),
            ("prefix covers itself", &prefix, request("cam-", None, None), Ok(())),
            ("prefix needs the prefix", &prefix, request("cam", None, None), Err(StreamNotAllowed)),
            ("any name", &any, request("whatever.1", None, None), Ok(())),
            ("* beside names allows any", &mixed, request("other", None, None), Ok(())),
            ("several patterns, second matches", &several, request("b-2", None, None), Ok(())),
            ("several patterns, none matches", &several, request("c", None, None), Err(StreamNotAllowed)),
            ("damaged list allows nothing", &damaged, request("main", None, None), Err(StreamNotAllowed)),
            ("disabled", &disabled, request("main", None, None), Err(Disabled)),
            ("disabled wins over a bad stream", &disabled, request("zzz", None, None), Err(Disabled)),
            ("owner disabled", &owner_disabled, request("main", None, None), Err(AccountDisabled)),
            ("expired at the second", &expired, request("main", None, None), Err(Expired)),
            ("not yet expired", &not_yet, request("main", None, None), Ok(())),
            (
                "sourceId without multisource",
                &exact,
                request("main", Some("cam2"), None),
                Err(SourceIdWithoutMultisource),
            ),
            ("sourceId with multisource", &multi, request("main", Some("cam2"), None), Ok(())),
            ("main source with multisource", &multi, request("main", None, None), Ok(())),
            ("allowed origin", &origins, request("main", None, Some("https://studio.example")), Ok(())),
            ("allowed origin, other case", &origins, request("main", None, Some("https://Studio.example")), Ok(())),
            ("other origin", &origins, request("main", None, Some("https://evil.example")), Err(OriginNotAllowed)),
            ("no Origin: not a browser page", &origins, request("main", None, None), Ok(())),
            ("any origin when none listed", &exact, request("main", None, Some("https://any.example")), Ok(())),
        ];
        for (case, token, req, expected) in table {
            let got = evaluate(token, NOW, req).map(|_| ());
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn a_grant_carries_the_token_flags() {
        let mut t = token(r#"["*"]"#);
        t.token.record = true;
        t.token.multisource = true;
        let grant = evaluate(&t, NOW, request("x", Some("s"), None)).unwrap();
        assert_eq!(
            grant,
            PublishGrant {
                account_id: 7,
                account_public_id: "abc123".into(),
                token_id: "t1".into(),
                record: true,
                multisource: true
            }
        );
    }

    #[test]
    fn unknown_is_401_and_the_rest_403() {
        assert_eq!(PublishDenied::UnknownToken.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(PublishDenied::Expired.status(), StatusCode::FORBIDDEN);
        assert_eq!(PublishDenied::SourceIdWithoutMultisource.status(), StatusCode::FORBIDDEN);
    }
}
