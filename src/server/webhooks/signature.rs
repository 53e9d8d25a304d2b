//! The `Ferrocast-Signature` header (README "Webhooks"): `t=<unix seconds>,v1=<hex>`, where v1 is
//! HMAC-SHA256 with the endpoint's secret over `<t>.<body>`. Signing the time with the body lets
//! a receiver refuse replays of old deliveries (it compares `t` with its clock).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::server::session::hex;

pub const HEADER: &str = "ferrocast-signature";

/// The header value for `body` sent at `unix_seconds`.
pub fn sign(secret: &str, unix_seconds: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={unix_seconds},v1={}", hex(&mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_time_and_the_body() {
        let signed = sign("fcw_secret", 1_700_000_000, r#"{"type":"stream.started"}"#);
        let (t, v1) = signed.split_once(',').unwrap();
        assert_eq!(t, "t=1700000000");
        assert_eq!(v1.len(), 3 + 64);
        assert_eq!(signed, sign("fcw_secret", 1_700_000_000, r#"{"type":"stream.started"}"#));
        assert_ne!(signed, sign("fcw_secret", 1_700_000_001, r#"{"type":"stream.started"}"#));
        assert_ne!(signed, sign("fcw_secret", 1_700_000_000, r#"{"type":"stream.ended"}"#));
        assert_ne!(signed, sign("fcw_other", 1_700_000_000, r#"{"type":"stream.started"}"#));
    }

    /// The value a receiver computes with any HMAC library (this one from Python's `hmac`).
    #[test]
    fn it_is_plain_hmac_sha256_over_time_dot_body() {
        assert_eq!(
            sign("fcw_key", 1_733_280_000, r#"{"type":"webhook.test"}"#),
            "t=1733280000,v1=91e93145dcd19d80fd7d40662d37bed0eeed291140174a95f5b8845e6920b443"
        );
    }
}
