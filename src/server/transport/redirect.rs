//! `--http-listen`: plain HTTP that answers ACME HTTP-01 challenges (RFC 8555 §8.3) and sends
//! everything else to the HTTPS site with a 308, which keeps the method and body.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};

use super::acme::Http01Answers;

/// Where redirects point.
#[derive(Clone, Debug)]
pub struct RedirectTarget {
    /// `https://host[:port]` of an https `--public-url`; else the name the visitor asked for.
    pub origin: Option<String>,
    /// Port of the HTTPS listener, added to the visitor's host name unless it is 443.
    pub https_port: u16,
}

#[derive(Clone)]
struct HelperState {
    answers: Arc<Http01Answers>,
    target: Arc<RedirectTarget>,
}

/// The helper's whole surface.
pub fn router(answers: Arc<Http01Answers>, target: RedirectTarget) -> Router {
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(challenge))
        .fallback(redirect)
        .with_state(HelperState { answers, target: Arc::new(target) })
}

/// The key authorization of an open order's token, as `application/octet-stream` would also
/// do; RFC 8555 §8.3 asks for the bare key authorization.
async fn challenge(State(state): State<HelperState>, Path(token): Path<String>) -> Response {
    match state.answers.get(&token) {
        Some(key_authorization) => {
            tracing::debug!("answered an HTTP-01 validation");
            ([(header::CONTENT_TYPE, "text/plain")], key_authorization).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no ACME challenge with this token is open\n").into_response(),
    }
}

async fn redirect(State(state): State<HelperState>, headers: HeaderMap, uri: Uri) -> Response {
    let path = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let origin = match (&state.target.origin, host_name(&headers)) {
        (Some(origin), _) => origin.clone(),
        (None, Some(host)) if state.target.https_port == 443 => format!("https://{host}"),
        (None, Some(host)) => format!("https://{host}:{}", state.target.https_port),
        (None, None) => {
            return (StatusCode::BAD_REQUEST, "this site is served over HTTPS; ask for it by its name\n")
                .into_response()
        }
    };
    match HeaderValue::from_str(&format!("{origin}{path}")) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "the request path cannot be redirected\n").into_response(),
    }
}

/// The host name of `Host`, without its port, if it is a plain DNS name, IPv4 address or
/// bracketed IPv6 address (nothing a visitor sends may smuggle another URL into `Location`).
fn host_name(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => {
            let (address, rest) = v6.split_once(']')?;
            address.parse::<std::net::Ipv6Addr>().ok()?;
            (&host[..address.len() + 2], rest.strip_prefix(':'))
        }
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let plain_name = name.starts_with('[') || name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let plain_port = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    (!name.is_empty() && name.len() <= 255 && plain_name && plain_port).then(|| name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &'static str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(value));
        host_name(&headers)
    }

    #[test]
    fn the_host_name_is_taken_without_its_port_and_only_if_plain() {
        assert_eq!(host("Live.Example.com:80").as_deref(), Some("live.example.com"));
        assert_eq!(host("live.example.com").as_deref(), Some("live.example.com"));
        assert_eq!(host("[2001:db8::1]:80").as_deref(), Some("[2001:db8::1]"));
        assert_eq!(host("evil.example/x"), None);
        assert_eq!(host("a@b.example"), None);
        assert_eq!(host("a:b:80"), None);
        assert_eq!(host("live.example.com:x"), None);
        assert_eq!(host("[live.example.com]:80"), None);
        assert_eq!(host_name(&HeaderMap::new()), None);
    }
}
