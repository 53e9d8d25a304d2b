//! Certificates over ACME (RFC 8555) with instant-acme doing the protocol: the account and the
//! certificates live in the data folder, a restart reuses them, renewal starts 30 days before
//! expiry (or after two thirds of a short certificate's life), and a failed order is logged in
//! words and retried with backoff; it never stops the server.
//!
//! Challenges: TLS-ALPN-01 (RFC 8737) on the HTTPS listener, so port 80 is not needed; HTTP-01
//! through the `--http-listen` helper when it runs. An attempt tries TLS-ALPN-01 first, then
//! HTTP-01, so a port-forwarded or proxied 443 that cannot answer one still gets a certificate.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, ChallengeType, HttpClient, Identifier, NewAccount,
    NewOrder, Order, OrderStatus, RetryPolicy,
};
use rustls::{
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer},
};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use url::Url;

use super::certs::{tls_alpn_challenge_key, CertError, CertStore, SiteCertificate};

/// Renewal starts this long before expiry (Let's Encrypt's advice for 90-day certificates).
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(30 * 86_400);
/// First wait after a failed attempt; doubled after each further failure, up to [`MAX_RETRY`],
/// so a broken set-up does not hammer the CA (Let's Encrypt refuses a name after 5 failed
/// validations in an hour, and an attempt may fail two, one per challenge type; its refusal is
/// then logged and retried like any other failure).
const FIRST_RETRY: Duration = Duration::from_secs(5 * 60);
const MAX_RETRY: Duration = Duration::from_secs(4 * 3600);
/// How long the CA may take to validate the challenges, and then to issue.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(90);
const ISSUE_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest single sleep, so a wrong clock or a suspended machine is noticed within a day.
const MAX_SLEEP: Duration = Duration::from_secs(86_400);

/// What `--acme-*` says, plus where to keep the account and certificates.
#[derive(Clone, Debug)]
pub struct AcmeSettings {
    pub domains: Vec<String>,
    pub email: Option<String>,
    pub directory: Url,
    pub ca_root: Option<PathBuf>,
    /// `<data-dir>/acme`.
    pub dir: PathBuf,
    /// The `--http-listen` helper runs, so HTTP-01 can be answered.
    pub http01: bool,
}

impl AcmeSettings {
    /// One folder per CA: an account and a certificate from the staging CA are never used with
    /// the production one. Named after the CA's host, plus a hash of the whole URL.
    pub fn ca_folder(&self) -> PathBuf {
        let hash = Sha256::digest(self.directory.as_str().as_bytes());
        let host = self
            .directory
            .host_str()
            .unwrap_or("ca")
            .replace(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'), "_");
        self.dir.join(format!("{host}-{:02x}{:02x}{:02x}{:02x}", hash[0], hash[1], hash[2], hash[3]))
    }

    /// The stored certificate chain and key of this set of names.
    pub fn cert_paths(&self) -> (PathBuf, PathBuf) {
        let folder = self.ca_folder();
        let name = &self.domains[0];
        (folder.join(format!("{name}.crt.pem")), folder.join(format!("{name}.key.pem")))
    }
}

/// HTTP-01 answers by token, served at `/.well-known/acme-challenge/{token}` (RFC 8555 §8.3)
/// while an order is open.
#[derive(Default, Debug)]
pub struct Http01Answers(RwLock<HashMap<String, String>>);

impl Http01Answers {
    pub fn get(&self, token: &str) -> Option<String> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).get(token).cloned()
    }

    pub fn insert(&self, token: String, key_authorization: String) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(token, key_authorization);
    }

    fn remove(&self, token: &str) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).remove(token);
    }
}

/// When to renew a certificate valid from `not_before` to `not_after`: 30 days before expiry,
/// or with a third of its life left if it lives shorter than 90 days (a 6-day certificate is
/// renewed after 4 days, not at once and forever).
pub fn renewal_time(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    not_after.checked_sub(RENEW_BEFORE_EXPIRY.min(lifetime / 3)).unwrap_or(not_before)
}

/// The wait after the `failures`-th failed attempt in a row (1, 2, …).
pub fn retry_delay(failures: u32) -> Duration {
    FIRST_RETRY.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(MAX_RETRY)
}

/// Why an attempt failed, in words for the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AcmeError(String);

impl From<instant_acme::Error> for AcmeError {
    fn from(err: instant_acme::Error) -> Self {
        Self(match err {
            instant_acme::Error::Api(problem) => problem_words(&problem),
            other => other.to_string(),
        })
    }
}

impl From<CertError> for AcmeError {
    fn from(err: CertError) -> Self {
        Self(err.to_string())
    }
}

