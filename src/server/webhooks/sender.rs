//! Delivers queued webhooks: each endpoint's oldest pending delivery first (so one endpoint hears
//! a stream's events in order), retried with backoff for 24 hours, every attempt written down.
//! Runs as one task beside the server; nothing of the media path waits for it.

use std::{
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::body::Body;
use hyper_util::client::legacy::{
    connect::{dns::Name, HttpConnector},
    Client,
};
use sqlx::SqlitePool;
use tokio::sync::{watch, Notify};

use super::signature;
use crate::db::{self, webhooks::DueDelivery};

/// How long one attempt may take, connection to last byte.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// After this long since it was queued, a delivery that keeps failing is given up.
pub const GIVE_UP_AFTER_MS: i64 = 24 * 3600 * 1000;
/// Waits after the 1st, 2nd, … failed attempt; the last repeats.
const BACKOFF_SECS: [i64; 8] = [5, 30, 120, 600, 1800, 3600, 7200, 14400];
/// Delivered or failed deliveries kept per endpoint for the log.
pub const LOG_KEPT: i64 = 200;
/// Queue heads sent at once (different endpoints).
const BATCH: i64 = 16;

/// When to try again after `failed` attempts, or `None` to give up.
pub fn next_attempt(created_at_ms: i64, now_ms: i64, failed: i64) -> Option<i64> {
    let index = usize::try_from(failed.max(1) - 1).unwrap_or(0).min(BACKOFF_SECS.len() - 1);
    let next = now_ms + BACKOFF_SECS[index] * 1000;
    (next <= created_at_ms + GIVE_UP_AFTER_MS).then_some(next)
}

pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>, Body>;

/// The client webhooks go out with: HTTPS checked against the system's roots, plain HTTP allowed,
/// no redirects followed (a 3xx is a failed attempt), and no private address reached unless
/// `allow_private` (`--webhooks-private-networks`): an account holder must not make the server
/// probe its own network.
pub fn client(allow_private: bool) -> Result<HttpClient, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| e.to_string())?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let mut http = HttpConnector::new_with_resolver(GuardedResolver { allow_private });
    http.enforce_http(false);
    http.set_connect_timeout(Some(ATTEMPT_TIMEOUT));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// unique-local, multicast or unspecified).
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Resolves names, dropping private addresses unless they are allowed.
#[derive(Clone, Copy)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> =
                found.iter().copied().filter(|a| allow_private || is_public(a.ip())).collect();
            if usable.is_empty() && !found.is_empty() {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, PRIVATE_REFUSED));
            }
            Ok(usable.into_iter())
        })
    }
}

const PRIVATE_REFUSED: &str =
    "the address is on a private network; the server's --webhooks-private-networks allows that";

/// Sends until shutdown: whatever is due, then sleeps until the next is due or `wake` says a
/// delivery was queued.
pub async fn run(
    pool: SqlitePool,
    client: HttpClient,
    allow_private: bool,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut pruned_at = Instant::now();
    loop {
        let now = db::now_unix_ms();
        match db::webhooks::due(&pool, now, BATCH).await {
            Ok(batch) if !batch.is_empty() => {
                let attempts = batch.into_iter().map(|due| attempt(&pool, &client, allow_private, due));
                futures_util::future::join_all(attempts).await;
                continue;
            }
            Ok(_) => {}
            Err(err) => tracing::error!(%err, "webhooks: database error"),
        }
        if pruned_at.elapsed() > Duration::from_secs(600) {
            pruned_at = Instant::now();
            if let Err(err) = db::webhooks::prune(&pool, LOG_KEPT).await {
                tracing::error!(%err, "webhooks: pruning the delivery log");
            }
        }
        let next = db::webhooks::next_due_at(&pool).await.ok().flatten();
        let wait = next.map_or(60_000, |at| (at - db::now_unix_ms()).clamp(0, 60_000));
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// One try of one delivery, written down whatever happens.
async fn attempt(pool: &SqlitePool, client: &HttpClient, allow_private: bool, due: DueDelivery) {
    let at_ms = db::now_unix_ms();
    let started = Instant::now();
    let result = tokio::time::timeout(ATTEMPT_TIMEOUT, post(client, allow_private, &due, at_ms / 1000))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())));
    let latency_ms = started.elapsed().as_millis() as i64;
    let (status, error) = match &result {
        Ok((status, _)) if (200..300).contains(status) => (Some(i64::from(*status)), None),
        Ok((status, body)) => (Some(i64::from(*status)), Some(format!("HTTP {status}: {body}"))),
        Err(err) => (None, Some(err.clone())),
    };
    let (outcome, next_attempt_at) = match error {
        None => ("delivered", None),
        Some(_) => match next_attempt(due.created_at, at_ms, due.attempts + 1) {
            Some(next) => ("pending", Some(next)),
            None => ("failed", None),
        },
    };
    metrics::counter!("ferrocast_webhook_attempts_total", "outcome" => outcome).increment(1);
    if let Some(error) = &error {
        tracing::info!(delivery = due.id, endpoint = %due.endpoint_id, event = %due.event_type, %error, outcome, "webhook attempt failed");
    }
    let written =
        db::webhooks::Attempt { at_ms, status, error: error.as_deref(), latency_ms, outcome, next_attempt_at };
    if let Err(err) = db::webhooks::record_attempt(pool, due.id, &written).await {
        tracing::error!(%err, delivery = due.id, "webhooks: recording an attempt");
    }
}

/// POSTs the delivery; the status and the first bytes of the answer, or why there is none.
async fn post(client: &HttpClient, allow_private: bool, due: &DueDelivery, unix: i64) -> Result<(u16, String), String> {
    let uri: http::Uri = due.url.parse().map_err(|e| format!("the URL does not parse: {e}"))?;
    // An address written in the URL is not resolved, so the resolver's check does not see it.
    if let Some(ip) = uri.host().and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok()) {
        if !allow_private && !is_public(ip) {
            return Err(PRIVATE_REFUSED.to_owned());
        }
    }
    let request = http::Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, concat!("ferrocast-webhooks/", env!("CARGO_PKG_VERSION")))
        .header("ferrocast-event", &due.event_type)
        .header("ferrocast-delivery", due.id.to_string())
        .header(signature::HEADER, signature::sign(&due.secret, unix, &due.payload))
        .body(Body::from(due.payload.clone()))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| describe(&e))?;
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(Body::new(response.into_body()), 64 * 1024).await.unwrap_or_default();
    let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
    Ok((status, text))
}

/// A client error with its causes (hyper's own message alone says only "client error").
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_stop_after_a_day() {
        assert_eq!(next_attempt(0, 1_000, 1), Some(6_000));
        assert_eq!(next_attempt(0, 1_000, 2), Some(31_000));
        assert_eq!(next_attempt(0, 0, 50), Some(14_400_000), "the last wait repeats");
        assert_eq!(next_attempt(0, GIVE_UP_AFTER_MS - 5_000, 1), Some(GIVE_UP_AFTER_MS));
        assert_eq!(next_attempt(0, GIVE_UP_AFTER_MS - 4_999, 1), None);
    }

    #[test]
    fn private_networks_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "100.128.0.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
