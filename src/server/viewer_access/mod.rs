//! Who may watch a stream, and from where (README "Viewer access"). The publish tokens whose
//! patterns cover a stream name decide: their embed lists ([`embed`]) say which sites may frame
//! the viewer and play it, and when any asks for a secure viewer, watching needs a subscribe
//! token (`fcs_…`) or a viewer grant made from one ([`grants`]). The WHEP door asks
//! [`admit_viewer`] before the SFU sees an offer; `/watch` asks [`StreamAccess::of_stream`] for
//! its `frame-ancestors` and whether to ask for a token.

pub mod embed;
pub mod grants;

use axum::http::{header, HeaderMap, StatusCode};
use sqlx::SqlitePool;

use super::{auth::bearer_token, secrets, tokens::parse_json_list, AppState};
use crate::{
    db::{self, subscribe_tokens::SubscribeTokenWithOwner},
    model::StreamPattern,
    names::{AccountId, StreamName},
    sfu::api::{PassKind, ViewerPass},
};
use embed::EmbedPolicy;
use grants::{GrantBasis, GrantClaims, GrantProblem, VIEWER_GRANT_PREFIX, VIEWER_GRANT_TTL};

/// What the tokens covering one stream say about its viewers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamAccess {
    pub embed: EmbedPolicy,
    /// Watching needs a subscribe token.
    pub secure: bool,
}

impl StreamAccess {
    /// From the account's tokens that restrict viewing: the sites any covering token lists are
    /// allowed (a token without a list adds no restriction), and one covering token asking for a
    /// secure viewer is enough.
    pub async fn of_stream(pool: &SqlitePool, account: &AccountId, stream: &StreamName) -> Result<Self, sqlx::Error> {
        let rules = db::tokens::viewer_rules(pool, account.as_str()).await?;
        let covering: Vec<_> = rules.iter().filter(|rule| covers(&rule.streams, stream)).collect();
        Ok(Self {
            embed: EmbedPolicy::from_lists(covering.iter().filter_map(|rule| rule.embed_origins.as_deref())),
            secure: covering.iter().any(|rule| rule.secure_viewer),
        })
    }
}

/// Whether a token's `streams` (JSON) cover the name.
fn covers(streams_json: &str, stream: &StreamName) -> bool {
    parse_json_list(streams_json).iter().filter_map(|p| StreamPattern::parse(p).ok()).any(|p| p.matches(stream))
}

/// Whether a request's page may use something limited to `origins`: a listed site, this server's
/// own pages (the viewer, wherever it is framed), or no web page at all (no `Origin`).
fn origin_allowed(headers: &HeaderMap, origins: &[String], public_origin: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin))
        || super::origin::is_same_origin(headers, public_origin)
}

/// Why a viewer is turned away; each names what to do in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ViewerRefused {
    #[error("this stream may be watched only on the sites its owner lists (embedOrigins); this page's origin is not one of them")]
    EmbedOrigin,
    #[error(
        "this stream needs a viewer token: send Authorization: Bearer fcs_… (or open the viewer link its owner shared)"
    )]
    TokenRequired,
    #[error("the viewer token is not valid")]
    UnknownToken,
    #[error("the viewer grant has expired: exchange the viewer token again")]
    GrantExpired,
    #[error("this viewer link has expired: ask for a new one")]
    LinkExpired,
    #[error("the viewer token is not for this stream")]
    OtherStream,
    #[error("the viewer token is disabled")]
    Disabled,
    #[error("the viewer token has expired")]
    Expired,
    #[error("the viewer token does not allow watching from this origin")]
    OriginNotAllowed,
}

impl ViewerRefused {
    /// 401 when no usable credential was sent (RFC 6750), 403 when it does not allow this.
    pub fn status(self) -> StatusCode {
        match self {
            Self::TokenRequired | Self::UnknownToken | Self::GrantExpired | Self::LinkExpired => {
                StatusCode::UNAUTHORIZED
            }
            _ => StatusCode::FORBIDDEN,
        }
    }
}

/// The WHEP door's check: the stream's embed list, then, for a secure stream, the subscribe
/// token, viewer grant or viewer link in `Authorization`. `Some` pass when one let the viewer in
/// (the SFU counts its viewers against its cap).
pub async fn admit_viewer(
    state: &AppState,
    headers: &HeaderMap,
    account: &AccountId,
    stream: &StreamName,
) -> Result<Result<Option<ViewerPass>, ViewerRefused>, sqlx::Error> {
    let access = StreamAccess::of_stream(&state.pool, account, stream).await?;
    if let EmbedPolicy::Only(origins) = &access.embed {
        if !origin_allowed(headers, origins, &state.settings.public_origin) {
            return Ok(Err(ViewerRefused::EmbedOrigin));
        }
    }
    if !access.secure {
        return Ok(Ok(None));
    }
    Ok(check_credential(state, headers, account, stream).await?.map(|credential| Some(credential.pass())))
}

