//! Bearer secrets (publish tokens, API keys, subscribe tokens): minting, hashing, hints.
//!
//! A secret is 256 random bits behind a recognisable prefix, so a leaked one is easy to spot in
//! logs and code. Only its SHA-256 is stored: with that much entropy a fast hash is as good as a
//! slow one, and it lets the lookup be one indexed equality.

use sha2::{Digest, Sha256};

use super::{error::ApiError, session::hex};

/// Prefix of publish token secrets.
pub const PUBLISH_TOKEN_PREFIX: &str = "fcp_";
/// Prefix of API key secrets.
pub const API_KEY_PREFIX: &str = "fck_";
/// Prefix of subscribe token secrets (they let their bearer watch).
pub const SUBSCRIBE_TOKEN_PREFIX: &str = "fcs_";
/// Sign-up invite codes (one use each).
pub const INVITE_PREFIX: &str = "fci_";
/// Webhook signing secrets: kept as they are (the server signs with them), shown once.
pub const WEBHOOK_SECRET_PREFIX: &str = "fcw_";

/// A freshly minted secret and what is stored about it.
pub struct MintedSecret {
    /// Shown to the user once.
    pub secret: String,
    pub hash: String,
    pub hint: String,
}

/// Mints a secret with `prefix`.
pub fn mint(prefix: &str) -> Result<MintedSecret, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| ApiError::Internal(format!("random source: {e}")))?;
    let secret = format!("{prefix}{}", hex(&bytes));
    Ok(MintedSecret { hash: hash(&secret), hint: hint(prefix, &secret), secret })
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// `fcp_…a1b2`: the prefix and the last four characters.
fn hint(prefix: &str, secret: &str) -> String {
    format!("{prefix}…{}", &secret[secret.len() - 4..])
}

/// A new random id for a token or key row (UUID v4, simple form).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hinted() {
        let a = mint(PUBLISH_TOKEN_PREFIX).unwrap();
        let b = mint(PUBLISH_TOKEN_PREFIX).unwrap();
        assert!(a.secret.starts_with("fcp_") && a.secret.len() == 4 + 64);
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.hash, hash(&a.secret));
        assert!(a.hint.starts_with("fcp_…") && a.secret.ends_with(&a.hint["fcp_…".len()..]));
    }
}
