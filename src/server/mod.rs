//! The HTTP side: axum router, state, authentication, the JSON API and the Leptos pages.
//! It knows HTTP and SQL; it never touches a peer connection.

pub mod account_limits;
pub mod account_settings;
pub mod accounts;
pub mod admin;
pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod error;
pub mod grants;
mod headers;
mod help;
pub mod invites;
pub(crate) mod limits;
pub mod live;
pub mod live_history;
pub mod metrics;
mod origin;
mod pages;
pub mod password;
pub mod publish_rule;
pub mod rate_limit;
pub mod recordings;
pub mod secrets;
pub mod session;
mod signaling;
pub use signaling::throttle as signaling_limits;
pub mod subscribe_tokens;
pub mod timestamps;
pub mod tokens;
pub mod transport;
pub mod turn;
pub mod viewer_access;
mod watch;
pub mod webhooks;

use std::{future::Future, net::SocketAddr, sync::Arc};

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
use transport::{Https, PlainListener, TlsListener};

/// Settings derived once from the configuration.
#[derive(Debug)]
pub struct Settings {
    /// Base URL for links shown to people (share links, WHIP URLs), without a trailing slash.
    pub public_url: String,
    /// `scheme://host[:port]` of `public_url`, as browsers write it in `Origin`.
    pub public_origin: String,
    /// The public URL is https: session cookies are `Secure` even on requests that reach us
    /// in plain HTTP (through a proxy we were not told to trust).
    pub https_public_url: bool,
    /// `--listen` serves HTTPS.
    pub tls: bool,
    /// Whose forwarding headers are believed (`--trusted-proxy`).
    pub proxies: client::TrustedProxies,
    /// STUN/TURN servers handed to WebRTC clients (see [`Settings::ice_servers_now`]).
    pub ice_servers: Vec<IceServer>,
    /// Makes time-limited credentials for TURN entries (`--turn-secret`).
    pub turn: Option<turn::TurnSecret>,
    /// Where recordings are written (`--recordings-dir`).
    pub recordings_folder: std::path::PathBuf,
    /// The certificate `--listen` serves and where it comes from, with HTTPS in the binary.
    pub certificates: Option<(Arc<transport::certs::CertStore>, CertificateSource)>,
    /// Webhooks may reach private networks (`--webhooks-private-networks`).
    pub webhooks_private_networks: bool,
    /// Every limit the server runs with (`account`: for accounts the operator set none for).
    pub server_limits: crate::model::ServerLimits,
}

/// Where the served certificate comes from (for the self-check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertificateSource {
    Files,
    Acme,
}

impl Settings {
    /// The ICE servers to hand one client now, with fresh TURN credentials where configured.
    pub fn ice_servers_now(&self) -> Vec<IceServer> {
        turn::ice_servers_now(&self.ice_servers, self.turn.as_ref())
    }
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
    /// Signs and checks viewer grants (`/watch?token=`).
    pub viewer_grants: Arc<viewer_access::grants::ViewerGrants>,
    /// Live-state feeds held open, capped per address and in total.
    pub feeds: Arc<live::FeedLimits>,
    /// Per-address rate limits of the WHIP/WHEP doors.
    pub throttle: signaling::throttle::Shared,
    /// The recording thread's handle: its disk state for the pages.
    pub recorder: crate::recorder::Recorder,
    /// Queues webhook deliveries.
    pub webhooks: webhooks::Webhooks,
    /// The Live page's ten minutes of figures.
    pub live_history: Arc<live_history::LiveHistory>,
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
    /// `source` names the transport and address (`UDP 0.0.0.0:8189: Address in use`).
    #[error("cannot open the SFU's media port: {source}")]
    Rtc { source: std::io::Error },
    #[error("HTTPS: {0}")]
    Tls(#[from] transport::certs::CertError),
    #[error("{0}")]
    Config(String),
}

/// How long a stopping server lets in-flight requests finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a stopping server waits for running recordings to be finished and noted.
const RECORDINGS_FINISH: std::time::Duration = std::time::Duration::from_secs(10);

/// A bound, ready-to-run server. Tests build it on port 0 and read [`Application::local_addr`].
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
    /// HTTPS on `listener`, when configured.
    https: Option<Arc<Https>>,
    /// The `--http-listen` helper (HTTP-01 answers and redirects), when configured.
    http_helper: Option<(TcpListener, Router)>,
    /// The task keeping the `recordings` table; it ends after the recorder's last report.
    recordings_kept: tokio::task::JoinHandle<()>,
    /// `--metrics-listen`, when configured.
    metrics_listener: Option<TcpListener>,
}

