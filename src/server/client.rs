//! Who is on the other end of a request: the client's address and whether it reached us over
//! HTTPS, with reverse proxies accounted for (`--trusted-proxy`). Rate limits, logs and cookie
//! flags read this, never the raw headers.

use std::net::{IpAddr, SocketAddr};

use axum::{
    body::Body,
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue},
    middleware::Next,
    response::Response,
};
use ipnet::IpNet;

use super::{transport::PeerAddr, AppState};

/// HSTS for a year: browsers then never try plain HTTP for this host (RFC 6797). No
/// `includeSubDomains`: other services under the same domain are not ours to decide for.
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

/// The client of one request, as settled by [`identify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The client's address: the TCP peer, or the address a trusted proxy forwarded for.
    pub ip: IpAddr,
    /// The browser talks HTTPS to us (directly, or to a trusted proxy that says so).
    pub https: bool,
    /// Session cookies get `Secure` and the `__Host-` prefix: HTTPS, or an https public URL.
    pub secure_cookies: bool,
}

impl Client {
    /// What a request carries when it did not pass [`identify`] (never in a served app).
    const UNKNOWN: Client =
        Client { ip: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), https: false, secure_cookies: false };

    /// The client settled for this request.
    pub fn of(parts: &Parts) -> Client {
        Self::from_extensions(&parts.extensions)
    }

    pub fn from_extensions(extensions: &axum::http::Extensions) -> Client {
        extensions.get::<Client>().copied().unwrap_or(Self::UNKNOWN)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Client::of(parts))
    }
}

/// The reverse proxies whose forwarding headers are believed (`--trusted-proxy`).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>) -> Self {
        Self(ranges)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address and scheme. Headers count only when the TCP peer is a trusted
    /// proxy; then the client is the rightmost forwarded address that is not itself a trusted
    /// proxy (everything left of it was written by the client and may be forged).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap, tls: bool) -> (IpAddr, bool) {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return (peer, tls);
        }
        let ip = forwarded_for(headers, |ip| self.contains(ip)).unwrap_or(peer);
        let https = tls || forwarded_proto(headers).is_some_and(|p| p.eq_ignore_ascii_case("https"));
        (ip, https)
    }
}

/// The client address proxies forwarded: `X-Forwarded-For` (what nginx, Caddy, HAProxy and
/// cloud load balancers set), else `Forwarded` (RFC 7239). `X-Forwarded-For` wins when both are
/// present, so a client's forged `Forwarded` passes through a proxy that only appends
/// `X-Forwarded-For` without effect.
fn forwarded_for(headers: &HeaderMap, trusted: impl Fn(IpAddr) -> bool) -> Option<IpAddr> {
    let xff = all_values(headers, "x-forwarded-for");
    let hops: Vec<Option<IpAddr>> = if !xff.is_empty() {
        xff.iter().map(|hop| parse_node(hop)).collect()
    } else {
        all_values(headers, "forwarded")
            .iter()
            .map(|element| forwarded_param(element, "for").and_then(parse_node))
            .collect()
    };
    let mut leftmost = None;
    for hop in hops.iter().rev() {
        // A hop we cannot read ("unknown", an obfuscated name, garbage) ends the chain of
        // trust: nothing left of it can be believed.
        let ip = (*hop)?;
        if !trusted(ip) {
            return Some(ip);
        }
        leftmost = Some(ip);
    }
    leftmost
}

/// The scheme the client used, as the proxy talking to us reports it: the rightmost
/// `X-Forwarded-Proto` value (the one that proxy wrote or appended), else `Forwarded: proto=`.
fn forwarded_proto(headers: &HeaderMap) -> Option<String> {
    if let Some(proto) = all_values(headers, "x-forwarded-proto").pop() {
        return Some(proto);
    }
    all_values(headers, "forwarded").iter().rev().find_map(|e| forwarded_param(e, "proto")).map(str::to_owned)
}