impl From<std::io::Error> for AcmeError {
    fn from(err: std::io::Error) -> Self {
        Self(err.to_string())
    }
}

fn problem_words(problem: &instant_acme::Problem) -> String {
    let kind = problem.r#type.as_deref().unwrap_or("error").trim_start_matches("urn:ietf:params:acme:error:");
    let mut words = format!("the CA says {kind}: {}", problem.detail.as_deref().unwrap_or("no detail"));
    for sub in &problem.subproblems {
        words.push_str(&format!("; {}", sub.detail.as_deref().unwrap_or("")));
    }
    words
}

/// Starts the task that keeps `store` holding a valid certificate for the configured names.
pub fn spawn(
    settings: AcmeSettings,
    store: Arc<CertStore>,
    http01: Arc<Http01Answers>,
    provider: Arc<CryptoProvider>,
    shutdown: watch::Receiver<bool>,
) {
    let manager = Manager { settings, store, http01, provider, account: None };
    tokio::spawn(manager.run(shutdown));
}

struct Manager {
    settings: AcmeSettings,
    store: Arc<CertStore>,
    http01: Arc<Http01Answers>,
    provider: Arc<CryptoProvider>,
    account: Option<Account>,
}

impl Manager {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let domains = self.settings.domains.join(", ");
        let mut next_attempt = match self.load_stored() {
            Some(site) => {
                let renew = renewal_time(site.not_before, site.not_after);
                tracing::info!(%domains, days_left = site.days_left(), "using the stored ACME certificate");
                self.store.install(site);
                renew
            }
            None => SystemTime::now(),
        };
        let mut failures = 0;
        loop {
            // Sleep until the next attempt, in steps of at most a day.
            while let Ok(wait) = next_attempt.duration_since(SystemTime::now()) {
                if wait.is_zero() {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(wait.min(MAX_SLEEP)) => {}
                    _ = shutdown.wait_for(|stopping| *stopping) => return,
                }
            }
            tracing::info!(%domains, directory = %self.settings.directory, "ordering a certificate");
            let started = std::time::Instant::now();
            let attempt = tokio::select! {
                attempt = self.issue() => attempt,
                _ = shutdown.wait_for(|stopping| *stopping) => return,
            };
            match attempt {
                Ok(site) => {
                    failures = 0;
                    next_attempt = renewal_time(site.not_before, site.not_after);
                    tracing::info!(
                        %domains,
                        days_left = site.days_left(),
                        seconds = started.elapsed().as_secs_f32(),
                        "certificate issued; renewal in {} days",
                        next_attempt.duration_since(SystemTime::now()).unwrap_or_default().as_secs() / 86_400
                    );
                    self.store.install(site);
                }
                Err(err) => {
                    failures += 1;
                    let delay = retry_delay(failures);
                    tracing::warn!(
                        "could not get a certificate for {domains}: {err}. The server keeps running{}; next try in {} min",
                        if self.store.current().is_some() { " with the current certificate" } else { "" },
                        delay.as_secs() / 60
                    );
                    next_attempt = SystemTime::now() + delay;
                }
            }
        }
    }

    /// The stored certificate, if it covers the configured names.
    fn load_stored(&self) -> Option<SiteCertificate> {
        let (cert, key) = self.settings.cert_paths();
        if !cert.exists() {
            return None;
        }
        match SiteCertificate::from_files(&self.provider, &cert, &key) {
            Ok(site) if site.covers(&self.settings.domains) => Some(site),
            Ok(site) => {
                tracing::info!(names = ?site.names, "the stored certificate does not cover every --acme-domain; ordering a new one");
                None
            }
            Err(err) => {
                tracing::warn!("the stored certificate cannot be used ({err}); ordering a new one");
                None
            }
        }
    }

    /// One attempt: each challenge type the server can answer, in turn.
    async fn issue(&mut self) -> Result<SiteCertificate, AcmeError> {
        let account = self.account().await?;
        let mut kinds = vec![ChallengeType::TlsAlpn01];
        if self.settings.http01 {
            kinds.push(ChallengeType::Http01);
        }
        let mut failed = Vec::new();
        for kind in kinds {
            match self.order(&account, &kind).await {
                Ok(issued) => {
                    let (cert, key) = self.settings.cert_paths();
                    write_file(&key, issued.key_pem.as_bytes(), 0o600)?;
                    write_file(&cert, issued.chain_pem.as_bytes(), 0o644)?;
                    return Ok(issued.site);
                }
                Err(err) => {
                    tracing::info!("{} validation did not succeed: {err}", challenge_name(&kind));
                    failed.push(format!("{}: {err}", challenge_name(&kind)));
                }
            }
        }
        Err(AcmeError(failed.join("; ")))
    }

    /// The account, created on first use and stored (with its key) in the CA's folder.
    async fn account(&mut self) -> Result<Account, AcmeError> {
        if let Some(account) = &self.account {
            return Ok(account.clone());
        }
        let builder = || match &self.settings.ca_root {
            Some(root) => Ok(Account::builder_with_http(http_client_trusting(root, self.provider.clone())?)),
            None => Account::builder().map_err(AcmeError::from),
        };
        let path = self.settings.ca_folder().join("account.json");
        let account = match std::fs::read(&path) {
            Ok(bytes) => {
                let credentials: AccountCredentials = serde_json::from_slice(&bytes).map_err(|e| {
                    AcmeError(format!("{} is damaged ({e}); move it away to register anew", path.display()))
                })?;
                builder()?.from_credentials(credentials).await.map_err(|e| self.unreachable(e))?
            }
            Err(_) => {
                let contact = self.settings.email.as_ref().map(|email| format!("mailto:{email}"));
                let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
                let new = NewAccount { contact: &contacts, terms_of_service_agreed: true, only_return_existing: false };
                let (account, credentials) = builder()?
                    .create(&new, self.settings.directory.to_string(), None)
                    .await
                    .map_err(|e| self.unreachable(e))?;
                let json = serde_json::to_vec_pretty(&credentials).map_err(|e| AcmeError(e.to_string()))?;
                write_file(&path, &json, 0o600)?;
                tracing::info!(directory = %self.settings.directory, "ACME account registered");
                account
            }
        };
        self.account = Some(account.clone());
        Ok(account)
    }

    /// An error on the way to the ACME server, naming it.
    fn unreachable(&self, err: instant_acme::Error) -> AcmeError {
        match err {
            instant_acme::Error::Api(problem) => AcmeError(problem_words(&problem)),
            other => AcmeError(format!("cannot talk to the ACME server at {}: {other}", self.settings.directory)),
        }
    }

    /// One order answered with challenges of `kind`.
    async fn order(&self, account: &Account, kind: &ChallengeType) -> Result<Issued, AcmeError> {
        let identifiers: Vec<Identifier> = self.settings.domains.iter().cloned().map(Identifier::Dns).collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        // Removes the challenge answers however the order ends.
        let mut answers = Answers { store: &self.store, http01: &self.http01, alpn: Vec::new(), tokens: Vec::new() };
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(AcmeError(format!("the authorization for {} is {other:?}", authorization.identifier())))
                }
            }
            let mut challenge = authorization
                .challenge(kind.clone())
                .ok_or_else(|| AcmeError(format!("the CA offers no {} challenge", challenge_name(kind))))?;
            let domain = challenge.identifier().to_string();
            let key_authorization = challenge.key_authorization();
            if *kind == ChallengeType::TlsAlpn01 {
                let key = tls_alpn_challenge_key(&self.provider, &domain, key_authorization.digest().as_ref())?;
                self.store.add_challenge(&domain, key);
                answers.alpn.push(domain);
            } else {
                self.http01.insert(challenge.token.clone(), key_authorization.as_str().to_owned());
                answers.tokens.push(challenge.token.clone());
            }
            challenge.set_ready().await?;
        }
        let policy =
            RetryPolicy::new().initial_delay(Duration::from_millis(250)).backoff(1.5).timeout(VALIDATION_TIMEOUT);
        match order.poll_ready(&policy).await? {
            OrderStatus::Ready => {}
            status => return Err(AcmeError(why_not_ready(&mut order, status).await)),
        }
        drop(answers);
        let key_pem = order.finalize().await?;
        let chain_pem = order.poll_certificate(&RetryPolicy::new().timeout(ISSUE_TIMEOUT)).await?;
        let site = SiteCertificate::from_pem(
            &self.provider,
            chain_pem.as_bytes(),
            key_pem.as_bytes(),
            ("the issued chain", "the new key"),
        )?;
        Ok(Issued { site, chain_pem, key_pem })
    }
}