impl Application {
    /// Opens the database, applies migrations, binds the listener and assembles the router.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        // Any rustls user that asks for the process default (the ACME client) gets aws-lc-rs,
        // the provider every other TLS and DTLS use here is built on. Fails only if already set.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        if config.http_listen.is_some() && !config.serves_https() {
            return Err(StartError::Config(
                "--http-listen redirects to HTTPS: it needs --tls-cert/--tls-key or --acme-domain".into(),
            ));
        }
        config.check_media().map_err(StartError::Config)?;
        let https = Https::from_config(&config)?.map(Arc::new);
        let pool = db::open(&config.data_dir)
            .await
            .map_err(|source| StartError::Database { dir: config.data_dir.display().to_string(), source })?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Listen { addr: config.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen { addr: config.listen, source })?;

        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr, source })?),
            None => None,
        };
        metrics::handle();

        let http_helper = match config.http_listen {
            Some(addr) => {
                let helper = TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr, source })?;
                Some(helper)
            }
            None => None,
        };

        let settings = Arc::new(settings_for(&config, local_addr, https.as_deref()));
        let leptos_options = LeptosOptions::builder()
            .output_name("ferrocast")
            .site_root(config.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(local_addr)
            .env(leptos::config::Env::PROD)
            .build();
        let accounts = Arc::new(Accounts::new(pool.clone(), config.signup));
        let recordings_folder = config.recordings_folder();
        let interrupted = recordings::interrupt_leftovers(&pool, &recordings_folder)
            .await
            .map_err(|source| StartError::Database { dir: config.data_dir.display().to_string(), source })?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "recordings left unfinished by the last run are marked interrupted");
        }
        let (recorder_events, recorder_reports) = tokio::sync::mpsc::unbounded_channel();
        let recorder =
            crate::recorder::Recorder::start(recordings_folder.clone(), config.recordings_min_free, recorder_events)
                .map_err(|err| {
                    StartError::Config(format!(
                        "cannot use the recordings folder {}: {err}",
                        recordings_folder.display()
                    ))
                })?;
        let webhooks = webhooks::Webhooks::new(pool.clone());
        let hooks_client = webhooks::sender::client(config.webhooks_private_networks)
            .map_err(|err| StartError::Config(format!("webhooks: cannot build the HTTP client: {err}")))?;
        let (stream_events, stream_changes) = tokio::sync::mpsc::channel(sfu::board::EVENT_QUEUE);
        let mut sfu_config = config.sfu();
        sfu_config.recorder = Some(recorder.clone());
        sfu_config.stream_events = Some(stream_events);
        let sfu = sfu::start(sfu_config).await.map_err(|source| StartError::Rtc { source })?;
        let recordings_kept =
            tokio::spawn(recordings::keep(pool.clone(), recorder_reports, sfu.clone(), webhooks.clone()));
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(webhooks::listen(webhooks.clone(), stream_changes));
        let live_history = Arc::new(live_history::LiveHistory::default());
        tokio::spawn(live_history::sample(live_history.clone(), sfu.clone(), pool.clone(), shutdown_rx.clone()));
        tokio::spawn(webhooks::sender::run(
            pool.clone(),
            hooks_client,
            config.webhooks_private_networks,
            webhooks.wake(),
            shutdown_rx.clone(),
        ));
        let state = AppState {
            pool,
            accounts,
            settings,
            sfu,
            grants: Arc::default(),
            viewer_grants: Arc::default(),
            feeds: Arc::new(live::FeedLimits::for_open_files(limits::open_files_limit())),
            throttle: Arc::default(),
            recorder,
            webhooks,
            live_history,
            shutdown: shutdown_rx,
            leptos_options,
        };
        let router = router(state.clone());

        let http_helper = http_helper.map(|helper| {
            let answers = https.as_ref().map(|h| h.http01.clone()).unwrap_or_default();
            let origin =
                config.public_url.as_ref().filter(|u| u.scheme() == "https").map(|u| u.origin().ascii_serialization());
            let target = transport::redirect::RedirectTarget { origin, https_port: local_addr.port() };
            (helper, transport::redirect::router(answers, target))
        });

        if !config.acme_domains.is_empty() {
            let helper_port = http_helper.as_ref().and_then(|(l, _)| l.local_addr().ok()).map(|a| a.port());
            if local_addr.port() != 443 && helper_port != Some(80) {
                tracing::warn!(
                    "ACME: the CA validates on port 443 (TLS-ALPN-01) or 80 (HTTP-01, with --http-listen); \
                     this server listens on {} and {}: forward one of those ports here, or the order will fail",
                    local_addr.port(),
                    helper_port.map_or("no HTTP port".to_owned(), |p| format!("HTTP port {p}"))
                );
            }
        }
        let warm = state.accounts.clone();
        tokio::spawn(async move { warm.warm_up().await });
        tracing::info!(listen = %local_addr, public_url = %state.settings.public_url, "ferrocast ready");
        Ok(Self { listener, router, state, shutdown, https, http_helper, recordings_kept, metrics_listener })
    }

    /// `https` or `http`: what `--listen` speaks.
    /// What a person who just started the server should do next (printed after the addresses):
    /// where to open it and, on an empty data folder, who becomes the operator.
    pub async fn first_run_hints(&self) -> Vec<String> {
        let url = &self.state.settings.public_url;
        let mut hints = vec![format!("Open {url} in a browser.")];
        if let Ok(false) = crate::db::accounts::any_exists(&self.state.pool).await {
            hints.push(match self.state.accounts.signup_mode() {
                crate::config::SignupMode::Closed => {
                    "No account yet, and --signup closed refuses new ones: start once with --signup invite to create \
                     the operator's account."
                        .to_owned()
                }
                _ => format!("No account yet: the first account made at {url}/signup becomes this server's operator."),
            });
        }
        hints
    }

    pub fn scheme(&self) -> &'static str {
        if self.https.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The HTTP-01 answers the `--http-listen` helper serves (ACME fills them during an order).
    pub fn acme_http01_answers(&self) -> Option<Arc<transport::acme::Http01Answers>> {
        self.https.as_ref().map(|https| https.http01.clone())
    }

    /// The address of the `--metrics-listen` server (resolves port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// The address of the `--http-listen` helper (resolves port 0).
    pub fn http_helper_addr(&self) -> Option<SocketAddr> {
        self.http_helper.as_ref().and_then(|(listener, _)| listener.local_addr().ok())
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
        let stopping = self.shutdown;
        let stopped = stopping.subscribe();
        let shutdown = async move {
            shutdown.await;
            let _ = stopping.send(true);
        };
        if let Some((helper, router)) = self.http_helper {
            let mut helper_stopped = stopped.clone();
            let stop = async move {
                let _ = helper_stopped.wait_for(|stop| *stop).await;
            };
            tokio::spawn(transport::serve::serve(PlainListener(helper), router, stop));
        }
        if let Some(listener) = self.metrics_listener {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "serving /metrics");
            }
            let mut metrics_stopped = stopped.clone();
            let stop = async move {
                let _ = metrics_stopped.wait_for(|stop| *stop).await;
            };
            tokio::spawn(transport::serve::serve(PlainListener(listener), metrics::router(self.state.clone()), stop));
        }
        // In-flight requests get SHUTDOWN_GRACE once the signal came; one that is still not done
        // then (a client sending its body a byte a minute) does not keep the server from exiting.
        let mut grace_ends = stopped.clone();
        let deadline = async move {
            let _ = grace_ends.wait_for(|stop| *stop).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let served = async {
            match self.https {
                Some(https) => {
                    https.keep_current(stopped.clone());
                    let listener = TlsListener::new(self.listener, https.server_config())?;
                    transport::serve::serve(listener, self.router, shutdown).await;
                }
                None => transport::serve::serve(PlainListener(self.listener), self.router, shutdown).await,
            }
            Ok::<_, std::io::Error>(())
        };
        let engine = self.state.sfu.clone();
        let mut engine_died = false;
        tokio::select! {
            served = served => served?,
            () = deadline => tracing::warn!("requests still open {SHUTDOWN_GRACE:?} after the stop signal: closing them"),
            () = engine.failed() => engine_died = true,
        }
        // Running recordings are finished (cues, duration) and their rows say so before the
        // database closes; a recorder stuck on a dead disk does not hold the exit for long.
        self.state.recorder.finish_all();
        if tokio::time::timeout(RECORDINGS_FINISH, self.recordings_kept).await.is_err() {
            tracing::warn!(
                "recordings still finishing after {RECORDINGS_FINISH:?}: the next start marks them interrupted"
            );
        }
        self.state.pool.close().await;
        if engine_died {
            return Err(std::io::Error::other(
                "the media engine died; stopping so that a supervisor restarts the server",
            ));
        }
        tracing::info!("ferrocast stopped");
        Ok(())
    }
}

