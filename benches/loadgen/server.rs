//! The server under test: `ferrocast` started as its own process on loopback with a fresh data
//! folder (or one already running at `--url`), and an account with a publish token on it.

use std::{
    io::{self, BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{json, Value};

use super::system;

pub struct Server {
    pub base: String,
    /// The process, when this benchmark started it (its CPU and memory can then be read).
    child: Option<Child>,
    _data: Option<tempfile::TempDir>,
    /// The self-signed certificate the server presents when started with [`Server::start_https`].
    tls_root: Option<rustls::pki_types::CertificateDer<'static>>,
}

impl Server {
    /// Starts the `ferrocast` binary over HTTPS (`--tls-cert`), with a certificate for
    /// 127.0.0.1 made here.
    pub fn start_https(cpu: Option<usize>) -> io::Result<Self> {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).map_err(io::Error::other)?;
        let files = tempfile::TempDir::new()?;
        let (cert_path, key_path) = (files.path().join("cert.pem"), files.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem())?;
        std::fs::write(&key_path, cert.signing_key.serialize_pem())?;
        let paths = [cert_path.to_string_lossy().into_owned(), key_path.to_string_lossy().into_owned()];
        let mut server = Self::start(cpu, &["--tls-cert", &paths[0], "--tls-key", &paths[1]])?;
        server.tls_root = Some(cert.cert.der().clone());
        Ok(server)
    }

    /// Starts the `ferrocast` binary cargo built alongside this benchmark, pinned to `cpu`.
    pub fn start(cpu: Option<usize>, extra_args: &[&str]) -> io::Result<Self> {
        let data = tempfile::TempDir::new()?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferrocast"));
        command
            .args(["--listen", "127.0.0.1:0", "--signup", "open", "--data-dir"])
            .arg(data.path())
            .args(extra_args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(site) = system::target_dir().map(|t| t.join("site")).filter(|s| s.is_dir()) {
            command.arg("--site-root").arg(site);
        }
        if let Some(cpu) = cpu {
            system::pin_command(&mut command, cpu);
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(base) = line.strip_prefix("ferrocast listening on ") {
                        break base.trim().to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    return Err(io::Error::other("the server exited before listening"));
                }
            }
        };
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self { base, child: Some(child), _data: Some(data), tls_root: None })
    }

    /// A server someone else runs; only loopback addresses are accepted (benchmarks stay local).
    pub fn external(url: &str) -> io::Result<Self> {
        let parsed = url::Url::parse(url).map_err(io::Error::other)?;
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        if !loopback {
            return Err(io::Error::other("--url must be a loopback address (127.0.0.1, [::1], localhost)"));
        }
        Ok(Self { base: url.trim_end_matches('/').to_owned(), child: None, _data: None, tls_root: None })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An HTTP client for this server (trusting its certificate when it serves HTTPS).
    pub fn client(&self, cookies: bool) -> io::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder().cookie_store(cookies).timeout(Duration::from_secs(30));
        if let Some(root) = &self.tls_root {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(root.clone()).map_err(io::Error::other)?;
            let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(io::Error::other)?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder = builder.use_preconfigured_tls(tls);
        }
        builder.build().map_err(io::Error::other)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An account on the server, signed in, with a publish token for `stream`.
#[derive(Clone)]
pub struct Streamer {
    pub client: reqwest::Client,
    pub email: String,
    pub password: String,
    pub account: String,
    pub token: String,
}

/// A new account with a token for `stream`; `record`: the token records what it publishes.
pub async fn streamer(server: &Server, stream: &str, record: bool) -> io::Result<Streamer> {
    let client = server.client(true)?;
    let email = format!("bench-{}@example.com", std::process::id() as u64 * 1000 + rand_small());
    let password = "bench password 12345".to_owned();
    let signup = json!({ "email": email, "password": password });
    expect(client.post(server.url("/api/v1/signup")).json(&signup).send().await, 201, "sign-up").await?;
    let me = expect(client.get(server.url("/api/v1/me")).send().await, 200, "me").await?;
    let token = json!({ "label": "bench", "streams": [stream], "record": record });
    let created = expect(client.post(server.url("/api/v1/tokens")).json(&token).send().await, 201, "token").await?;
    let field =
        |v: &Value, path: &[&str]| path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str).map(str::to_owned);
    Ok(Streamer {
        client,
        email,
        password,
        account: field(&me, &["accountId"]).ok_or_else(|| io::Error::other("no accountId"))?,
        token: field(&created, &["secret"]).ok_or_else(|| io::Error::other("no secret"))?,
    })
}

async fn expect(response: reqwest::Result<reqwest::Response>, status: u16, what: &str) -> io::Result<Value> {
    let response = response.map_err(|err| io::Error::other(format!("{what}: {err}")))?;
    if response.status().as_u16() != status {
        let got = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(io::Error::other(format!("{what}: {got}: {body}")));
    }
    response.json().await.map_err(|err| io::Error::other(format!("{what}: {err}")))
}

fn rand_small() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_micros() as u64 % 1000)
}
