//! Viewer grants (`fcv_…`): what `/watch?token=fcs_…` exchanges the subscribe token for, so the
//! secret leaves the address bar at once and never reaches a referrer or a log. A grant names one
//! stream and the subscribe token it was made from, and expires after ten minutes (the viewer
//! renews it while it plays). It is signed (HMAC-SHA256 with a key kept in the database), so it
//! survives a restart and needs no table; the token behind it is still checked at every offer,
//! so disabling or deleting the token ends its grants too.
//!
//! A signed viewer link (README "Viewer links") is a grant made from no token: it names the
//! stream, its own random id and cap, and lasts as long as its owner asked.

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::SqlitePool;
use tokio::sync::OnceCell;

use crate::db;

pub const VIEWER_GRANT_PREFIX: &str = "fcv_";
pub const VIEWER_GRANT_TTL: Duration = Duration::from_secs(600);
/// The name of the signing key in `server_keys`.
const KEY_NAME: &str = "viewer-grants";
/// Signed with the payload, so a grant cannot be taken for another kind of signed value later.
const CONTEXT: &[u8] = b"ferrocast viewer grant v1\n";

/// What a valid grant says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantClaims {
    pub account: String,
    pub stream: String,
    pub basis: GrantBasis,
    /// Unix seconds.
    pub expires_at: i64,
}

/// What a grant was made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantBasis {
    /// The id of the subscribe token it was exchanged for.
    SubscribeToken(String),
    /// A viewer link: its id (random, hex) and how many may watch with it at once.
    Link { id: String, max_viewers: Option<u32> },
}

/// The part of a link's payload before its id, so that a token id (hex) is never taken for one.
const LINK_MARK: &str = "link.";

impl GrantBasis {
    fn encode(&self) -> String {
        match self {
            Self::SubscribeToken(id) => id.clone(),
            Self::Link { id, max_viewers } => {
                format!("{LINK_MARK}{id}.{}", max_viewers.map(|max| max.to_string()).unwrap_or_default())
            }
        }
    }

    fn decode(part: &str) -> Option<Self> {
        let Some(link) = part.strip_prefix(LINK_MARK) else {
            return (!part.is_empty() && !part.contains('.')).then(|| Self::SubscribeToken(part.to_owned()));
        };
        let (id, max) = link.split_once('.')?;
        let max_viewers = if max.is_empty() { None } else { Some(max.parse().ok()?) };
        (!id.is_empty()).then(|| Self::Link { id: id.to_owned(), max_viewers })
    }
}

/// Why a presented grant is not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantProblem {
    /// Not a grant this server made (malformed, or the signature does not match).
    Invalid,
    /// Past its time; `link` when it was a viewer link (which cannot be renewed).
    Expired { link: bool },
}

/// Mints and checks grants with the server's key, loaded from the database once.
#[derive(Default)]
pub struct ViewerGrants {
    key: OnceCell<Vec<u8>>,
}

impl ViewerGrants {
    async fn key(&self, pool: &SqlitePool) -> Result<&[u8], sqlx::Error> {
        let key = self
            .key
            .get_or_try_init(|| async {
                let mut fresh = [0u8; 32];
                getrandom::getrandom(&mut fresh).map_err(|e| sqlx::Error::Protocol(format!("random source: {e}")))?;
                db::server_keys::get_or_insert(pool, KEY_NAME, &fresh, db::now_unix()).await
            })
            .await?;
        Ok(key)
    }

    /// A grant for `claims`.
    pub async fn mint(&self, pool: &SqlitePool, claims: &GrantClaims) -> Result<String, sqlx::Error> {
        Ok(encode(self.key(pool).await?, claims))
    }

    /// The claims of a grant this server made and that has not expired at `now`.
    pub async fn verify(
        &self,
        pool: &SqlitePool,
        grant: &str,
        now: i64,
    ) -> Result<Result<GrantClaims, GrantProblem>, sqlx::Error> {
        let key = self.key(pool).await?;
        Ok(check(key, grant, now))
    }
}

/// `fcv_` + base64url(`account/stream/basis/expiry`) + `.` + base64url(its signature). Names hold
/// no `/` (their alphabet has none), so the four parts split back unambiguously.
fn encode(key: &[u8], claims: &GrantClaims) -> String {
    let payload = format!("{}/{}/{}/{}", claims.account, claims.stream, claims.basis.encode(), claims.expires_at);
    signed(key, &payload)
}

