//! Short-lived publish grants: the online broadcaster publishes as a logged-in user without the
//! token's secret ever reaching the browser. A grant (`fcg_…`) is minted for one token, stream name
//! and source, lives ten minutes (enough to reconnect), and is checked at the WHIP door through the
//! same publish rule as the token itself, so disabling or deleting the token refuses it too.
//! Grants live in memory only: a restart simply asks the page for a new one. They are bounded
//! (the oldest of a token's grants gives way to a new one) and revoked with what minted them: a
//! token's when its secret is rotated, a session's when it logs out.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::secrets;
use crate::names::{SourceId, StreamName};

pub const GRANT_PREFIX: &str = "fcg_";
pub const GRANT_TTL: Duration = Duration::from_secs(600);
/// Grants of one token kept at once: a broadcaster mints one per (re)connection; older ones of
/// the same token are superseded and give way.
pub const GRANTS_PER_TOKEN: usize = 16;
/// Grants kept in all; past it minting is refused until some expire.
pub const GRANTS_IN_ALL: usize = 100_000;

/// What a grant lets its bearer publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub token_id: String,
    pub stream_name: StreamName,
    pub source_id: Option<SourceId>,
    /// The hash of the session that minted it (`None`: an API key).
    session: Option<String>,
    minted: Instant,
    expires: Instant,
}

#[derive(Default)]
pub struct PublishGrants {
    /// By the SHA-256 of the grant secret, like every other secret.
    grants: Mutex<HashMap<String, Grant>>,
}

impl PublishGrants {
    /// Mints a grant (for the session with this hash, if a session asks) and returns its secret.
    pub fn mint(
        &self,
        token_id: &str,
        stream_name: &StreamName,
        source_id: Option<&SourceId>,
        session: Option<String>,
    ) -> Result<String, super::error::ApiError> {
        let minted = secrets::mint(GRANT_PREFIX)?;
        let now = Instant::now();
        let grant = Grant {
            token_id: token_id.to_owned(),
            stream_name: stream_name.clone(),
            source_id: source_id.cloned(),
            session,
            minted: now,
            expires: now + GRANT_TTL,
        };
        let mut grants = self.lock();
        grants.retain(|_, g| g.expires > now);
        if grants.len() >= GRANTS_IN_ALL {
            return Err(super::error::ApiError::Busy {
                message: "too many publish grants are in use",
                retry_after_secs: 60,
            });
        }
        let of_token: Vec<(Instant, String)> =
            grants.iter().filter(|(_, g)| g.token_id == token_id).map(|(hash, g)| (g.minted, hash.clone())).collect();
        if of_token.len() >= GRANTS_PER_TOKEN {
            if let Some((_, oldest)) = of_token.iter().min() {
                grants.remove(oldest);
            }
        }
        grants.insert(minted.hash, grant);
        Ok(minted.secret)
    }

    /// Revokes every grant of a token (its secret was rotated).
    pub fn revoke_token(&self, token_id: &str) {
        self.lock().retain(|_, g| g.token_id != token_id);
    }

    /// Revokes every grant a session minted (it logged out).
    pub fn revoke_session(&self, session_hash: &str) {
        self.lock().retain(|_, g| g.session.as_deref() != Some(session_hash));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Grant>> {
        self.grants.lock().expect("grants lock is never poisoned: no panics while held")
    }

    /// The grant behind a secret, unless unknown or expired.
    pub fn find(&self, secret: &str) -> Option<Grant> {
        self.lock().get(&secrets::hash(secret)).filter(|g| g.expires > Instant::now()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn main() -> StreamName {
        StreamName::parse("main").unwrap()
    }

    #[test]
    fn a_grant_is_found_by_its_secret_and_only_by_it() {
        let grants = PublishGrants::default();
        let secret = grants.mint("tok1", &main(), Some(&SourceId::parse("cam1").unwrap()), None).unwrap();
        assert!(secret.starts_with(GRANT_PREFIX));
        let grant = grants.find(&secret).unwrap();
        assert_eq!(
            (grant.token_id.as_str(), grant.stream_name.as_str(), grant.source_id.as_deref()),
            ("tok1", "main", Some("cam1"))
        );
        assert!(grants.find("fcg_0000").is_none());
        assert!(grants.find(&secret.replace('a', "b")).is_none() || !secret.contains('a'));
    }

    #[test]
    fn a_token_keeps_a_bounded_number_and_rotation_or_logout_revokes_them() {
        let grants = PublishGrants::default();
        let first = grants.mint("tok", &main(), None, Some("s1".into())).unwrap();
        let rest: Vec<String> =
            (1..=GRANTS_PER_TOKEN).map(|_| grants.mint("tok", &main(), None, Some("s1".into())).unwrap()).collect();
        assert!(grants.find(&first).is_none(), "the oldest gave way");
        assert!(rest.iter().all(|g| grants.find(g).is_some()));
        assert_eq!(grants.lock().len(), GRANTS_PER_TOKEN);
        let other_session = grants.mint("tok2", &main(), None, Some("s2".into())).unwrap();
        grants.revoke_session("s1");
        assert!(rest.iter().all(|g| grants.find(g).is_none()), "logged out: gone");
        assert!(grants.find(&other_session).is_some(), "another session's stays");
        grants.revoke_token("tok2");
        assert!(grants.find(&other_session).is_none(), "rotated: gone");
    }
}
