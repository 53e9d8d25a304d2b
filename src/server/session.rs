//! Session cookies: the random id a browser holds, its hash we store, and the cookie attributes.

use axum::http::{header, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

/// Name of the cookie holding the session id over plain HTTP.
pub const COOKIE_NAME: &str = "fc_session";
/// Its name over HTTPS: with the `__Host-` prefix a browser takes it only with `Secure`,
/// `Path=/` and no `Domain`, so a sibling subdomain or a plain-HTTP page cannot plant or
/// overwrite it (RFC 6265bis §4.1.3.2).
pub const SECURE_COOKIE_NAME: &str = "__Host-fc_session";

/// The cookie's name for a client that gets `Secure` cookies (see [`crate::server::client::Client`]).
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}
/// How long a session lasts from login.
pub const SESSION_TTL_SECS: i64 = 14 * 24 * 60 * 60;

/// A freshly minted session id (64 hex characters, 256 random bits).
pub struct SessionId(String);

impl SessionId {
    /// Draws a new id from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes)?;
        Ok(Self(hex(&bytes)))
    }

    /// The value for the cookie; never stored or logged.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The stored form of a session id: its SHA-256 in hex, so a leaked database holds no usable id.
pub fn hash_id(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// The session id sent by the browser, if any. Over HTTPS only the `__Host-` cookie counts.
pub fn from_headers(headers: &HeaderMap, secure: bool) -> Option<&str> {
    let name = cookie_name(secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` for a new session: HttpOnly so scripts cannot read it, SameSite=Lax so other
/// sites' forms do not carry it, Secure when the site is served over https.
pub fn set_cookie(id: &SessionId, secure: bool) -> HeaderValue {
    cookie_header(id.expose(), SESSION_TTL_SECS, secure)
}

/// `Set-Cookie` that makes the browser forget its session.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    cookie_header("", 0, secure)
}

fn cookie_header(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let name = cookie_name(secure);
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    // The id is hex and the rest is ASCII, so the value is always a valid header.
    HeaderValue::from_str(&cookie).expect("cookie is visible ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; fc_session=abc ; b=2"));
        assert_eq!(from_headers(&headers, false), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("fc_session="));
        assert_eq!(from_headers(&headers, false), None);
    }

    #[test]
    fn over_https_only_the_host_prefixed_cookie_counts() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("fc_session=planted; __Host-fc_session=real"));
        assert_eq!(from_headers(&headers, true), Some("real"));
        assert_eq!(from_headers(&headers, false), Some("planted"));
        let cookie = set_cookie(&SessionId("ab".into()), true);
        assert_eq!(
            cookie.to_str().unwrap(),
            "__Host-fc_session=ab; Path=/; HttpOnly; SameSite=Lax; Max-Age=1209600; Secure"
        );
    }

    #[test]
    fn ids_are_random_and_stored_hashed() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a.expose(), b.expose());
        assert_ne!(hash_id(a.expose()), a.expose());
        assert_eq!(hash_id(a.expose()).len(), 64);
    }
}
