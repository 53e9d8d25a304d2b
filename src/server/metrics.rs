//! `GET /metrics`: what an operator watches, in the Prometheus text format, rendered by
//! `metrics-exporter-prometheus` from the `metrics` facade. Served on the main listener to
//! loopback clients only (a scraper on the same machine, or through `--metrics-listen ADDR`).
//!
//! The media engine keeps plain counters on its packet path and hands them over once a second;
//! nothing here is touched per packet.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::{client::Client, AppState};

/// Seconds; a page render or an API call is milliseconds, an argon2 login ~0.1 s.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use (one per process, whatever the number of
/// servers a test runs in it).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("ferrocast_http_request_duration_seconds".into()), &LATENCY_BUCKETS)
            .expect("buckets are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics shows nothing");
        }
        handle
    })
}

/// A request refused by a rate limit or a cap, by door (`offer`, `trickle`, `feed`, `login`, `signup`).
pub fn rate_limited(door: &'static str) {
    metrics::counter!("ferrocast_rate_limited_total", "door" => door).increment(1);
}

/// A login with a wrong email or password.
pub fn login_failed() {
    metrics::counter!("ferrocast_login_failures_total").increment(1);
}

/// Counts every request by route (the pattern, never the raw path: bounded labels) and status,
/// and observes its latency.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16().to_string();
    metrics::counter!("ferrocast_http_requests_total", "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("ferrocast_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` on the main listener: loopback clients only; anyone else is told nothing is here.
pub async fn on_main_listener(State(state): State<AppState>, client: Client) -> Response {
    if !client.ip.is_loopback() {
        return StatusCode::NOT_FOUND.into_response();
    }
    render(&state)
}

/// The `--metrics-listen` server: `/metrics` for any client that reaches it.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(|State(state): State<AppState>| async move { render(&state) }))
        .with_state(state)
}

fn render(state: &AppState) -> Response {
    metrics::gauge!("ferrocast_feeds_open").set(state.feeds.open() as f64);
    // Tasks of the runtime serving this request: a leak shows as a count that only grows.
    let tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    metrics::gauge!("ferrocast_tasks_alive").set(tasks as f64);
    let handle = handle();
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}
