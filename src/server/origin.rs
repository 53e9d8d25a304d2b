//! Refuses state-changing requests sent by other sites (CSRF).
//!
//! Browsers name the sender of a cross-site request in `Origin` (and `Sec-Fetch-Site`), and a
//! page cannot forge either. A request that changes state is let through only when it names this
//! site, or names nothing at all (curl, scripts: they hold no victim's cookie). SameSite=Lax
//! cookies already keep other sites' POSTs anonymous; this check also covers same-site
//! neighbours (other ports, sibling subdomains) and browsers without SameSite.

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderMap, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{error::ApiError, AppState};

/// Paths whose callers authenticate with a bearer token and are meant to be called from any
/// site (WHIP/WHEP, PRODUCT.md §5); they answer CORS themselves.
const CROSS_ORIGIN_PREFIXES: &[&str] = &["/whip/", "/whep/"];

/// The middleware: passes safe methods, exempt paths and same-origin requests.
pub async fn refuse_cross_origin_mutations(
    State(state): State<AppState>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let exempt = CROSS_ORIGIN_PREFIXES.iter().any(|p| request.uri().path().starts_with(p));
    if safe || exempt || is_same_origin(request.headers(), &state.settings.public_origin) {
        return next.run(request).await;
    }
    tracing::info!(path = %request.uri().path(), origin = ?request.headers().get(header::ORIGIN), "cross-origin request refused");
    ApiError::CrossOrigin.into_response()
}

/// True when the request comes from this site, or from something that is not a browser page.
pub(super) fn is_same_origin(headers: &HeaderMap, public_origin: &str) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else { return false };
        if origin.eq_ignore_ascii_case(public_origin) {
            return true;
        }
        // The site may be reached under another name than the public URL (127.0.0.1 vs
        // localhost): an Origin equal to the Host the browser connected to is this site too.
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_authority = origin.split_once("://").map(|(_, rest)| rest);
        return matches!((origin_authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h));
    }
    // No Origin: old browsers on some same-origin requests, or a non-browser client. Fetch
    // metadata, when present, still tells a cross-site request apart.
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin" || site == "none",
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn same_origin_and_headless_clients_pass() {
        let public = "https://stream.example.com";
        assert!(is_same_origin(&headers(&[("origin", "https://stream.example.com")]), public));
        assert!(is_same_origin(&headers(&[("origin", "http://localhost:3000"), ("host", "localhost:3000")]), public));
        assert!(is_same_origin(&headers(&[]), public));
        assert!(is_same_origin(&headers(&[("sec-fetch-site", "same-origin")]), public));
    }

    #[test]
    fn other_sites_are_refused() {
        let public = "http://127.0.0.1:3000";
        assert!(!is_same_origin(&headers(&[("origin", "https://evil.example"), ("host", "127.0.0.1:3000")]), public));
        assert!(!is_same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1:3000")]), public));
        assert!(!is_same_origin(&headers(&[("origin", "http://127.0.0.1:3001"), ("host", "127.0.0.1:3000")]), public));
        assert!(!is_same_origin(&headers(&[("sec-fetch-site", "cross-site")]), public));
        assert!(!is_same_origin(&headers(&[("sec-fetch-site", "same-site")]), public));
    }
}
