//! `GET /api/v1/self-check`: what this server tells browsers about reaching it (public URL,
//! HTTPS, the media addresses it announces, the ICE servers it hands out) and, in words, what
//! stands in the way. The live half, whether media gets through from where the visitor sits, is
//! the connection test (`/self-check/probe`, README "Connectivity self-check").

use std::{
    net::{IpAddr, SocketAddr},
    time::UNIX_EPOCH,
};

use axum::{extract::State, Json};
use serde::Serialize;

use crate::{
    server::{auth::CurrentAccount, timestamps, AppState, CertificateSource},
    sfu::IceServer,
};

/// A certificate closer to its end than this is a warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfCheck {
    public_url: String,
    https: HttpsFacts,
    media: MediaFacts,
    ice_servers: Vec<IceServerFacts>,
    /// What will stop some visitors, in words; empty when nothing does.
    warnings: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpsFacts {
    /// Whether pages are reached over HTTPS (the public URL's scheme).
    enabled: bool,
    /// `certificate-files`, `acme`, `proxy` (a reverse proxy in front terminates TLS) or `none`.
    terminated_by: &'static str,
    certificate_expires: Option<String>,
    certificate_days_left: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MediaFacts {
    /// `ip:port` announced in UDP candidates.
    udp: Vec<String>,
    /// `ip:port` announced in ICE-TCP candidates; empty when ICE-TCP is off.
    tcp: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IceServerFacts {
    urls: String,
    /// `time-limited` (from --turn-secret), `static` or `none`. Never the secret itself.
    credentials: &'static str,
}

pub async fn self_check(State(state): State<AppState>, CurrentAccount(_): CurrentAccount) -> Json<SelfCheck> {
    let settings = &state.settings;
    let certificate = settings.certificates.as_ref().and_then(|(store, _)| store.current());
    let days_left = certificate.as_ref().map(|c| c.days_left());
    let https = HttpsFacts {
        enabled: settings.https_public_url,
        terminated_by: match (&settings.certificates, settings.https_public_url) {
            (Some((_, CertificateSource::Files)), _) => "certificate-files",
            (Some((_, CertificateSource::Acme)), _) => "acme",
            (None, true) => "proxy",
            (None, false) => "none",
        },
        certificate_expires: certificate.as_ref().map(|c| {
            let unix = c.not_after.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
            timestamps::to_rfc3339(unix)
        }),
        certificate_days_left: days_left,
    };
    let udp = state.sfu.udp_addrs();
    let tcp = state.sfu.tcp_addrs();
    let ice_servers: Vec<IceServerFacts> = settings
        .ice_servers
        .iter()
        .map(|server| IceServerFacts {
            urls: server.url.clone(),
            credentials: match (&server.username, &settings.turn) {
                (Some(_), _) => "static",
                (None, Some(_)) if server.is_turn() => "time-limited",
                _ => "none",
            },
        })
        .collect();
    let has_turn = settings.ice_servers.iter().any(IceServer::is_turn);

    let mut warnings = Vec::new();
    if udp.iter().all(|a| a.ip().is_loopback()) {
        warnings.push(format!(
            "Media is announced on {} only: only this machine can send or receive media. Start with --rtc-ip set to the \
             server's address, or --rtc-public-ip behind 1:1 NAT.",
            addr_list(udp)
        ));
    } else if udp.iter().all(|a| is_private(a.ip())) && !has_turn {
        warnings.push(format!(
            "Media is announced on the private address {} only: visitors outside this network cannot reach it. Behind 1:1 \
             NAT, give the public address with --rtc-public-ip; otherwise add a TURN server.",
            addr_list(udp)
        ));
    }
    if tcp.is_empty() && !has_turn {
        warnings.push(
            "ICE-TCP is off and no TURN server is configured: visitors whose network blocks UDP cannot publish or watch."
                .to_owned(),
        );
    }
    if !settings.https_public_url && !is_local_url(&settings.public_url) {
        warnings.push(
            "Pages are served over plain HTTP: browsers allow the camera and microphone only on HTTPS pages, so the \
             online broadcaster will not work for visitors. See /help/https."
                .to_owned(),
        );
    }
    if let Some(days) = days_left.filter(|d| *d < EXPIRY_WARNING_DAYS) {
        warnings.push(format!("The HTTPS certificate expires in {days} days."));
    }
    Json(SelfCheck {
        public_url: settings.public_url.clone(),
        https,
        media: MediaFacts {
            udp: udp.iter().map(SocketAddr::to_string).collect(),
            tcp: tcp.iter().map(SocketAddr::to_string).collect(),
        },
        ice_servers,
        warnings,
    })
}

fn addr_list(addrs: &[SocketAddr]) -> String {
    addrs.iter().map(SocketAddr::to_string).collect::<Vec<_>>().join(", ")
}

/// RFC 1918 / RFC 4193 addresses (and link-local): not reachable from the internet.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

/// A public URL only this machine opens (`localhost`, loopback): browsers treat it as secure.
fn is_local_url(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else { return false };
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost" || name.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_local_addresses_are_told_apart_from_public_ones() {
        for private in ["10.0.0.4", "172.16.3.1", "192.168.1.9", "169.254.0.1", "fd00::1", "fe80::1"] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in ["203.0.113.7", "8.8.8.8", "2001:db8::1"] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
        assert!(is_local_url("http://127.0.0.1:3000"));
        assert!(is_local_url("http://localhost:3000"));
        assert!(is_local_url("http://[::1]:3000"));
        assert!(!is_local_url("http://live.example.com"));
        assert!(!is_local_url("http://10.0.0.4:3000"));
    }
}