/// A certificate just issued, with the PEM to store.
struct Issued {
    site: SiteCertificate,
    chain_pem: String,
    key_pem: String,
}

/// The HTTP client that talks to the ACME server when `--acme-ca-root` is given: the system's
/// roots and that one (instant-acme's own `builder_with_root` would trust that one only).
fn http_client_trusting(root: &Path, provider: Arc<CryptoProvider>) -> Result<Box<dyn HttpClient>, AcmeError> {
    let unreadable = |e: &dyn std::fmt::Display| AcmeError(format!("--acme-ca-root {}: {e}", root.display()));
    let roots = CertificateDer::pem_file_iter(root)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| unreadable(&e))?;
    if roots.is_empty() {
        return Err(unreadable(&"no PEM certificate in it"));
    }
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
        .map_err(|e| unreadable(&e))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unreadable(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    let client: hyper_util::client::legacy::Client<_, BodyWrapper<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    Ok(Box::new(client))
}

/// The challenge answers of one order, withdrawn when it ends.
struct Answers<'a> {
    store: &'a CertStore,
    http01: &'a Http01Answers,
    alpn: Vec<String>,
    tokens: Vec<String>,
}

impl Drop for Answers<'_> {
    fn drop(&mut self) {
        self.alpn.iter().for_each(|domain| self.store.remove_challenge(domain));
        self.tokens.iter().for_each(|token| self.http01.remove(token));
    }
}

