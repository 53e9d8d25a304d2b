//! Certificates over ACME against a real ACME server: Debian's `pebble`, with
//! `pebble-challtestsrv` answering its DNS queries (every name is 127.0.0.1), so its validation
//! authority really connects to the server for TLS-ALPN-01 and HTTP-01 (no "always valid").

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use ferrocast::{config::Config, server::Application};
use rustls::pki_types::{pem::PemObject, CertificateDer};
use url::Url;

use crate::{
    helpers::{free_port, spawn_on},
    tls::client_tls,
};

/// pebble and its DNS, killed on drop.
pub struct Pebble {
    children: Vec<Child>,
    /// The ACME directory URL.
    pub directory: Url,
    /// pebble's own HTTPS certificate: the `--acme-ca-root` of the server.
    pub listener_cert: PathBuf,
    management: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Pebble {
    /// Starts pebble validating TLS-ALPN-01 on `tls_port` and HTTP-01 on `http_port`.
    pub fn start(tls_port: u16, http_port: u16) -> Self {
        for program in ["/usr/bin/pebble", "/usr/bin/pebble-challtestsrv"] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: scripts/setup.sh --test installs Debian's pebble"
            );
        }
        let dir = tempfile::TempDir::new().unwrap();
        let own = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let listener_cert = dir.path().join("pebble.pem");
        let listener_key = dir.path().join("pebble-key.pem");
        std::fs::write(&listener_cert, own.cert.pem()).unwrap();
        std::fs::write(&listener_key, own.signing_key.serialize_pem()).unwrap();
        for attempt in 1.. {
            let (acme, management, dns) = (free_port(), free_port(), free_port());
            let config = serde_json::json!({ "pebble": {
                "listenAddress": format!("127.0.0.1:{acme}"),
                "managementListenAddress": format!("127.0.0.1:{management}"),
                "certificate": listener_cert, "privateKey": listener_key,
                "httpPort": http_port, "tlsPort": tls_port,
                "ocspResponderURL": "", "externalAccountBindingRequired": false,
            }});
            let config_path = dir.path().join("pebble.json");
            std::fs::write(&config_path, config.to_string()).unwrap();

            let dns_server = Command::new("/usr/bin/pebble-challtestsrv")
                .args(["-dns01", &format!("127.0.0.1:{dns}"), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .args([
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                    "-management",
                    &format!("127.0.0.1:{}", free_port()),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("pebble-challtestsrv starts");
            let pebble = Command::new("/usr/bin/pebble")
                .args(["-config", config_path.to_str().unwrap(), "-dnsserver", &format!("127.0.0.1:{dns}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("pebble starts");
            let started = Instant::now();
            let mut children = vec![pebble, dns_server];
            while std::net::TcpStream::connect(("127.0.0.1", acme)).is_err()
                || std::net::TcpStream::connect(("127.0.0.1", management)).is_err()
            {
                // A port picked free may be taken by another test before pebble binds it: pebble
                // then exits at once, and a new set of ports is tried.
                if children.iter_mut().any(|child| child.try_wait().is_ok_and(|status| status.is_some())) {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(20), "pebble did not start listening in 20 s");
                std::thread::sleep(Duration::from_millis(50));
            }
            if children.iter_mut().any(|child| child.try_wait().is_ok_and(|status| status.is_some())) {
                for child in &mut children {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                assert!(attempt < 5, "pebble or pebble-challtestsrv exited at start {attempt} times");
                continue;
            }
            return Self {
                children,
                directory: Url::parse(&format!("https://127.0.0.1:{acme}/dir")).unwrap(),
                listener_cert,
                management: SocketAddr::from(([127, 0, 0, 1], management)),
                _dir: dir,
            };
        }
        unreachable!("the attempts end in a return or a failed assertion")
    }

    /// The root that signs the certificates pebble issues (new at every pebble start).
    pub async fn issuing_root(&self) -> CertificateDer<'static> {
        let own = CertificateDer::from_pem_file(&self.listener_cert).unwrap();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(client_tls(&[own]))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let pem =
            client.get(format!("https://{}/roots/0", self.management)).send().await.unwrap().text().await.unwrap();
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("a PEM root")
    }

    pub fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

fn acme_config(config: &mut Config, pebble: &Pebble, listen: u16) {
    config.listen = SocketAddr::from(([127, 0, 0, 1], listen));
    config.acme_domains = vec!["live.test".into()];
    config.acme_email = Some("ops@live.test".into());
    config.acme_directory = pebble.directory.clone();
    config.acme_ca_root = Some(pebble.listener_cert.clone());
}

/// Polls TLS handshakes until the server presents a certificate that chains to `root`.
async fn wait_for_issued(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    within: Duration,
) -> CertificateDer<'static> {
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_tls(std::slice::from_ref(root))));
    let started = Instant::now();
    loop {
        if let Ok(tcp) = tokio::net::TcpStream::connect(addr).await {
            let name = rustls::pki_types::ServerName::try_from("live.test").unwrap();
            if let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp)).await {
                return tls.get_ref().1.peer_certificates().unwrap()[0].clone();
            }
        }
        assert!(started.elapsed() < within, "no certificate from the ACME CA within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where the certificate for live.test is stored in a data folder.
fn stored_certificate(data_dir: &Path) -> PathBuf {
    let acme = data_dir.join("acme");
    let ca = std::fs::read_dir(&acme).expect("acme folder").next().expect("a CA folder").unwrap().path();
    ca.join("live.test.crt.pem")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn_01_gets_a_certificate_and_a_restart_reuses_it_without_the_ca() {
    let port = free_port();
    let mut pebble = Pebble::start(port, free_port());
    let root = pebble.issuing_root().await;
    let data = tempfile::TempDir::new().unwrap();
    let started = Instant::now();
    let app = spawn_on(data.path().to_path_buf(), |c| acme_config(c, &pebble, port)).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let issued = wait_for_issued(addr, &root, Duration::from_secs(60)).await;
    println!("TLS-ALPN-01: start to certificate in {:.2} s", started.elapsed().as_secs_f64());

    let stored = stored_certificate(data.path());
    assert_eq!(CertificateDer::from_pem_file(&stored).unwrap(), issued, "the issued certificate is stored");
    let key = stored.with_file_name("live.test.key.pem");
    let account = stored.with_file_name("account.json");
    for secret in [&key, &account] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is for the server's user only", secret.display());
    }
    app.stop().await;

    // With the CA gone, a restart must present the stored certificate at once.
    pebble.stop();
    let app = spawn_on(data.path().to_path_buf(), |c| acme_config(c, &pebble, port)).await;
    let again = wait_for_issued(addr, &root, Duration::from_secs(5)).await;
    assert_eq!(again, issued, "the restart reuses the stored certificate, no new order");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_01_through_the_helper_when_tls_alpn_01_cannot_be_reached() {
    let (port, helper_port, nothing_there) = (free_port(), free_port(), free_port());
    // The CA validates TLS-ALPN-01 on a port where nothing listens, as behind a proxy that
    // cannot pass it: the server must fall back to HTTP-01 in the same attempt.
    let pebble = Pebble::start(nothing_there, helper_port);
    let root = pebble.issuing_root().await;
    let data = tempfile::TempDir::new().unwrap();
    let app = spawn_on(data.path().to_path_buf(), |c| {
        acme_config(c, &pebble, port);
        c.http_listen = Some(SocketAddr::from(([127, 0, 0, 1], helper_port)));
    })
    .await;
    wait_for_issued(SocketAddr::from(([127, 0, 0, 1], port)), &root, Duration::from_secs(90)).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_certificate_near_expiry_is_renewed() {
    let port = free_port();
    let pebble = Pebble::start(port, free_port());
    let root = pebble.issuing_root().await;
    let data = tempfile::TempDir::new().unwrap();
    // Store a short-lived certificate (5 days left of 90) where the server keeps its own.
    let mut params = rcgen::CertificateParams::new(vec!["live.test".to_owned()]).unwrap();
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(85);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    let key = rcgen::KeyPair::generate().unwrap();
    let old = params.self_signed(&key).unwrap();
    let mut config = Config::for_data_dir(data.path());
    acme_config(&mut config, &pebble, port);
    let settings = ferrocast::server::transport::acme::AcmeSettings {
        domains: config.acme_domains.clone(),
        email: None,
        directory: config.acme_directory.clone(),
        ca_root: None,
        dir: data.path().join("acme"),
        http01: false,
    };
    let (cert_path, key_path) = settings.cert_paths();
    std::fs::create_dir_all(cert_path.parent().unwrap()).unwrap();
    std::fs::write(&cert_path, old.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();

    let app = Application::build(config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let renewed = wait_for_issued(SocketAddr::from(([127, 0, 0, 1], port)), &root, Duration::from_secs(60)).await;
    assert_ne!(renewed.as_ref(), old.der().as_ref());
    assert_eq!(
        CertificateDer::from_pem_file(&cert_path).unwrap(),
        renewed,
        "the renewed certificate replaced the stored one"
    );
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_order_is_logged_in_words_and_the_server_keeps_running() {
    let data = tempfile::TempDir::new().unwrap();
    let unreachable = format!("https://127.0.0.1:{}/dir", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrocast"))
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--acme-domain", "live.test"])
        .args(["--acme-directory", &unreachable, "--data-dir", data.path().to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    stdout.read_line(&mut first).unwrap();
    stdout.read_line(&mut second).unwrap();
    assert!(first.starts_with("ferrocast listening on https://"), "{first}");
    let helper = second.trim().rsplit_once("http://").expect("the helper's address").1.to_owned();

    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut all = String::new();
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = tx.send(all.clone());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = String::new();
    while !log.contains("could not get a certificate") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(more) => log = more,
            Err(_) => panic!("no log line about the failed order within 30 s; the log: {log}"),
        }
    }
    assert!(log.contains("live.test") && log.contains("keeps running") && log.contains("next try in"), "{log}");

    // A browser that comes before any certificate is turned away, and the log says why.
    let https: SocketAddr = first.trim().trim_start_matches("ferrocast listening on https://").parse().unwrap();
    let own = rcgen::generate_simple_self_signed(vec!["live.test".to_owned()]).unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_tls(&[own.cert.der().clone()])));
    let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("live.test").unwrap();
    assert!(connector.connect(name, tcp).await.is_err(), "no certificate, no handshake");
    while !log.contains("there is no certificate yet") {
        let left = deadline.saturating_duration_since(Instant::now());
        log = rx.recv_timeout(left).unwrap_or_else(|_| panic!("nothing logged about the turned-away client: {log}"));
    }

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let answer = client.get(format!("http://{helper}/")).header("host", "live.test").send().await.unwrap();
    assert_eq!(answer.status(), 308, "the server still answers");
    assert!(child.try_wait().unwrap().is_none(), "the server is still running");
    let _ = child.kill();
    let _ = child.wait();
}
