//! Behind a reverse proxy: Debian's real nginx with `deploy/nginx/ferrocast.conf` and Debian's
//! Caddy with `deploy/Caddyfile` (TLS on a certificate made here) in front of the app, which
//! trusts 127.0.0.1 as its proxy; and forged forwarding headers from a peer that is not a
//! trusted proxy.
//!
//! Media never passes through the proxy: the SDP answer names the SFU's UDP socket on 127.0.0.1 and
//! the test peers send to it directly, as a browser would to a real server's media port.

use std::{
    net::{IpAddr, SocketAddr, TcpStream as StdStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use ferrocast::config::Config;
use reqwest::{header, header::HeaderMap, Client, RequestBuilder, Response};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::{
    helpers::{browser_like, error_code, free_port, set_cookie, spawn_app_with, TestApp, PASSWORD},
    rtc::{self, PublishOptions},
    tls::{client_tls, TestCert},
};

const NGINX: &str = "/usr/sbin/nginx";
/// The deploy kit's nginx file, used as shipped apart from the substitutions in [`site_conf`].
const DEPLOY_CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx/ferrocast.conf");
const CADDY: &str = "/usr/bin/caddy";
/// The deploy kit's Caddyfile, used as shipped apart from the substitutions in [`caddy_conf`].
const DEPLOY_CADDYFILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/Caddyfile");
/// The name nginx serves (and its certificate is for); the clients resolve it to nginx.
const HOST: &str = "live.test";
/// Longest a proxy may take to listen.
const PROXY_START: Duration = Duration::from_secs(10);
/// Longest the first event of a feed may take to arrive through nginx.
const FIRST_EVENT: Duration = Duration::from_secs(5);

fn trust_loopback_proxy(config: &mut Config) {
    config.trusted_proxies = vec!["127.0.0.1/32".parse::<ipnet::IpNet>().unwrap()];
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The address the app listens on (its base is `http://127.0.0.1:port`).
fn app_addr(app: &TestApp) -> SocketAddr {
    app.base.strip_prefix("http://").expect("a plain-HTTP app").parse().expect("ip:port")
}

/// `deploy/nginx/ferrocast.conf` made runnable here: the certificate paths point at the test's
/// files, the server name is [`HOST`], `listen 443` becomes `listen 127.0.0.1:{port}`, the IPv6
/// listener and the port-80 redirect server are left out, and the upstream is the app.
fn site_conf(cert: &Path, key: &Path, port: u16, upstream: SocketAddr) -> String {
    let shipped = std::fs::read_to_string(DEPLOY_CONF).expect("deploy/nginx/ferrocast.conf");
    let (head, rest) = shipped.split_once("# --- port 80 ---").expect("the port-80 server starts with its marker");
    let (_, tail) = rest.split_once("# --- end port 80 ---").expect("the port-80 server ends with its marker");
    let mut conf = format!("{head}{tail}");
    for (from, to) in [
        ("/etc/letsencrypt/live/live.example.com/fullchain.pem", cert.display().to_string()),
        ("/etc/letsencrypt/live/live.example.com/privkey.pem", key.display().to_string()),
        ("live.example.com", HOST.to_owned()),
        ("listen 443 ", format!("listen 127.0.0.1:{port} ")),
        ("127.0.0.1:3000", upstream.to_string()),
    ] {
        assert!(conf.contains(from), "deploy/nginx/ferrocast.conf no longer contains {from:?}");
        conf = conf.replace(from, &to);
    }
    let mut runnable = String::with_capacity(conf.len());
    for line in conf.lines().filter(|line| !line.trim_start().starts_with("listen [::]:")) {
        runnable.push_str(line);
        runnable.push('\n');
    }
    runnable
}

/// The main configuration around the site file: everything nginx writes stays in `dir`.
fn main_conf(dir: &Path) -> String {
    let d = dir.display();
    // One process, and no other user: as root, nginx would run its workers as `nobody` and give
    // them the temp folders, which fails in a user namespace that maps only root
    // (`unshare -r`, scripts/test.sh without root). Killing the one process stops all of nginx.
    // (Not root: nginx ignores `user` with a warning.)
    format!(
        "user root;\n\
         master_process off;\n\
         events {{}}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {d}/client_body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   include {d}/ferrocast.conf;\n\
         }}\n"
    )
}

/// `deploy/Caddyfile` made runnable here: the site is `https://live.test:{port}` on the test's
/// certificate (`tls` instead of ACME), the upstream is the app, and Caddy's admin endpoint, its
/// port-80 redirect server and its on-disk state stay out of the way.
fn caddy_conf(cert: &Path, key: &Path, port: u16, upstream: SocketAddr) -> String {
    let shipped = std::fs::read_to_string(DEPLOY_CADDYFILE).expect("deploy/Caddyfile");
    let mut conf = shipped;
    for (from, to) in [
        (
            "\temail admin@example.com\n",
            format!("\temail admin@example.com\n\tadmin off\n\tauto_https disable_redirects\n\thttps_port {port}\n"),
        ),
        ("\nlive.example.com {\n", format!("\nhttps://{HOST}:{port} {{\n\ttls {} {}\n", cert.display(), key.display())),
        ("reverse_proxy 127.0.0.1:3000", format!("reverse_proxy {upstream}")),
    ] {
        assert!(conf.contains(from), "deploy/Caddyfile no longer contains {from:?}");
        conf = conf.replace(from, &to);
    }
    conf
}

/// An HTTPS client to the proxy that trusts the test certificate, keeps cookies, does not follow
/// redirects and connects from `from` (any 127.0.0.0/8 address is loopback).
fn proxied_client(tls: &rustls::ClientConfig, nginx: SocketAddr, from: Option<IpAddr>) -> Client {
    browser_like(Client::builder().use_preconfigured_tls(tls.clone()).resolve(HOST, nginx).local_address(from))
}

/// A plain-HTTP client to the app itself, connecting from `from`.
fn direct_client(from: IpAddr) -> Client {
    browser_like(Client::builder().local_address(from))
}

/// Which reverse proxy, from its file in deploy/.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Nginx,
    Caddy,
}

/// A reverse proxy running in front of an app, in its own folder; killed on drop.
struct Proxy {
    kind: Kind,
    child: Child,
    addr: SocketAddr,
    tls: rustls::ClientConfig,
    dir: TempDir,
}

impl Proxy {
    /// Starts `kind` with its deploy file in front of `upstream` and waits until it listens.
    async fn start(kind: Kind, upstream: SocketAddr) -> Proxy {
        let program = match kind {
            Kind::Nginx => NGINX,
            Kind::Caddy => CADDY,
        };
        assert!(Path::new(program).exists(), "{program} is missing: `scripts/setup.sh --test` installs it");
        let dir = TempDir::new().expect("temp dir");
        let cert = TestCert::new(&[HOST]);
        let (cert_file, key_file) = cert.write(dir.path());
        let tls = client_tls(&[cert.der()]);
        let log = dir.path().join("proxy.stderr");
        // The free port is found by binding and letting go; another process may take it in
        // between, so a start that fails on the address is tried again on a new one.
        for attempt in 1..=3 {
            let port = free_port();
            let mut command = match kind {
                Kind::Nginx => {
                    std::fs::write(dir.path().join("nginx.conf"), main_conf(dir.path())).unwrap();
                    let site = site_conf(&cert_file, &key_file, port, upstream);
                    std::fs::write(dir.path().join("ferrocast.conf"), site).unwrap();
                    let mut command = Command::new(NGINX);
                    command
                        .arg("-e")
                        .arg("stderr")
                        .arg("-p")
                        .arg(dir.path())
                        .arg("-c")
                        .arg(dir.path().join("nginx.conf"));
                    command.arg("-g").arg(format!("daemon off; pid {};", dir.path().join("nginx.pid").display()));
                    command
                }
                Kind::Caddy => {
                    let caddyfile = dir.path().join("Caddyfile");
                    std::fs::write(&caddyfile, caddy_conf(&cert_file, &key_file, port, upstream)).unwrap();
                    let mut command = Command::new(CADDY);
                    command.args(["run", "--adapter", "caddyfile", "--config"]).arg(&caddyfile);
                    // Caddy keeps state under XDG folders; keep it in the test's own.
                    command.env("XDG_DATA_HOME", dir.path()).env("XDG_CONFIG_HOME", dir.path()).env("HOME", dir.path());
                    command
                }
            };
            let child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("proxy log file"))
                .spawn()
                .expect("the proxy starts");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            match listening(child, addr, &log).await {
                Ok(child) => return Proxy { kind, child, addr, tls, dir },
                Err(why) if why.contains("already in use") && attempt < 3 => continue,
                Err(why) => panic!("{kind:?} did not start: {why}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    fn base(&self) -> String {
        format!("https://{HOST}:{}", self.addr.port())
    }

    fn client(&self, from: Option<IpAddr>) -> Client {
        proxied_client(&self.tls, self.addr, from)
    }

    /// `app` as seen through the proxy: `rtc::publish`, `rtc::view` and friends go this way.
    fn view(&self, app: &TestApp) -> TestApp {
        let (tls, addr) = (self.tls.clone(), self.addr);
        app.via(self.base(), move || proxied_client(&tls, addr, None))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.stderr")).unwrap_or_default()
    }
}

/// Waits until the proxy accepts connections on `addr`; its log if it exits or does not listen in time.
async fn listening(mut child: Child, addr: SocketAddr, log: &Path) -> Result<Child, String> {
    let read_log = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + PROXY_START;
    loop {
        if let Some(status) = child.try_wait().expect("proxy status") {
            return Err(format!("the proxy exited ({status}):\n{}", read_log()));
        }
        if StdStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            // Someone listens; make sure it is the proxy and not a process that took the port.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(status) = child.try_wait().expect("proxy status") {
                return Err(format!("the proxy exited ({status}):\n{}", read_log()));
            }
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the proxy did not listen on {addr} within {PROXY_START:?}:\n{}", read_log()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{:?}'s log:\n{}", self.kind, self.log());
        }
    }
}

/// Reads an event stream until `needle` shows up, or fails after `within`.
async fn read_until(feed: &mut Response, text: &mut String, needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !text.contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {needle:?} within {within:?}; got {text:?}");
        match tokio::time::timeout(left, feed.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => panic!("the event stream ended before {needle:?}; got {text:?}"),
            Ok(Err(err)) => panic!("the event stream failed before {needle:?}: {err}; got {text:?}"),
            Err(_) => {}
        }
    }
}

