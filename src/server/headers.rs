//! Response headers every page and API answer carries.

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue, Method},
    middleware::Next,
    response::Response,
};

/// Paths that other sites may frame: the public viewer is the embeddable player (PRODUCT.md §7).
const FRAMEABLE_PREFIXES: &[&str] = &["/watch/"];

/// Read-only resources any site may fetch, without credentials: the publish/play module and a
/// stream's public state and its feed (README, "The module from any site"). The signaling doors
/// answer CORS themselves; nothing that reads a session cookie is listed here.
fn is_public_resource(path: &str) -> bool {
    if path == "/ferrocast.js" {
        return true;
    }
    let Some(rest) = path.strip_prefix("/api/v1/streams/") else { return false };
    let mut segments = rest.split('/');
    let (account, stream, tail) = (segments.next(), segments.next(), segments.next());
    let named = account.is_some_and(|a| !a.is_empty()) && stream.is_some_and(|s| !s.is_empty());
    named && matches!(tail, None | Some("events")) && segments.next().is_none()
}

/// Adds hardening headers; refuses framing everywhere but the embeddable viewer, so the
/// dashboard cannot be click-jacked; lets other sites read the public resources.
pub async fn security_headers(request: Request<Body>, next: Next) -> Response {
    let frameable = FRAMEABLE_PREFIXES.iter().any(|p| request.uri().path().starts_with(p));
    let readable_anywhere =
        matches!(*request.method(), Method::GET | Method::HEAD) && is_public_resource(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if readable_anywhere {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin"));
    let framing = if frameable {
        "frame-ancestors *"
    } else {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        "frame-ancestors 'none'"
    };
    // A page that set its own policy (the script nonce of a dashboard page) keeps it, and the
    // viewer names the sites that may frame it itself (README "Embedding only on your sites").
    let policy = match headers.get(header::CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()) {
        Some(own) if frameable && own.contains("frame-ancestors") => own.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::is_public_resource;

    #[test]
    fn only_the_module_and_a_streams_public_state_are_readable_from_other_sites() {
        for path in ["/ferrocast.js", "/api/v1/streams/acc/live", "/api/v1/streams/acc/live/events"] {
            assert!(is_public_resource(path), "{path}");
        }
        for path in [
            "/api/v1/streams",
            "/api/v1/streams/",
            "/api/v1/streams/acc",
            "/api/v1/streams/acc/",
            "/api/v1/streams/acc/live/other",
            "/api/v1/streams/acc/live/events/x",
            "/api/v1/tokens",
            "/api/v1/me",
            "/ferrocast.js.map",
            "/broadcaster.js",
        ] {
            assert!(!is_public_resource(path), "{path}");
        }
    }
}