/// The CA's reasons for an order that did not become ready, from its authorizations.
async fn why_not_ready(order: &mut Order, status: OrderStatus) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        if let Ok(state) = authorization.refresh().await {
            for challenge in &state.challenges {
                if let Some(problem) = &challenge.error {
                    reasons.push(format!("{}: {}", state.identifier(), problem_words(problem)));
                }
            }
        }
    }
    if reasons.is_empty() {
        format!("the order is {status:?}")
    } else {
        reasons.join("; ")
    }
}

fn challenge_name(kind: &ChallengeType) -> &'static str {
    match kind {
        ChallengeType::TlsAlpn01 => "TLS-ALPN-01",
        ChallengeType::Http01 => "HTTP-01",
        _ => "other",
    }
}

/// Writes `bytes` to `path` whole or not at all (a crash mid-write leaves the old file), with
/// `mode` (the account and private keys are for this user only).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_90_day_certificate_is_renewed_30_days_before_expiry() {
        let issued = SystemTime::UNIX_EPOCH + 1000 * DAY;
        assert_eq!(renewal_time(issued, issued + 90 * DAY), issued + 60 * DAY);
        // A year-long certificate (from files or another CA) still 30 days before.
        assert_eq!(renewal_time(issued, issued + 365 * DAY), issued + 335 * DAY);
    }

    #[test]
    fn a_short_lived_certificate_is_renewed_with_a_third_of_its_life_left() {
        let issued = SystemTime::UNIX_EPOCH + 1000 * DAY;
        assert_eq!(renewal_time(issued, issued + 6 * DAY), issued + 4 * DAY);
        assert_eq!(renewal_time(issued, issued), issued, "an already-expired one at once");
    }

    #[test]
    fn a_stored_short_lived_certificate_is_due_for_renewal_now() {
        // A real certificate that expires in 5 days out of 90: renewal is due already.
        let mut params = rcgen::CertificateParams::new(vec!["live.test".to_owned()]).unwrap();
        let now = time_now();
        params.not_before = now - time::Duration::days(85);
        params.not_after = now + time::Duration::days(5);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let site =
            SiteCertificate::from_pem(&provider, cert.pem().as_bytes(), key.serialize_pem().as_bytes(), ("c", "k"))
                .unwrap();
        assert!(renewal_time(site.not_before, site.not_after) <= SystemTime::now());
        assert_eq!(site.days_left(), 4, "5 days less the seconds since");
    }

    fn time_now() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }

    #[test]
    fn failures_back_off_from_5_minutes_to_4_hours() {
        let minutes: Vec<u64> = (1..=8).map(|n| retry_delay(n).as_secs() / 60).collect();
        assert_eq!(minutes, [5, 10, 20, 40, 80, 160, 240, 240]);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY);
    }

    #[test]
    fn each_ca_has_its_own_folder() {
        let settings = |directory: &str| AcmeSettings {
            domains: vec!["live.example.com".into()],
            email: None,
            directory: Url::parse(directory).unwrap(),
            ca_root: None,
            dir: PathBuf::from("/data/acme"),
            http01: false,
        };
        let production = settings(crate::config::LETS_ENCRYPT_PRODUCTION);
        let staging = settings("https://acme-staging-v02.api.letsencrypt.org/directory");
        assert_ne!(production.ca_folder(), staging.ca_folder());
        assert!(production.ca_folder().to_string_lossy().starts_with("/data/acme/acme-v02.api.letsencrypt.org-"));
        assert_eq!(production.cert_paths().0.file_name().unwrap(), "live.example.com.crt.pem");
    }
}
