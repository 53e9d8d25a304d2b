//! HTTPS in the binary: certificate files (and SIGHUP), the `--http-listen` helper, HSTS and
//! `__Host-` cookies, refusals at start-up.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use ferrocast::config::Config;
use reqwest::{header, redirect, Client};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::helpers::{browser_like, spawn_app_with, PASSWORD, REQUEST_TIMEOUT};

/// A certificate made for the test: its PEM and the files written into `dir`.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCert {
    pub fn new(names: &[&str]) -> Self {
        let cert = rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        Self { cert_pem: cert.cert.pem(), key_pem: cert.signing_key.serialize_pem() }
    }

    pub fn write(&self, dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &self.cert_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (cert, key)
    }

    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap()
    }
}

/// rustls client settings trusting exactly `roots`.
pub fn client_tls(roots: &[CertificateDer<'static>]) -> rustls::ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth()
}

/// An HTTPS client that trusts `roots`, resolves `name` to `addr`, keeps cookies and does not
/// follow redirects.
pub fn https_client(roots: &[CertificateDer<'static>], name: &str, addr: SocketAddr) -> Client {
    browser_like(Client::builder().use_preconfigured_tls(client_tls(roots)).resolve(name, addr))
}

/// The leaf certificate a new TLS connection to `addr` (as `name`) is shown.
pub async fn presented_cert(
    addr: SocketAddr,
    name: &str,
    roots: &[CertificateDer<'static>],
) -> CertificateDer<'static> {
    let connector = TlsConnector::from(Arc::new(client_tls(roots)));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls =
        tokio::time::timeout(REQUEST_TIMEOUT, connector.connect(ServerName::try_from(name.to_owned()).unwrap(), tcp))
            .await
            .expect("handshake in time")
            .expect("handshake succeeds");
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

fn with_cert(dir: &Path, cert: &TestCert) -> impl FnOnce(&mut Config) {
    let (cert, key) = cert.write(dir);
    move |config| {
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_files_serve_https_only_with_hsts_and_a_host_prefixed_secure_cookie() {
    let dir = tempfile::TempDir::new().unwrap();
    let cert = TestCert::new(&["live.test"]);
    let app = spawn_app_with(with_cert(dir.path(), &cert)).await;
    let addr: SocketAddr = app.base.strip_prefix("https://").expect("the app says https").parse().unwrap();
    let client = https_client(&[cert.der()], "live.test", addr);
    let base = format!("https://live.test:{}", addr.port());

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000");

    let signup = client
        .post(format!("{base}/api/v1/signup"))
        .json(&json!({ "email": "tls@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let cookie = signup.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-fc_session="), "{cookie}");
    assert!(cookie.contains("; Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"), "{cookie}");
    let me = client.get(format!("{base}/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), 200, "the __Host- cookie is the session");
    let page = client.get(format!("{base}/tokens")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().contains_key(header::STRICT_TRANSPORT_SECURITY));

    // No plaintext on the HTTPS port.
    let plain = Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let refused = plain.get(format!("http://{addr}/healthz")).send().await;
    assert!(refused.is_err() || refused.unwrap().status() != 200, "plain HTTP must not be served on --listen");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_or_garbage_clients_do_not_hold_up_other_handshakes() {
    let dir = tempfile::TempDir::new().unwrap();
    let cert = TestCert::new(&["live.test"]);
    let app = spawn_app_with(with_cert(dir.path(), &cert)).await;
    let addr: SocketAddr = app.base.strip_prefix("https://").unwrap().parse().unwrap();
    // Clients that connect and say nothing, half a ClientHello, or bytes that are not TLS.
    let mut stalled = Vec::new();
    for junk in [&b""[..], &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut tcp, junk).await.unwrap();
        stalled.push(tcp);
    }
    let client = https_client(&[cert.der()], "live.test", addr);
    let started = std::time::Instant::now();
    let health = client.get(format!("https://live.test:{}/healthz", addr.port())).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2), "a new client is served at once: {:?}", started.elapsed());
    // The plain-HTTP request gets no HTTP answer, only a TLS alert and a close.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut stalled[2], &mut answer),
    )
    .await;
    assert!(read.is_ok(), "a non-TLS client is closed at once");
    assert!(!answer.starts_with(b"HTTP/"), "no plaintext HTTP on the HTTPS port");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_gets_no_hsts_and_the_plain_cookie() {
    let app = crate::helpers::spawn_app().await;
    let client = app.client();
    let signup =
        app.post_json(&client, "/api/v1/signup", json!({ "email": "plain@example.com", "password": PASSWORD })).await;
    assert!(!signup.headers().contains_key(header::STRICT_TRANSPORT_SECURITY));
    let cookie = signup.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("fc_session=") && !cookie.contains("Secure"), "{cookie}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_helper_redirects_with_308_and_answers_http01_tokens() {
    let dir = tempfile::TempDir::new().unwrap();
    let cert = TestCert::new(&["live.test"]);
    let set_cert = with_cert(dir.path(), &cert);
    let data = tempfile::TempDir::new().unwrap();
    let mut config = Config::for_data_dir(data.path());
    set_cert(&mut config);
    config.http_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = ferrocast::server::Application::build(config).await.expect("starts");
    let https_port = app.local_addr().port();
    let helper = app.http_helper_addr().expect("helper bound");
    let answers = app.acme_http01_answers().expect("HTTPS has HTTP-01 answers");
    answers.insert("tok-123_ABC".into(), "tok-123_ABC.thumbprint".into());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let client = Client::builder().redirect(redirect::Policy::none()).timeout(REQUEST_TIMEOUT).build().unwrap();
    let get =
        client.get(format!("http://{helper}/tokens?x=1&y=%20")).header(header::HOST, "Live.Test").send().await.unwrap();
    assert_eq!(get.status(), 308);
    assert_eq!(get.headers()[header::LOCATION], format!("https://live.test:{https_port}/tokens?x=1&y=%20"));
    let post = client
        .post(format!("http://{helper}/whip/main"))
        .header(header::HOST, "live.test:80")
        .body("v=0")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 308, "308 keeps the method and body");
    assert_eq!(post.headers()[header::LOCATION], format!("https://live.test:{https_port}/whip/main"));
    let forged = client.get(format!("http://{helper}/")).header(header::HOST, "evil.example/x").send().await.unwrap();
    assert_eq!(forged.status(), 400, "a Host that is not a plain name is not echoed into Location");

    let answer = client.get(format!("http://{helper}/.well-known/acme-challenge/tok-123_ABC")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "tok-123_ABC.thumbprint");
    let unknown = client.get(format!("http://{helper}/.well-known/acme-challenge/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_settings_stop_the_start_with_a_reason() {
    let dir = tempfile::TempDir::new().unwrap();
    let a = TestCert::new(&["live.test"]);
    let b = TestCert::new(&["live.test"]);
    let (cert, _) = a.write(dir.path());
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&other_key, &b.key_pem).unwrap();
    let start = |tweak: Box<dyn FnOnce(&mut Config)>| {
        let data = tempfile::TempDir::new().unwrap();
        let mut config = Config::for_data_dir(data.path());
        tweak(&mut config);
        async move { ferrocast::server::Application::build(config).await.err().map(|e| e.to_string()) }
    };
    let mismatched = start(Box::new({
        let cert = cert.clone();
        move |c| {
            c.tls_cert = Some(cert);
            c.tls_key = Some(other_key);
        }
    }))
    .await
    .expect("refused");
    assert!(mismatched.contains("does not belong to the certificate"), "{mismatched}");
    let missing = start(Box::new(move |c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some("/nonexistent/key.pem".into());
    }))
    .await
    .expect("refused");
    assert!(missing.contains("/nonexistent/key.pem"), "{missing}");
    let helper_alone =
        start(Box::new(|c| c.http_listen = Some("127.0.0.1:0".parse().unwrap()))).await.expect("refused");
    assert!(helper_alone.contains("--http-listen"), "{helper_alone}");
    let no_root = start(Box::new(|c| {
        c.acme_domains = vec!["live.test".into()];
        c.acme_ca_root = Some("/nonexistent/root.pem".into());
    }))
    .await
    .expect("refused");
    assert!(no_root.contains("/nonexistent/root.pem"), "{no_root}");
}

/// The binary with `--tls-cert`: SIGHUP swaps the certificate for new connections, keeps open
/// ones, and a bad file on SIGHUP keeps the current certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_files_without_dropping_connections() {
    let dir = tempfile::TempDir::new().unwrap();
    let first = TestCert::new(&["live.test"]);
    let second = TestCert::new(&["live.test"]);
    let (cert_path, key_path) = first.write(dir.path());
    let mut server = Server::start(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
    ]);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let addr: SocketAddr = server.base.trim_start_matches("https://").parse().unwrap();
    let roots = [first.der(), second.der()];
    assert_eq!(presented_cert(addr, "live.test", &roots).await, first.der());
    // A client with an open keep-alive connection from before the reload.
    let client = https_client(&roots, "live.test", addr);
    let url = format!("https://live.test:{}/healthz", addr.port());
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);

    second.write(dir.path());
    server.hangup();
    let mut seen = first.der();
    for _ in 0..50 {
        seen = presented_cert(addr, "live.test", &roots).await;
        if seen == second.der() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, second.der(), "a new connection sees the new certificate after SIGHUP");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200, "the open connection still works");

    std::fs::write(&key_path, "garbage").unwrap();
    server.hangup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        presented_cert(addr, "live.test", &roots).await,
        second.der(),
        "a bad file keeps the current certificate"
    );
    assert!(server.is_running(), "a bad file on SIGHUP does not stop the server");
}

/// The `ferrocast` binary as a child process, killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferrocast"))
            .args(["--listen", "127.0.0.1:0", "--signup", "open"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("binary starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("ferrocast listening on ").expect("prints its address").to_owned();
        Self { child, base }
    }

    pub fn hangup(&self) {
        assert!(Command::new("kill").args(["-HUP", &self.child.id().to_string()]).status().unwrap().success());
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
