//! Response headers every page and API answer carries.

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue},
    middleware::Next,
    response::Response,
};

/// Paths that other sites may frame: the public viewer is the embeddable player (PRODUCT.md §7).
const FRAMEABLE_PREFIXES: &[&str] = &["/watch/"];

/// Adds hardening headers; refuses framing everywhere but the embeddable viewer, so the
/// dashboard cannot be click-jacked.
pub async fn security_headers(request: Request<Body>, next: Next) -> Response {
    let frameable = FRAMEABLE_PREFIXES.iter().any(|p| request.uri().path().starts_with(p));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    let framing = if frameable {
        "frame-ancestors *"
    } else {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        "frame-ancestors 'none'"
    };
    // A page that set its own policy (the script nonce of a dashboard page) keeps it.
    let policy = match headers.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()) {
        Some(own) => format!("{own}; {framing}"),
        None => framing.to_owned(),
    };
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    // Event streams must reach the browser as they happen: this tells nginx (and proxies that
    // copy its convention) not to buffer them, whatever its configuration says.
    if headers.get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream")) {
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    response
}
