//! The certificates HTTPS presents: the site's own (from files or ACME) and, during an ACME
//! TLS-ALPN-01 validation, the challenge certificate for the name being validated.

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

/// ALPN protocol id of TLS-ALPN-01 validations (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{0} holds no PEM certificate")]
    NoCertificate(String),
    #[error("{0} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(String),
    #[error("the private key cannot sign: {0}")]
    BadKey(String),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("the certificate cannot be parsed: {0}")]
    BadCertificate(String),
    #[error("cannot make a certificate: {0}")]
    Generate(String),
    #[error("--tls-cert and --tls-key go together")]
    Incomplete,
}

/// A certificate ready to present, with the facts renewal and logs need.
#[derive(Clone, Debug)]
pub struct SiteCertificate {
    pub key: Arc<CertifiedKey>,
    pub names: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl SiteCertificate {
    /// Builds from a PEM chain (leaf first) and a PEM private key; `cert_from` and `key_from`
    /// name where each came from in errors.
    pub fn from_pem(
        provider: &CryptoProvider,
        chain_pem: &[u8],
        key_pem: &[u8],
        (cert_from, key_from): (&str, &str),
    ) -> Result<Self, CertError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CertError::Read { path: cert_from.to_owned(), reason: e.to_string() })?;
        if chain.is_empty() {
            return Err(CertError::NoCertificate(cert_from.to_owned()));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| CertError::NoKey(key_from.to_owned()))?;
        Self::from_der(provider, chain, key)
    }

    /// Reads a PEM chain and key from files (`--tls-cert`, `--tls-key`).
    pub fn from_files(provider: &CryptoProvider, cert: &Path, key: &Path) -> Result<Self, CertError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| CertError::Read { path: path.display().to_string(), reason: e.to_string() })
        };
        let names = (cert.display().to_string(), key.display().to_string());
        Self::from_pem(provider, &read(cert)?, &read(key)?, (&names.0, &names.1))
    }

    fn from_der(
        provider: &CryptoProvider,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, CertError> {
        let signing_key = provider.key_provider.load_private_key(key).map_err(|e| CertError::BadKey(e.to_string()))?;
        let facts = LeafFacts::of(&chain[0])?;
        let key = CertifiedKey::new(chain, signing_key);
        match key.keys_match() {
            Ok(()) => {}
            // Keys rustls cannot compare (no SPKI from the signer) are let through.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(_) => return Err(CertError::KeyMismatch),
        }
        Ok(Self { key: Arc::new(key), names: facts.names, not_before: facts.not_before, not_after: facts.not_after })
    }

    /// True when the certificate names every one of `domains`.
    pub fn covers(&self, domains: &[String]) -> bool {
        domains.iter().all(|d| self.names.iter().any(|n| n.eq_ignore_ascii_case(d)))
    }

    /// Days left before expiry, for logs.
    pub fn days_left(&self) -> i64 {
        match self.not_after.duration_since(SystemTime::now()) {
            Ok(left) => (left.as_secs() / 86_400) as i64,
            Err(past) => -((past.duration().as_secs() / 86_400) as i64),
        }
    }
}

