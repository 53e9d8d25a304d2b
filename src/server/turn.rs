//! Time-limited TURN credentials: the TURN REST scheme that coturn checks with
//! `use-auth-secret` (draft-uberti-behave-turn-rest): the username is `expiry:tag` (expiry in
//! Unix seconds) and the credential is base64(HMAC-SHA1(secret, username)). A page gets
//! credentials that stop working after `--turn-ttl`, so no lasting TURN password is ever public.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::sfu::IceServer;

/// The shared secret with the TURN server (`--turn-secret`) and how long credentials last.
#[derive(Clone)]
pub struct TurnSecret {
    secret: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnSecret").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl TurnSecret {
    pub fn new(secret: &str, ttl: Duration) -> Self {
        Self { secret: secret.as_bytes().to_vec(), ttl }
    }

    /// `(username, credential)` valid until `now + ttl`; `tag` tells sessions apart in the TURN
    /// server's logs.
    pub fn credentials(&self, now: SystemTime, tag: &str) -> (String, String) {
        let expiry = (now + self.ttl).duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let username = format!("{expiry}:{tag}");
        let mut mac = Hmac::<Sha1>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(username.as_bytes());
        let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        (username, credential)
    }
}

/// The ICE servers to hand a client now: configured entries as they are, and every `turn:` or
/// `turns:` entry configured without a username with fresh credentials when a secret is set
/// (tagged with a random word, so the TURN server's logs tell clients apart).
pub fn ice_servers_now(servers: &[IceServer], turn: Option<&TurnSecret>) -> Vec<IceServer> {
    let Some(turn) = turn else { return servers.to_vec() };
    let mut fresh = None;
    servers
        .iter()
        .map(|server| {
            if !server.is_turn() || server.username.is_some() {
                return server.clone();
            }
            let (username, credential) =
                fresh.get_or_insert_with(|| turn.credentials(SystemTime::now(), &random_tag())).clone();
            IceServer { url: server.url.clone(), username: Some(username), credential: Some(credential) }
        })
        .collect()
}

fn random_tag() -> String {
    let mut bytes = [0u8; 4];
    // Only a label for logs: a failed draw leaves it zero.
    let _ = getrandom::getrandom(&mut bytes);
    super::session::hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_turn_rest_scheme() {
        // Expected value from Python: base64(hmac.new(b"north-wind", b"1700003600:abcd1234", sha1)).
        let turn = TurnSecret::new("north-wind", Duration::from_secs(3600));
        let (username, credential) = turn.credentials(UNIX_EPOCH + Duration::from_secs(1_700_000_000), "abcd1234");
        assert_eq!(username, "1700003600:abcd1234");
        assert_eq!(credential, "9PgWZmQeSje6QvoEskDIpz3pnRE=");
    }

    #[test]
    fn only_turn_entries_without_a_username_get_fresh_credentials() {
        let server = |url: &str, user: Option<&str>| IceServer {
            url: url.into(),
            username: user.map(Into::into),
            credential: user.map(|_| "static".into()),
        };
        let configured = vec![
            server("stun:stun.example.net", None),
            server("turn:turn.example.net?transport=udp", None),
            server("turns:turn.example.net:5349", None),
            server("turn:other.example.net", Some("alice")),
        ];
        let turn = TurnSecret::new("north-wind", Duration::from_secs(3600));
        let now = ice_servers_now(&configured, Some(&turn));
        assert_eq!(now[0], configured[0]);
        assert_eq!(now[3], configured[3], "a configured username is kept");
        for fresh in &now[1..3] {
            let username = fresh.username.as_deref().unwrap();
            let expiry: u64 = username.split_once(':').unwrap().0.parse().unwrap();
            let in_an_hour = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 3600;
            assert!(expiry.abs_diff(in_an_hour) <= 2, "{username}");
            assert!(fresh.credential.as_deref().is_some_and(|c| c.len() == 28), "base64 of 20 bytes");
        }
        assert_eq!(ice_servers_now(&configured, None), configured, "without a secret nothing changes");
    }
}