/// What a viewer of a secure stream showed: a subscribe token (itself or through a grant made
/// from it), or a viewer link.
pub enum Credential {
    Token(SubscribeTokenWithOwner),
    Link { id: String, max_viewers: Option<u32>, expires_at: i64 },
}

impl Credential {
    fn pass(&self) -> ViewerPass {
        match self {
            Self::Token(found) => ViewerPass {
                kind: PassKind::SubscribeToken,
                id: found.token.id.as_str().into(),
                max_viewers: found.token.max_viewers.and_then(|max| u32::try_from(max).ok()),
            },
            Self::Link { id, max_viewers, .. } => {
                ViewerPass { kind: PassKind::Link, id: id.as_str().into(), max_viewers: *max_viewers }
            }
        }
    }
}

/// The credential in the `Authorization` of a request for `stream`, if it allows watching it
/// from the request's page now.
pub async fn check_credential(
    state: &AppState,
    headers: &HeaderMap,
    account: &AccountId,
    stream: &StreamName,
) -> Result<Result<Credential, ViewerRefused>, sqlx::Error> {
    let Some(secret) = bearer_token(headers) else { return Ok(Err(ViewerRefused::TokenRequired)) };
    let now = db::now_unix();
    let found = if secret.starts_with(VIEWER_GRANT_PREFIX) {
        let claims = match state.viewer_grants.verify(&state.pool, secret, now).await? {
            Ok(claims) => claims,
            Err(GrantProblem::Invalid) => return Ok(Err(ViewerRefused::UnknownToken)),
            Err(GrantProblem::Expired { link: false }) => return Ok(Err(ViewerRefused::GrantExpired)),
            Err(GrantProblem::Expired { link: true }) => return Ok(Err(ViewerRefused::LinkExpired)),
        };
        if claims.account != account.as_str() || claims.stream != stream.as_str() {
            return Ok(Err(ViewerRefused::OtherStream));
        }
        match claims.basis {
            GrantBasis::SubscribeToken(id) => db::subscribe_tokens::find_with_owner(&state.pool, &id).await?,
            // Signed for this stream by this server, and unexpired: nothing else to ask.
            GrantBasis::Link { id, max_viewers } => {
                return Ok(Ok(Credential::Link { id, max_viewers, expires_at: claims.expires_at }))
            }
        }
    } else if secret.starts_with(secrets::SUBSCRIBE_TOKEN_PREFIX) {
        db::subscribe_tokens::find_by_secret_hash(&state.pool, &secrets::hash(secret)).await?
    } else {
        None
    };
    // A deleted token and a grant of a deleted token are as unknown as a made-up secret.
    let Some(found) = found else { return Ok(Err(ViewerRefused::UnknownToken)) };
    let token = &found.token;
    let verdict = if found.account_public_id != account.as_str() || !covers(&token.streams, stream) {
        Err(ViewerRefused::OtherStream)
    } else if !token.enabled {
        Err(ViewerRefused::Disabled)
    } else if token.expires_at.is_some_and(|at| at <= now) {
        Err(ViewerRefused::Expired)
    } else if token
        .allowed_origins
        .as_deref()
        .is_some_and(|origins| !origin_allowed(headers, &parse_json_list(origins), &state.settings.public_origin))
    {
        Err(ViewerRefused::OriginNotAllowed)
    } else {
        Ok(())
    };
    // At most one write a minute per token, however many viewers join at once.
    if verdict.is_ok() && token.last_used_at.is_none_or(|at| now - at >= 60) {
        db::subscribe_tokens::touch(&state.pool, &token.id, now).await?;
    }
    Ok(verdict.map(|()| Credential::Token(found)))
}

