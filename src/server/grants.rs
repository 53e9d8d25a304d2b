//! Short-lived publish grants: the online broadcaster publishes as a logged-in user without the
//! token's secret ever reaching the browser. A grant (`fcg_…`) is minted for one token, stream name
//! and source, lives ten minutes (enough to reconnect), and is checked at the WHIP door through the
//! same publish rule as the token itself, so disabling or deleting the token refuses it too.
//! Grants live in memory only: a restart simply asks the page for a new one.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::secrets;

pub const GRANT_PREFIX: &str = "fcg_";
pub const GRANT_TTL: Duration = Duration::from_secs(600);

/// What a grant lets its bearer publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub token_id: String,
    pub stream_name: String,
    pub source_id: Option<String>,
    expires: Instant,
}

#[derive(Default)]
pub struct PublishGrants {
    /// By the SHA-256 of the grant secret, like every other secret.
    grants: Mutex<HashMap<String, Grant>>,
}

impl PublishGrants {
    /// Mints a grant and returns its secret.
    pub fn mint(
        &self,
        token_id: &str,
        stream_name: &str,
        source_id: Option<&str>,
    ) -> Result<String, super::error::ApiError> {
        let minted = secrets::mint(GRANT_PREFIX)?;
        let now = Instant::now();
        let grant = Grant {
            token_id: token_id.to_owned(),
            stream_name: stream_name.to_owned(),
            source_id: source_id.map(str::to_owned),
            expires: now + GRANT_TTL,
        };
        let mut grants = self.grants.lock().expect("grants lock is never poisoned: no panics while held");
        grants.retain(|_, g| g.expires > now);
        grants.insert(minted.hash, grant);
        Ok(minted.secret)
    }

    /// The grant behind a secret, unless unknown or expired.
    pub fn find(&self, secret: &str) -> Option<Grant> {
        let grants = self.grants.lock().expect("grants lock is never poisoned: no panics while held");
        grants.get(&secrets::hash(secret)).filter(|g| g.expires > Instant::now()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_found_by_its_secret_and_only_by_it() {
        let grants = PublishGrants::default();
        let secret = grants.mint("tok1", "main", Some("cam1")).unwrap();
        assert!(secret.starts_with(GRANT_PREFIX));
        let grant = grants.find(&secret).unwrap();
        assert_eq!(
            (grant.token_id.as_str(), grant.stream_name.as_str(), grant.source_id.as_deref()),
            ("tok1", "main", Some("cam1"))
        );
        assert!(grants.find("fcg_0000").is_none());
        assert!(grants.find(&secret.replace('a', "b")).is_none() || !secret.contains('a'));
    }
}