fn settings_for(config: &Config, local_addr: SocketAddr, https: Option<&Https>) -> Settings {
    let public_url = config.public_url.clone().unwrap_or_else(|| default_public_url(config, local_addr, https));
    Settings {
        public_origin: public_url.origin().ascii_serialization(),
        https_public_url: public_url.scheme() == "https",
        tls: https.is_some(),
        proxies: client::TrustedProxies::new(config.trusted_proxies.clone()),
        ice_servers: config.ice_servers.clone(),
        turn: config.turn_secret.as_deref().map(|secret| turn::TurnSecret::new(secret, config.turn_ttl)),
        recordings_folder: config.recordings_folder(),
        certificates: https.map(|h| {
            let source = match h.source {
                transport::CertSource::Files { .. } => CertificateSource::Files,
                transport::CertSource::Acme(_) => CertificateSource::Acme,
            };
            (h.store.clone(), source)
        }),
        public_url: public_url.as_str().trim_end_matches('/').to_owned(),
        webhooks_private_networks: config.webhooks_private_networks,
        server_limits: config.server_limits(),
    }
}

/// Without `--public-url`: the first ACME name or the certificate's first name over HTTPS
/// (the port only when it is not 443), else `http://{listen}`.
fn default_public_url(config: &Config, local_addr: SocketAddr, https: Option<&Https>) -> Url {
    let name = config.acme_domains.first().cloned().or_else(|| {
        let cert = https?.store.current()?;
        cert.names.into_iter().find(|n| !n.starts_with('*'))
    });
    let url = match (https, name) {
        (Some(_), Some(name)) if local_addr.port() == 443 => format!("https://{name}"),
        (Some(_), Some(name)) => format!("https://{name}:{}", local_addr.port()),
        (Some(_), None) => format!("https://{local_addr}"),
        (None, _) => format!("http://{local_addr}"),
    };
    Url::parse(&url)
        .unwrap_or_else(|_| Url::parse(&format!("http://{local_addr}")).expect("a socket address makes a valid URL"))
}