fn assert_hsts(headers: &HeaderMap, what: &str) {
    let hsts = headers.get(header::STRICT_TRANSPORT_SECURITY).unwrap_or_else(|| panic!("{what}: no HSTS"));
    assert!(hsts.to_str().unwrap().starts_with("max-age="), "{what}: {hsts:?}");
}

/// What HTTPS brings, here reported by the trusted proxy: HSTS and the `__Host-` `Secure` cookie.
fn assert_https_session(response: &Response, what: &str) {
    assert_hsts(response.headers(), what);
    let cookie = set_cookie(response);
    assert!(cookie.starts_with("__Host-fc_session="), "{what}: {cookie}");
    assert!(cookie.contains("; Secure"), "{what}: {cookie}");
    assert!(cookie.contains("Path=/") && !cookie.to_ascii_lowercase().contains("domain="), "{what}: {cookie}");
}

async fn failed_login(client: &Client, base: &str, email: &str) -> Response {
    client
        .post(format!("{base}/api/v1/login"))
        .json(&json!({ "email": email, "password": "wrong password" }))
        .send()
        .await
        .expect("request sent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_the_dashboard_whip_whep_and_the_event_feeds_work() {
    dashboard_whip_whep_and_event_feeds_through(Kind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_the_dashboard_whip_whep_and_the_event_feeds_work() {
    dashboard_whip_whep_and_event_feeds_through(Kind::Caddy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_the_login_limit_keys_on_the_forwarded_address() {
    login_limit_keys_on_the_forwarded_address_through(Kind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy_the_login_limit_keys_on_the_forwarded_address() {
    login_limit_keys_on_the_forwarded_address_through(Kind::Caddy).await;
}

async fn dashboard_whip_whep_and_event_feeds_through(kind: Kind) {
    let app = spawn_app_with(trust_loopback_proxy).await;
    let proxy = Proxy::start(kind, app_addr(&app)).await;
    let proxied = proxy.view(&app);

    // The proxy says X-Forwarded-Proto: https, so the session cookie is `__Host-` and `Secure`.
    let signup = proxied
        .post_json(&proxied.client(), "/api/v1/signup", json!({ "email": "proxy@example.com", "password": PASSWORD }))
        .await;
    assert_eq!(signup.status(), 201, "sign-up through the proxy");
    assert_https_session(&signup, "sign-up");
    let account = signup.json::<Value>().await.unwrap()["accountId"].as_str().unwrap().to_owned();

    let member = proxied.client();
    let login = proxied
        .post_json(&member, "/api/v1/login", json!({ "email": "proxy@example.com", "password": PASSWORD }))
        .await;
    assert_eq!(login.status(), 200, "login through the proxy");
    assert_https_session(&login, "login");
    let page = member.get(proxied.url("/tokens")).send().await.unwrap();
    assert_eq!(page.status(), 200, "the dashboard through the proxy, with the __Host- cookie");
    assert_hsts(page.headers(), "/tokens");
    let html = page.text().await.unwrap();
    assert!(html.contains("Publish tokens") && html.contains("proxy@example.com"), "{html}");

    // As a page of the site would: its Origin names the host and port the browser used, and the
    // same-origin check must recognise it through proxy.
    let created = member
        .post(proxied.url("/api/v1/tokens"))
        .header(header::ORIGIN, proxied.base.as_str())
        .json(&json!({ "label": "proxied", "streams": ["main"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "a same-site POST through the proxy is not taken for a cross-site one");
    let token = created.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned();

    // The public feed answers its first event at once, through the proxy.
    let feed_path = format!("/api/v1/streams/{account}/main/events");
    let mut feed = member.get(proxied.url(&feed_path)).send().await.unwrap();
    assert_eq!(feed.status(), 200);
    assert!(feed.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/event-stream"));
    let mut text = String::new();
    read_until(&mut feed, &mut text, "\"live\":false", FIRST_EVENT).await;
    // ferrocast asks proxies not to buffer; nginx consumes that header, so ask the app directly.
    let direct = app.client().get(app.url(&feed_path)).send().await.unwrap();
    assert_eq!(direct.headers().get("x-accel-buffering").map(|v| v.to_str().unwrap()), Some("no"));
    drop(direct);

    // WHIP through the proxy; the media goes straight to the SFU on 127.0.0.1.
    let publisher = rtc::publish(&proxied, PublishOptions::new(&token, "main")).await.expect("WHIP through the proxy");
    let location = &publisher.session.location;
    assert!(location.starts_with("/whip/main/"), "Location stays an absolute path through the proxy: {location}");
    assert_hsts(&publisher.session.headers, "WHIP 201");
    // A later event, not just the first one, leaves the proxy as soon as the app sends it.
    read_until(&mut feed, &mut text, "\"live\":true", rtc::MEDIA_TIMEOUT).await;
    drop(feed);

    let viewer = rtc::view(&proxied, &format!("/whep/{account}/main"), 1).await.expect("WHEP through the proxy");
    assert!(viewer.session.location.starts_with(&format!("/whep/{account}/main/")), "{}", viewer.session.location);
    viewer
        .wait_for("video and audio after signalling through the proxy", |v| {
            v.video(0).is_some_and(|t| t.packets.len() >= 30) && v.audio(0).is_some_and(|t| t.packets.len() >= 10)
        })
        .await;

    // The WHEP session's own event feed, through proxy.
    let mut events =
        proxied.client().get(proxied.url(&format!("{}/events", viewer.session.location))).send().await.unwrap();
    assert_eq!(events.status(), 200);
    let mut text = String::new();
    read_until(&mut events, &mut text, "event: active", FIRST_EVENT).await;
    drop(events);

    let deleted = proxied.client().delete(proxied.url(&publisher.session.location)).send().await.unwrap();
    assert_eq!(deleted.status(), 200, "DELETE through the proxy");
    drop(viewer);
    drop(publisher);
    drop(proxy);
    app.stop().await;
}

async fn login_limit_keys_on_the_forwarded_address_through(kind: Kind) {
    let app = spawn_app_with(trust_loopback_proxy).await;
    let proxy = Proxy::start(kind, app_addr(&app)).await;
    let base = proxy.base();

    // Every request reaches the app from the proxy (127.0.0.1); X-Forwarded-For names the client.
    let sprayer = proxy.client(Some(ip("127.0.0.2")));
    for i in 0..20 {
        let response = failed_login(&sprayer, &base, &format!("spray{i}@example.com")).await;
        assert_eq!(response.status(), 401, "attempt {i} from 127.0.0.2");
    }
    let refused = failed_login(&sprayer, &base, "spray20@example.com").await;
    let retry_after: u64 = refused.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(error_code(refused, 429).await, "too_many_requests", "the 21st failure from 127.0.0.2");

    // Another client of the same proxy is not locked out with it.
    let bystander = proxy.client(Some(ip("127.0.0.3")));
    let response = failed_login(&bystander, &base, "someone@example.com").await;
    assert_eq!(error_code(response, 401).await, "invalid_credentials", "127.0.0.3 answers for itself");
    drop(proxy);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_an_untrusted_peer_change_nothing() {
    // 127.0.0.1 is the trusted proxy; 127.0.0.2 is anyone else, connecting directly.
    let app = spawn_app_with(trust_loopback_proxy).await;
    let forge = |request: RequestBuilder| {
        request
            .header("x-forwarded-for", "203.0.113.9")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "for=203.0.113.9;proto=https")
    };

    // Claiming https changes neither HSTS nor the cookie.
    let signup = forge(direct_client(ip("127.0.0.2")).post(app.url("/api/v1/signup")))
        .json(&json!({ "email": "forger@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    assert!(signup.headers().get(header::STRICT_TRANSPORT_SECURITY).is_none(), "no HSTS over plain HTTP");
    let cookie = set_cookie(&signup);
    assert!(cookie.starts_with("fc_session=") && !cookie.contains("Secure"), "{cookie}");

    // Claiming another address does not move the failures away from the TCP peer.
    let forger = direct_client(ip("127.0.0.2"));
    for i in 0..20 {
        let response = forge(forger.post(app.url("/api/v1/login")))
            .json(&json!({ "email": format!("forged{i}@example.com"), "password": "wrong password" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "attempt {i}");
        assert!(response.headers().get(header::STRICT_TRANSPORT_SECURITY).is_none());
    }
    let refused = failed_login(&forger, &app.base, "forged20@example.com").await;
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(error_code(refused, 429).await, "too_many_requests", "127.0.0.2 is locked out, header or not");

    // And nothing was counted against 203.0.113.9: the trusted proxy may still speak for it.
    let response = app
        .client()
        .post(app.url("/api/v1/login"))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({ "email": "forged21@example.com", "password": "wrong password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response, 401).await, "invalid_credentials");
    app.stop().await;
}
