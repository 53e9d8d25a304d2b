//! Viewer grants (`fcv_…`): what `/watch?token=fcs_…` exchanges the subscribe token for, so the
//! secret leaves the address bar at once and never reaches a referrer or a log. A grant names one
//! stream and the subscribe token it was made from, and expires after ten minutes (the viewer
//! renews it while it plays). It is signed (HMAC-SHA256 with a key kept in the database), so it
//! survives a restart and needs no table; the token behind it is still checked at every offer,
//! so disabling or deleting the token ends its grants too.

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
    pub subscribe_token_id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Why a presented grant is not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantProblem {
    /// Not a grant this server made (malformed, or the signature does not match).
    Invalid,
    Expired,
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

/// `fcv_` + base64url(`account/stream/token/expiry`) + `.` + base64url(its signature). Names hold no
/// `/` (their alphabet has none), so the four parts split back unambiguously.
fn encode(key: &[u8], claims: &GrantClaims) -> String {
    let payload = format!("{}/{}/{}/{}", claims.account, claims.stream, claims.subscribe_token_id, claims.expires_at);
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
    let (Some(account), Some(stream), Some(token), Some(expires), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(GrantProblem::Invalid);
    };
    let expires_at: i64 = expires.parse().map_err(|_| GrantProblem::Invalid)?;
    if expires_at <= now {
        return Err(GrantProblem::Expired);
    }
    Ok(GrantClaims {
        account: account.to_owned(),
        stream: stream.to_owned(),
        subscribe_token_id: token.to_owned(),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> GrantClaims {
        GrantClaims {
            account: "abc123".into(),
            stream: "show.1".into(),
            subscribe_token_id: "t1".into(),
            expires_at: 2_000,
        }
    }

    #[test]
    fn a_grant_says_what_it_was_made_for_until_it_expires() {
        let grant = encode(b"key one", &claims());
        assert!(grant.starts_with(VIEWER_GRANT_PREFIX) && !grant.contains('/') && !grant.contains('='), "{grant}");
        assert_eq!(check(b"key one", &grant, 1_999), Ok(claims()));
        assert_eq!(check(b"key one", &grant, 2_000), Err(GrantProblem::Expired));
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