/// What a leaf certificate says about itself.
struct LeafFacts {
    names: Vec<String>,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl LeafFacts {
    fn of(leaf: &CertificateDer<'_>) -> Result<Self, CertError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| CertError::BadCertificate(e.to_string()))?;
        let time = |t: x509_parser::time::ASN1Time| {
            let secs = t.timestamp();
            if secs >= 0 {
                UNIX_EPOCH + Duration::from_secs(secs as u64)
            } else {
                UNIX_EPOCH
            }
        };
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => names.push(dns.to_ascii_lowercase()),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                        if let Ok(octets) = <[u8; 4]>::try_from(*bytes) {
                            names.push(std::net::IpAddr::from(octets).to_string());
                        } else if let Ok(octets) = <[u8; 16]>::try_from(*bytes) {
                            names.push(std::net::IpAddr::from(octets).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Self { names, not_before: time(cert.validity().not_before), not_after: time(cert.validity().not_after) })
    }
}

/// The certificate resolver of the HTTPS listener. Swapping the site certificate (SIGHUP,
/// renewal) affects new handshakes only: open connections keep theirs.
#[derive(Default, Debug)]
pub struct CertStore {
    site: RwLock<Option<SiteCertificate>>,
    /// TLS-ALPN-01 certificates by the DNS name under validation.
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    /// A client was turned away for want of a certificate, and the log said so (once: a
    /// browser retries many times while an ACME order is pending).
    told_no_certificate: AtomicBool,
}

impl CertStore {
    /// Presents `cert` from the next handshake on.
    pub fn install(&self, cert: SiteCertificate) {
        *self.site.write().unwrap_or_else(|p| p.into_inner()) = Some(cert);
    }

    /// The certificate presented now, if any.
    pub fn current(&self) -> Option<SiteCertificate> {
        self.site.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Answers TLS-ALPN-01 validations of `domain` with `key` until removed.
    pub fn add_challenge(&self, domain: &str, key: Arc<CertifiedKey>) {
        self.challenges.write().unwrap_or_else(|p| p.into_inner()).insert(domain.to_ascii_lowercase(), key);
    }

    pub fn remove_challenge(&self, domain: &str) {
        self.challenges.write().unwrap_or_else(|p| p.into_inner()).remove(&domain.to_ascii_lowercase());
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello.alpn().is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if acme {
            // RFC 8737 §3: the validation names the domain in SNI and offers only acme-tls/1.
            let name = hello.server_name()?.to_ascii_lowercase();
            return self.challenges.read().unwrap_or_else(|p| p.into_inner()).get(&name).cloned();
        }
        let site = self.site.read().unwrap_or_else(|p| p.into_inner()).as_ref().map(|c| c.key.clone());
        if site.is_none() && !self.told_no_certificate.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "an HTTPS client was turned away: there is no certificate yet (HTTPS answers once ACME has issued one)"
            );
        }
        site
    }
}

/// The self-signed certificate that answers a TLS-ALPN-01 validation of `domain`: it carries the
/// SHA-256 of the key authorization in the critical acmeIdentifier extension (RFC 8737 §3).
pub fn tls_alpn_challenge_key(
    provider: &CryptoProvider,
    domain: &str,
    key_authorization_digest: &[u8],
) -> Result<Arc<CertifiedKey>, CertError> {
    let generate = |e: rcgen::Error| CertError::Generate(e.to_string());
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()]).map_err(generate)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(key_authorization_digest)];
    let key_pair = rcgen::KeyPair::generate().map_err(generate)?;
    let cert = params.self_signed(&key_pair).map_err(generate)?;
    let key = PrivateKeyDer::try_from(key_pair.serialize_der()).map_err(|e| CertError::Generate(e.to_owned()))?;
    let signing_key = provider.key_provider.load_private_key(key).map_err(|e| CertError::BadKey(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing_key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> CryptoProvider {
        rustls::crypto::aws_lc_rs::default_provider()
    }

    fn self_signed(names: &[&str]) -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn a_pem_pair_gives_names_and_validity() {
        let (cert, key) = self_signed(&["live.test", "www.live.test"]);
        let site = SiteCertificate::from_pem(&provider(), cert.as_bytes(), key.as_bytes(), ("c", "k")).unwrap();
        assert_eq!(site.names, ["live.test", "www.live.test"]);
        assert!(site.covers(&["live.test".into()]) && !site.covers(&["other.test".into()]));
        assert!(site.not_after > SystemTime::now() && site.not_before <= SystemTime::now());
        assert!(site.days_left() > 300, "rcgen's default validity is years: {}", site.days_left());
    }

    #[test]
    fn a_key_of_another_certificate_or_garbage_is_refused_in_words() {
        let (cert, _) = self_signed(&["live.test"]);
        let (_, other_key) = self_signed(&["live.test"]);
        let err =
            SiteCertificate::from_pem(&provider(), cert.as_bytes(), other_key.as_bytes(), ("c", "k")).unwrap_err();
        assert!(matches!(err, CertError::KeyMismatch), "{err}");
        let err = SiteCertificate::from_pem(&provider(), b"not pem", other_key.as_bytes(), ("c", "k")).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let err = SiteCertificate::from_pem(&provider(), cert.as_bytes(), b"", ("c", "k")).unwrap_err();
        assert!(err.to_string().contains("no PEM private key"), "{err}");
    }

    #[test]
    fn the_challenge_certificate_carries_the_acme_identifier() {
        let digest = [7u8; 32];
        let key = tls_alpn_challenge_key(&provider(), "live.test", &digest).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(key.cert[0].as_ref()).unwrap();
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier extension");
        assert!(ext.critical, "RFC 8737: the extension is critical");
        // An OCTET STRING of the 32-byte digest.
        assert_eq!(&ext.value[..2], &[0x04, 32]);
        assert_eq!(&ext.value[2..], &digest);
    }
}
