//! The HTTP side: axum router, state, authentication, the JSON API and the Leptos pages.
//! It knows HTTP and SQL; it never touches a peer connection.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod error;
pub mod grants;
mod headers;
pub mod live;
mod origin;
mod pages;
pub mod password;
pub mod publish_rule;
pub mod rate_limit;
pub mod secrets;
pub mod session;
mod signaling;
pub mod timestamps;
pub mod tokens;
mod watch;

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::serve::ListenerExt;
use axum::{
    extract::{FromRef, State},
    http::StatusCode,
    middleware,
    response::IntoResponse,
    routing::get,
    Json, Router,
};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use sqlx::SqlitePool;
use tokio::net::TcpListener;
use tower_http::{compression::CompressionLayer, trace::TraceLayer};
use url::Url;

use crate::{
    app::{shell, App},
    config::Config,
    db,
    sfu::{self, IceServer, SfuHandle},
};
use accounts::Accounts;

/// Settings derived once from the configuration.
#[derive(Debug)]
pub struct Settings {
    /// Base URL for links shown to people (share links, WHIP URLs), without a trailing slash.
    pub public_url: String,
    /// `scheme://host[:port]` of `public_url`, as browsers write it in `Origin`.
    pub public_origin: String,
    /// Mark cookies `Secure`: the site is served over https.
    pub secure_cookies: bool,
    /// STUN/TURN servers handed to WebRTC clients.
    pub ice_servers: Vec<IceServer>,
}

/// Everything a handler, page or server function may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub pool: SqlitePool,
    pub accounts: Arc<Accounts>,
    pub settings: Arc<Settings>,
    pub sfu: SfuHandle,
    /// Short-lived publish grants for the online broadcaster.
    pub grants: Arc<grants::PublishGrants>,
    /// Flips to `true` when the server starts shutting down: long-lived responses (event
    /// streams) end so that graceful shutdown does not wait for them.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database in {dir}: {source}")]
    Database { dir: String, source: sqlx::Error },
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot open the SFU's UDP port {port}: {source}")]
    Rtc { port: u16, source: std::io::Error },
}

/// A bound, ready-to-run server. Tests build it on port 0 and read [`Application::local_addr`].
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Opens the database, applies migrations, binds the listener and assembles the router.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let pool = db::open(&config.data_dir)
            .await
            .map_err(|source| StartError::Database { dir: config.data_dir.display().to_string(), source })?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Listen { addr: config.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen { addr: config.listen, source })?;

        let settings = Arc::new(settings_for(&config, local_addr));
        let leptos_options = LeptosOptions::builder()
            .output_name("ferrocast")
            .site_root(config.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(local_addr)
            .env(leptos::config::Env::PROD)
            .build();
        let accounts = Arc::new(Accounts::new(pool.clone(), config.signup));
        let sfu =
            sfu::start(config.sfu()).await.map_err(|source| StartError::Rtc { port: config.rtc_udp_port, source })?;
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        let state =
            AppState { pool, accounts, settings, sfu, grants: Arc::default(), shutdown: shutdown_rx, leptos_options };
        let router = router(state.clone());

        let warm = state.accounts.clone();
        tokio::spawn(async move { warm.warm_up().await });
        tracing::info!(listen = %local_addr, public_url = %state.settings.public_url, "ferrocast ready");
        Ok(Self { listener, router, state, shutdown })
    }

    /// The address actually bound (resolves port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The UDP addresses of the SFU (resolves `--rtc-udp-port 0`).
    pub fn rtc_addrs(&self) -> Vec<SocketAddr> {
        self.state.sfu.udp_addrs().to_vec()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and closes the database.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        let stopping = self.shutdown;
        let shutdown = async move {
            shutdown.await;
            let _ = stopping.send(true);
        };
        // Without TCP_NODELAY a response written in two parts (head, body) waits for the client's
        // delayed ACK: a flat ~40 ms on every page (`cargo bench --bench web`).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(%err, "TCP_NODELAY");
            }
        });
        axum::serve(listener, service).with_graceful_shutdown(shutdown).await?;
        self.state.pool.close().await;
        tracing::info!("ferrocast stopped");
        Ok(())
    }
}

fn settings_for(config: &Config, local_addr: SocketAddr) -> Settings {
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| Url::parse(&format!("http://{local_addr}")).expect("a socket address makes a valid URL"));
    Settings {
        public_origin: public_url.origin().ascii_serialization(),
        secure_cookies: public_url.scheme() == "https",
        ice_servers: config.ice_servers.clone(),
        public_url: public_url.as_str().trim_end_matches('/').to_owned(),
    }
}

/// The whole HTTP surface. Request flow: trace → compression → security headers → CSRF guard →
/// page guard → route.
fn router(state: AppState) -> Router {
    let leptos_options = state.leptos_options.clone();
    let routes = generate_route_list(App);
    let context_state = state.clone();
    let provide_state = move || provide_context(context_state.clone());

    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api::router())
        .merge(signaling::router())
        .route("/watch/{account}/{stream}", get(watch::page))
        .leptos_routes_with_context(&state, routes, provide_state.clone(), {
            let leptos_options = leptos_options.clone();
            move || shell(leptos_options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(provide_state, shell))
        .layer(middleware::from_fn_with_state(state.clone(), pages::guard))
        .layer(middleware::from_fn_with_state(state.clone(), origin::refuse_cross_origin_mutations))
        .layer(middleware::from_fn(headers::security_headers))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `GET /healthz`: 200 when the database answers and the SFU runs.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    if !state.sfu.is_running() {
        tracing::error!("health check: the SFU has stopped");
        return (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "sfu stopped" })));
    }
    match sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&state.pool).await {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({ "status": "ok" }))),
        Err(err) => {
            tracing::error!(%err, "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({ "status": "database unavailable" })))
        }
    }
}
