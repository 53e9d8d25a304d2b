//! `spawn_app()` and friends.

use std::{path::PathBuf, sync::Arc};

use ferrocast::{
    config::{Config, SignupMode},
    server::Application,
};
use reqwest::{header, redirect, Client, Response};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};
use url::Url;

pub const PASSWORD: &str = "correct horse battery";
/// Longest any test request may take.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A running application and the folder its data lives in.
pub struct TestApp {
    pub base: String,
    /// The media addresses the SFU announces in its candidates.
    pub rtc_addrs: Vec<std::net::SocketAddr>,
    pub data_dir: PathBuf,
    _data_guard: Option<TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// Set by [`TestApp::via`]: makes the clients of a view through a proxy.
    make_client: Option<Arc<dyn Fn() -> Client + Send + Sync>>,
}

/// Starts the app on a fresh data folder with the default configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app on a fresh data folder after `tweak` adjusts the configuration.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = TempDir::new().expect("temp dir");
    let mut app = spawn_on(dir.path().to_path_buf(), tweak).await;
    app._data_guard = Some(dir);
    app
}

/// Starts the app on an existing data folder (for restart tests).
pub async fn spawn_on(data_dir: PathBuf, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::for_data_dir(&data_dir);
    tweak(&mut config);
    let app = Application::build(config).await.expect("application starts");
    let base = format!("{}://{}", app.scheme(), app.local_addr());
    let rtc_addrs = app.rtc_addrs();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp { base, rtc_addrs, data_dir, _data_guard: None, shutdown: Some(tx), task: Some(task), make_client: None }
}

impl TestApp {
    /// A client that keeps cookies like a browser but does not follow redirects. Every request
    /// is bounded in time, so a server that never answers fails the test instead of hanging it.
    pub fn client(&self) -> Client {
        if let Some(make) = &self.make_client {
            return make();
        }
        browser_like(Client::builder())
    }

    /// The same server reached another way (through a reverse proxy): `url` builds on `base` and
    /// `client` comes from `make_client`, so helpers such as `rtc::publish` go that way. Dropping
    /// or stopping the view leaves the server running; the original still owns it.
    pub fn via(&self, base: impl Into<String>, make_client: impl Fn() -> Client + Send + Sync + 'static) -> TestApp {
        TestApp {
            base: base.into(),
            rtc_addrs: self.rtc_addrs.clone(),
            data_dir: self.data_dir.clone(),
            _data_guard: None,
            shutdown: None,
            task: None,
            make_client: Some(Arc::new(make_client)),
        }
    }

    /// A server running elsewhere (the real binary, started by the test) with its data folder:
    /// the helpers talk to `base`; stopping it is the test's business.
    pub fn running_at(base: impl Into<String>, data_dir: PathBuf) -> TestApp {
        TestApp {
            base: base.into(),
            rtc_addrs: Vec::new(),
            data_dir,
            _data_guard: None,
            shutdown: None,
            task: None,
            make_client: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, client: &Client, path: &str, body: Value) -> Response {
        client.post(self.url(path)).json(&body).send().await.expect("request sent")
    }

    /// Signs up `email` with [`PASSWORD`] on `client` (which then holds the session cookie).
    pub async fn sign_up(&self, client: &Client, email: &str) -> Value {
        let response = self.post_json(client, "/api/v1/signup", json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(response.status(), 201, "sign-up of {email}");
        response.json().await.expect("json body")
    }

    /// Rows in a table, read straight from the database file.
    pub async fn count(&self, table: &str) -> i64 {
        let pool = ferrocast::db::open(&self.data_dir).await.expect("open db");
        let n = sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }

    /// Stops the server gracefully and waits for it; the data folder stays.
    /// How the server's run ended, without a stop signal: `None` if still running after `within`.
    pub async fn ended_by_itself(&mut self, within: std::time::Duration) -> Option<std::io::Result<()>> {
        let task = self.task.as_mut()?;
        let ended = tokio::time::timeout(within, task).await.ok()?;
        self.task = None;
        Some(ended.expect("server task"))
    }

    pub async fn stop(mut self) -> (PathBuf, Option<TempDir>) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran cleanly");
        }
        (self.data_dir.clone(), self._data_guard.take())
    }
}

/// UDP sockets bound on this machine (in this network namespace), from /proc/net/udp.
pub fn bound_udp_v4() -> Vec<std::net::SocketAddr> {
    let table = std::fs::read_to_string("/proc/net/udp").expect("/proc/net/udp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let local = line.split_whitespace().nth(1)?;
            let (ip, port) = local.split_once(':')?;
            let ip = u32::from_str_radix(ip, 16).ok()?;
            // The kernel prints the address in host byte order of its network-order value.
            let ip = std::net::Ipv4Addr::from(ip.swap_bytes());
            Some(std::net::SocketAddr::new(ip.into(), u16::from_str_radix(port, 16).ok()?))
        })
        .collect()
}

/// `builder` finished like a browser: it keeps cookies and does not follow redirects, and every
/// request is bounded in time.
pub fn browser_like(builder: reqwest::ClientBuilder) -> Client {
    builder.cookie_store(true).redirect(redirect::Policy::none()).timeout(REQUEST_TIMEOUT).build().expect("client")
}

/// A free TCP port on loopback (bound, then released for the component that needs a fixed port:
/// an ACME CA must be told where to validate before the server starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A port free on loopback for both UDP and TCP now (the SFU's media port and its ICE-TCP twin),
/// for tests that need the twin: with port 0, another test may hold the TCP twin of the picked
/// UDP port, and the server may then (rightly) take another.
pub fn free_media_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The `Set-Cookie` header of a response, for attribute checks.
pub fn set_cookie(response: &Response) -> String {
    response.headers().get(header::SET_COOKIE).expect("Set-Cookie present").to_str().expect("ascii cookie").to_owned()
}

/// The value of the session cookie in a `Set-Cookie` header.
pub fn session_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().and_then(|p| p.split_once('=')).map(|(_, v)| v.to_owned()).expect("name=value")
}

/// Asserts the `{"error": {"code", "message"}}` shape and returns the code.
pub async fn error_code(response: Response, status: u16) -> String {
    assert_eq!(response.status(), status, "status of {}", response.url());
    let body: Value = response.json().await.expect("JSON error body");
    let message = body["error"]["message"].as_str().expect("error.message");
    assert!(!message.is_empty());
    body["error"]["code"].as_str().expect("error.code").to_owned()
}

pub fn https_public_url(config: &mut Config) {
    config.public_url = Some(Url::parse("https://stream.example.com").unwrap());
}

pub fn closed_signup(config: &mut Config) {
    config.signup = SignupMode::Closed;
}