/// A fresh viewer grant for `stream`, made from the subscribe token (or grant) of the request:
/// `/watch?token=` trades the secret for one, and renews it with the grant while it plays. A
/// viewer link is its own grant: it comes back as it is, with the time it has left.
pub async fn exchange(
    state: &AppState,
    headers: &HeaderMap,
    account: &AccountId,
    stream: &StreamName,
) -> Result<Result<(String, std::time::Duration), ViewerRefused>, sqlx::Error> {
    let (basis, expires_at) = match check_credential(state, headers, account, stream).await? {
        Err(refused) => return Ok(Err(refused)),
        Ok(Credential::Token(token)) => {
            let mut expires_at = db::now_unix() + VIEWER_GRANT_TTL.as_secs() as i64;
            // Never beyond the token's own expiry.
            if let Some(token_expiry) = token.token.expires_at {
                expires_at = expires_at.min(token_expiry);
            }
            (GrantBasis::SubscribeToken(token.token.id), expires_at)
        }
        Ok(Credential::Link { id, max_viewers, expires_at }) => (GrantBasis::Link { id, max_viewers }, expires_at),
    };
    let claims =
        GrantClaims { account: account.as_str().to_owned(), stream: stream.as_str().to_owned(), basis, expires_at };
    let grant = state.viewer_grants.mint(&state.pool, &claims).await?;
    let lasts = std::time::Duration::from_secs((expires_at - db::now_unix()).max(0) as u64);
    Ok(Ok((grant, lasts)))
}

/// Longest and shortest a viewer link may last.
pub const LINK_LIFETIME: std::ops::RangeInclusive<u64> = 60..=30 * 24 * 3600;

/// A signed viewer link to the account's `stream` (README "Viewer links"): works for
/// `expires_in`, for at most `max_viewers` at once, without a subscribe token. Only a stream
/// that needs a viewer token gets one: on an open stream its cap would be a promise nobody
/// keeps (anyone may watch without the link).
pub async fn make_link(
    state: &AppState,
    account: &AccountId,
    stream: &StreamName,
    expires_in: u64,
    max_viewers: Option<u32>,
) -> Result<Result<(String, i64), LinkRefused>, sqlx::Error> {
    if !LINK_LIFETIME.contains(&expires_in) {
        return Ok(Err(LinkRefused::Lifetime));
    }
    if max_viewers == Some(0) {
        return Ok(Err(LinkRefused::NoViewers));
    }
    if !StreamAccess::of_stream(&state.pool, account, stream).await?.secure {
        return Ok(Err(LinkRefused::OpenStream));
    }
    let expires_at = db::now_unix() + expires_in as i64;
    let claims = GrantClaims {
        account: account.as_str().to_owned(),
        stream: stream.as_str().to_owned(),
        basis: GrantBasis::Link { id: secrets::new_id(), max_viewers },
        expires_at,
    };
    Ok(Ok((state.viewer_grants.mint(&state.pool, &claims).await?, expires_at)))
}

/// Why no link was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefused {
    #[error("expiresIn must be between 60 seconds and 30 days (2592000)")]
    Lifetime,
    #[error("maxViewers must be at least 1 (or left out for no cap)")]
    NoViewers,
    #[error(
        "anyone may watch this stream without a link: turn on Secure viewer on the publish token that covers it first"
    )]
    OpenStream,
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (header::HeaderName::from_static(k), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn listed_sites_this_server_and_non_browsers_are_allowed() {
        let public = "https://stream.example";
        let listed = vec!["https://a.example".to_owned()];
        assert!(origin_allowed(&headers(&[("origin", "https://a.example")]), &listed, public));
        assert!(origin_allowed(&headers(&[("origin", "https://A.example")]), &listed, public));
        assert!(origin_allowed(&headers(&[("origin", "https://stream.example")]), &listed, public));
        assert!(origin_allowed(
            &headers(&[("origin", "http://127.0.0.1:3000"), ("host", "127.0.0.1:3000")]),
            &listed,
            public
        ));
        assert!(origin_allowed(&headers(&[]), &listed, public), "OBS and players that are not web pages");
        for other in ["https://evil.example", "null", "https://a.example:8443", "http://a.example"] {
            assert!(
                !origin_allowed(&headers(&[("origin", other), ("host", "stream.example")]), &listed, public),
                "{other}"
            );
        }
        assert!(!origin_allowed(&headers(&[("origin", "https://a.example")]), &[], public));
    }

    #[test]
    fn a_name_is_covered_by_exact_names_prefixes_and_any() {
        let name = StreamName::parse("show").unwrap();
        assert!(covers(r#"["show"]"#, &name) && covers(r#"["sh*"]"#, &name) && covers(r#"["x","*"]"#, &name));
        assert!(!covers(r#"["shows"]"#, &name) && !covers(r#"["Show"]"#, &name) && !covers("broken", &name));
    }
}