/// Every comma-separated entry of every instance of a header, in order, trimmed.
fn all_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// `name=value` from one `Forwarded` element (`for=192.0.2.1;proto=https`), unquoted.
fn forwarded_param<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().trim_matches('"'))
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    node.strip_prefix('[').and_then(|n| n.strip_suffix(']')).and_then(|n| n.parse::<IpAddr>().ok())
}

/// The middleware: settles the [`Client`] of the request for everything after it, and marks
/// HTTPS responses with `Strict-Transport-Security`.
pub async fn identify(State(state): State<AppState>, mut request: Request<Body>, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|ConnectInfo(PeerAddr(addr))| addr.ip())
        .unwrap_or(Client::UNKNOWN.ip);
    let (ip, https) = state.settings.proxies.client(peer, request.headers(), state.settings.tls);
    let client = Client { ip, https, secure_cookies: https || state.settings.https_public_url };
    request.extensions_mut().insert(client);
    let mut response = next.run(request).await;
    if client.https {
        response.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()])
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let forged = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=1.2.3.4;proto=https"),
        ]);
        assert_eq!(proxies().client(ip("192.0.2.7"), &forged, false), (ip("192.0.2.7"), false));
        assert_eq!(TrustedProxies::default().client(ip("127.0.0.1"), &forged, false), (ip("127.0.0.1"), false));
    }

    #[test]
    fn a_trusted_proxy_names_the_rightmost_untrusted_hop() {
        // The client prepended a forged address; nginx appended the real one; an inner proxy
        // (10.1.1.1) appended the outer proxy's address.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.1.1.1"), ("x-forwarded-proto", "https")]);
        assert_eq!(proxies().client(ip("127.0.0.1"), &h, false), (ip("198.51.100.4"), true));
        // Several header lines count as one list.
        let h = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "198.51.100.4")]);
        assert_eq!(proxies().client(ip("10.9.9.9"), &h, false).0, ip("198.51.100.4"));
        // Only trusted hops: the leftmost is the client.
        let h = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.6")]);
        assert_eq!(proxies().client(ip("127.0.0.1"), &h, false).0, ip("10.0.0.5"));
        // Nothing forwarded: the proxy itself.
        assert_eq!(proxies().client(ip("127.0.0.1"), &HeaderMap::new(), false), (ip("127.0.0.1"), false));
    }

    #[test]
    fn forwarded_is_read_when_x_forwarded_for_is_absent() {
        let h = headers(&[("forwarded", r#"for=6.6.6.6, for="[2001:db8::1]:4711";proto=https"#)]);
        assert_eq!(proxies().client(ip("127.0.0.1"), &h, false), (ip("2001:db8::1"), true));
        let h = headers(&[("forwarded", "for=198.51.100.4"), ("x-forwarded-for", "192.0.2.1")]);
        assert_eq!(proxies().client(ip("127.0.0.1"), &h, false).0, ip("192.0.2.1"), "X-Forwarded-For wins");
    }

    #[test]
    fn an_unreadable_hop_ends_the_chain_of_trust() {
        let h = headers(&[("x-forwarded-for", "198.51.100.4, garbage")]);
        assert_eq!(proxies().client(ip("127.0.0.1"), &h, false).0, ip("127.0.0.1"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(proxies().client(ip("127.0.0.1"), &h, false).0, ip("127.0.0.1"));
    }

    #[test]
    fn mapped_ipv4_peers_match_ipv4_ranges() {
        let h = headers(&[("x-forwarded-for", "198.51.100.4")]);
        assert_eq!(proxies().client(ip("::ffff:127.0.0.1"), &h, false).0, ip("198.51.100.4"));
    }

    #[test]
    fn direct_tls_is_https_and_a_proxy_cannot_downgrade_it() {
        let h = headers(&[("x-forwarded-proto", "http")]);
        assert!(proxies().client(ip("127.0.0.1"), &h, true).1);
        assert!(proxies().client(ip("192.0.2.7"), &HeaderMap::new(), true).1);
    }
}
