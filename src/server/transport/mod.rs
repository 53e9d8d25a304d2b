//! Where a connection enters: the listener of `--listen` (plain HTTP, or HTTPS only), the
//! plain-HTTP helper of `--http-listen` ([`redirect`]), and the certificates HTTPS presents
//! ([`certs`], from files reloaded on SIGHUP or from ACME, [`acme`]).

pub mod acme;
pub mod certs;
pub mod redirect;
pub mod serve;

use std::{io, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::serve::Listener;
use rustls::{crypto::CryptoProvider, pki_types::pem::PemObject, ServerConfig};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{mpsc, watch, Semaphore},
};
use tokio_rustls::{server::TlsStream, TlsAcceptor};

use crate::config::Config;
use certs::{CertError, CertStore, SiteCertificate, ACME_TLS_ALPN};

/// A client gets this long to complete its TLS handshake; a silent one is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; beyond it new connections are closed (a handshake flood
/// must not grow memory without bound).
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// The TCP peer of a connection, as the listener saw it (before any proxy headers).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

/// The plain-HTTP listener of `--listen`.
pub struct PlainListener(pub TcpListener);

impl Listener for PlainListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    // Without TCP_NODELAY a response written in two parts (head, body) waits
                    // for the client's delayed ACK: a flat ~40 ms on every page (`cargo bench
                    // --bench web`).
                    let _ = stream.set_nodelay(true);
                    return (stream, peer);
                }
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// The one crypto provider of every TLS use here (aws-lc-rs, which str0m's DTLS builds too).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Where the HTTPS certificate comes from.
#[derive(Clone, Debug)]
pub enum CertSource {
    /// `--tls-cert` / `--tls-key`, read again on SIGHUP.
    Files { cert: PathBuf, key: PathBuf },
    /// `--acme-domain`: issued and renewed over ACME.
    Acme(acme::AcmeSettings),
}

/// HTTPS on `--listen`: the certificate store the handshakes read and where it is filled from.
pub struct Https {
    pub store: Arc<CertStore>,
    pub source: CertSource,
    pub provider: Arc<CryptoProvider>,
    /// HTTP-01 answers the `--http-listen` helper serves while an ACME order is open.
    pub http01: Arc<acme::Http01Answers>,
}

impl Https {
    /// HTTPS as the configuration asks: certificate files or ACME, or none.
    pub fn from_config(config: &Config) -> Result<Option<Self>, CertError> {
        let source = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => CertSource::Files { cert: cert.clone(), key: key.clone() },
            (None, None) if config.acme_domains.is_empty() => return Ok(None),
            (None, None) => CertSource::Acme(acme::AcmeSettings {
                domains: config.acme_domains.clone(),
                email: config.acme_email.clone(),
                directory: config.acme_directory.clone(),
                ca_root: config.acme_ca_root.clone(),
                dir: config.data_dir.join("acme"),
                http01: config.http_listen.is_some(),
            }),
            _ => return Err(CertError::Incomplete),
        };
        if let Some(root) = &config.acme_ca_root {
            // A wrong path is a configuration error to say now, not an order failure later.
            let pem = std::fs::read(root)
                .map_err(|e| CertError::Read { path: root.display().to_string(), reason: e.to_string() })?;
            if !<rustls::pki_types::CertificateDer as PemObject>::pem_slice_iter(&pem).any(|c| c.is_ok()) {
                return Err(CertError::NoCertificate(root.display().to_string()));
            }
        }
        Self::new(source).map(Some)
    }

    /// Prepares HTTPS; certificate files are read now, so a bad file stops the start with a
    /// reason instead of failing every handshake later.
    pub fn new(source: CertSource) -> Result<Self, CertError> {
        let provider = crypto_provider();
        let store = Arc::new(CertStore::default());
        if let CertSource::Files { cert, key } = &source {
            let site = SiteCertificate::from_files(&provider, cert, key)?;
            log_installed(&site, "from files");
            store.install(site);
        }
        Ok(Self { store, source, provider, http01: Arc::default() })
    }

    /// rustls settings of the listener: HTTP/2 and HTTP/1.1, plus acme-tls/1 for TLS-ALPN-01
    /// validations (answered by [`CertStore`], then closed by [`TlsListener`]).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.store.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
        Arc::new(config)
    }

    /// Keeps the certificate current until the server stops: ACME orders and renewals, or
    /// SIGHUP reloads of the files.
    pub fn keep_current(self: &Arc<Self>, stopped: watch::Receiver<bool>) {
        match &self.source {
            CertSource::Acme(settings) => {
                acme::spawn(settings.clone(), self.store.clone(), self.http01.clone(), self.provider.clone(), stopped)
            }
            CertSource::Files { .. } => self.reload_on_sighup(stopped),
        }
    }

    /// SIGHUP reads the certificate files again; open connections keep the old certificate,
    /// new ones get the new. A bad file is logged and the current certificate stays.
    fn reload_on_sighup(self: &Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(signal) => signal,
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGHUP: the certificate files will not be reloaded");
                return;
            }
        };
        let https = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = hangups.recv() => {
                        if let Err(err) = https.reload_files() {
                            tracing::error!("SIGHUP: the certificate files were not reloaded, the current certificate stays: {err}");
                        }
                    }
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
            }
        });
    }

    /// Reads the certificate files again (SIGHUP). On error the current certificate stays.
    pub fn reload_files(&self) -> Result<(), CertError> {
        let CertSource::Files { cert, key } = &self.source else { return Ok(()) };
        let site = SiteCertificate::from_files(&self.provider, cert, key)?;
        log_installed(&site, "reloaded from files");
        self.store.install(site);
        Ok(())
    }
}

fn log_installed(site: &SiteCertificate, how: &str) {
    tracing::info!(names = ?site.names, days_left = site.days_left(), "HTTPS certificate {how}");
}

/// The HTTPS listener: accepts TCP, runs each TLS handshake in its own task (a slow client
/// never holds up the others), and hands finished connections to the HTTP server.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<Self> {
        let local_addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(Self { ready, local_addr })
    }
}

async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>) {
    let slots = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            // The server stopped: release the port.
            () = ready.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // As in `PlainListener`: without it each response waits for a delayed ACK.
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many TLS handshakes in progress; connection closed");
            continue;
        };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) if tls.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) => {
                    // A TLS-ALPN-01 validation: the handshake was the answer (RFC 8737 §3).
                    tracing::debug!(%peer, "answered a TLS-ALPN-01 validation");
                }
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