/// The whole HTTP surface. Request flow: client (trusted proxies, HSTS) → trace → compression →
/// security headers → CSRF guard → page guard → body limit (each door's: the API's and the
/// signaling doors' sit inside their own error and CORS handling) → route.
fn router(state: AppState) -> Router {
    let leptos_options = state.leptos_options.clone();
    let routes = generate_route_list(App);
    let context_state = state.clone();
    let provide_state = move || provide_context(context_state.clone());

    let pages = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::on_main_listener))
        .route("/help/https", get(help::https))
        .route("/watch/{account}/{stream}", get(watch::page))
        .leptos_routes_with_context(&state, routes, provide_state.clone(), {
            let leptos_options = leptos_options.clone();
            move || shell(leptos_options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(provide_state, shell))
        .layer(middleware::from_fn(limits::limit_body));
    Router::new()
        .nest("/api/v1", api::router())
        .merge(signaling::router(&state))
        .merge(pages)
        .layer(middleware::from_fn_with_state(state.clone(), pages::guard))
        .layer(middleware::from_fn_with_state(state.clone(), origin::refuse_cross_origin_mutations))
        .layer(middleware::from_fn(headers::security_headers))
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn(metrics::track_requests))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<axum::body::Body>| {
            let client = client::Client::from_extensions(request.extensions());
            tracing::info_span!("request", method = %request.method(), uri = %request.uri(), client = %client.ip)
        }))
        .layer(middleware::from_fn_with_state(state.clone(), client::identify))
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