fn signed(key: &[u8], payload: &str) -> String {
    let signature = sign(key, payload.as_bytes()).finalize().into_bytes();
    format!("{VIEWER_GRANT_PREFIX}{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(signature))
}

fn sign(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(CONTEXT);
    mac.update(payload);
    mac
}

fn check(key: &[u8], grant: &str, now: i64) -> Result<GrantClaims, GrantProblem> {
    let body = grant.strip_prefix(VIEWER_GRANT_PREFIX).ok_or(GrantProblem::Invalid)?;
    let (payload, signature) = body.split_once('.').ok_or(GrantProblem::Invalid)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| GrantProblem::Invalid)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| GrantProblem::Invalid)?;
    // Constant time: the comparison must not tell an attacker how much of a forgery was right.
    sign(key, &payload).verify_slice(&signature).map_err(|_| GrantProblem::Invalid)?;
    let payload = String::from_utf8(payload).map_err(|_| GrantProblem::Invalid)?;
    let mut parts = payload.split('/');
    let (Some(account), Some(stream), Some(basis), Some(expires), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(GrantProblem::Invalid);
    };
    let basis = GrantBasis::decode(basis).ok_or(GrantProblem::Invalid)?;
    let expires_at: i64 = expires.parse().map_err(|_| GrantProblem::Invalid)?;
    if expires_at <= now {
        return Err(GrantProblem::Expired { link: matches!(basis, GrantBasis::Link { .. }) });
    }
    Ok(GrantClaims { account: account.to_owned(), stream: stream.to_owned(), basis, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> GrantClaims {
        GrantClaims {
            account: "abc123".into(),
            stream: "show.1".into(),
            basis: GrantBasis::SubscribeToken("t1".into()),
            expires_at: 2_000,
        }
    }

    fn link(max_viewers: Option<u32>) -> GrantClaims {
        GrantClaims { basis: GrantBasis::Link { id: "9f86d081".into(), max_viewers }, ..claims() }
    }

    #[test]
    fn a_grant_says_what_it_was_made_for_until_it_expires() {
        let grant = encode(b"key one", &claims());
        assert!(grant.starts_with(VIEWER_GRANT_PREFIX) && !grant.contains('/') && !grant.contains('='), "{grant}");
        assert_eq!(check(b"key one", &grant, 1_999), Ok(claims()));
        assert_eq!(check(b"key one", &grant, 2_000), Err(GrantProblem::Expired { link: false }));
    }

    #[test]
    fn a_link_carries_its_id_and_cap() {
        for max in [None, Some(1), Some(1_000)] {
            let grant = encode(b"key one", &link(max));
            assert_eq!(check(b"key one", &grant, 1_000), Ok(link(max)));
            assert_eq!(check(b"key one", &grant, 2_001), Err(GrantProblem::Expired { link: true }));
        }
        // Signed but malformed bases are not grants.
        for basis in ["", "link.", "link.x", "link..5", "link.x.many", "link.x.-1", "a.b"] {
            assert_eq!(
                check(b"key one", &signed(b"key one", &format!("a/b/{basis}/5000")), 0),
                Err(GrantProblem::Invalid)
            );
        }
    }

    #[test]
    fn forged_or_altered_grants_are_invalid() {
        let grant = encode(b"key one", &claims());
        assert_eq!(check(b"another key", &grant, 0), Err(GrantProblem::Invalid));
        // Another stream with the first grant's signature.
        let other = encode(b"key one", &GrantClaims { stream: "other".into(), ..claims() });
        let (_, signature) = grant.split_once('.').unwrap();
        let (payload, _) = other.split_once('.').unwrap();
        assert_eq!(check(b"key one", &format!("{payload}.{signature}"), 0), Err(GrantProblem::Invalid));
        for junk in ["", "fcv_", "fcv_.", "fcv_abc", "fcs_x.y", "fcv_!!.??", &grant[..grant.len() - 2]] {
            assert_eq!(check(b"key one", junk, 0), Err(GrantProblem::Invalid), "{junk:?}");
        }
        // Signed, but not four parts: still not a grant.
        assert_eq!(check(b"key one", &signed(b"key one", "a/b/c"), 0), Err(GrantProblem::Invalid));
    }
}
