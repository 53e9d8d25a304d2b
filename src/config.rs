//! Command-line flags and `FERROCAST_*` environment variables (PRODUCT.md §1).

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use clap::{Parser, ValueEnum};
use ipnet::IpNet;
use url::Url;

use crate::sfu::{IceServer, MediaAddresses, SfuConfig, TcpPort};

/// Who may create accounts (README "Sign-up and the operator").
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SignupMode {
    /// With an operator's invite; the first account of an empty data folder needs none and
    /// becomes the operator.
    Invite,
    /// Anyone.
    Open,
    /// Nobody.
    Closed,
}

impl SignupMode {
    pub fn policy(self) -> crate::model::SignupPolicy {
        use crate::model::SignupPolicy;
        match self {
            Self::Invite => SignupPolicy::Invite,
            Self::Open => SignupPolicy::Open,
            Self::Closed => SignupPolicy::Closed,
        }
    }
}

/// What `ferrocast` does instead of serving.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Command {
    /// Writes a consistent copy of the database (of `--data-dir`) to FILE, also while the server
    /// runs; FILE must not exist. Recordings are files in the data folder: copy them as files.
    Backup {
        /// Where the copy goes.
        file: PathBuf,
    },
    /// Makes a one-time sign-up invite and prints its link (for a server where nobody can log in
    /// yet, or from a script); works while the server runs.
    Invite {
        /// Seconds the invite stays usable.
        #[arg(long, default_value_t = crate::server::invites::DEFAULT_LIFETIME_SECS)]
        expires_in: u64,
        /// Who it is for, as the operator's list shows it.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Sets a new password for EMAIL (asked for on the terminal, or read as one line from
    /// standard input) and ends that account's sessions; works while the server runs.
    ResetPassword { email: String },
}

/// Everything the server needs to start; every field has a default that makes a first run work.
#[derive(Clone, Debug, Parser)]
#[command(name = "ferrocast", version, about = "Self-hosted real-time streaming (WHIP/WHEP SFU + dashboard)")]
pub struct Config {
    /// Without a command the server runs.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address the HTTP server listens on (port 0 picks a free port).
    #[arg(long, env = "FERROCAST_LISTEN", default_value = "127.0.0.1:3000", global = true)]
    pub listen: SocketAddr,

    /// Folder for the SQLite database (and, later, recordings); created if missing.
    #[arg(long, env = "FERROCAST_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// URL people reach this server at; used in share links and to mark cookies `Secure` when it
    /// is https. Defaults to `http://{listen}`.
    #[arg(long, env = "FERROCAST_PUBLIC_URL", global = true)]
    pub public_url: Option<Url>,

    /// `invite`: the first account becomes the operator, later ones need its invite; `open` lets
    /// anyone sign up; `closed` refuses new accounts.
    #[arg(long, env = "FERROCAST_SIGNUP", value_enum, default_value = "invite")]
    pub signup: SignupMode,

    /// Where recordings are written (default: `recordings/` in the data folder).
    #[arg(long, env = "FERROCAST_RECORDINGS_DIR")]
    pub recordings_dir: Option<PathBuf>,

    /// Free space kept on the recordings disk (`1GiB`, `500MiB`, bytes): below it, running
    /// recordings end cleanly and new ones are refused.
    #[arg(long, env = "FERROCAST_RECORDINGS_MIN_FREE", default_value = "1GiB", value_parser = crate::recorder::disk::parse_size)]
    pub recordings_min_free: u64,

    /// Folder holding the built browser bundle (`pkg/`) and the files of `public/`.
    #[arg(long, env = "FERROCAST_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// The one UDP port every WebRTC peer shares (ICE UDP mux); 0 picks a free one.
    #[arg(long, env = "FERROCAST_RTC_UDP_PORT", default_value_t = 0)]
    pub rtc_udp_port: u16,

    /// The TCP port for ICE-TCP (RFC 6544), for clients whose network drops UDP: a number (0
    /// picks one), or `off`. Default: the UDP port's number.
    #[arg(long, env = "FERROCAST_RTC_TCP_PORT", value_parser = parse_tcp_port)]
    pub rtc_tcp_port: Option<TcpPort>,

    /// An address put in the SFU's ICE host candidates and bound (repeatable; one socket each,
    /// same port). Ignored when `--rtc-public-ip` is given.
    #[arg(long = "rtc-ip", env = "FERROCAST_RTC_IP", value_delimiter = ',', default_value = "127.0.0.1")]
    pub rtc_ips: Vec<IpAddr>,

    /// The public address clients reach the media port at, put in candidates (repeatable), for a
    /// machine behind 1:1 NAT whose interface has only a private address. The socket then binds
    /// to `--rtc-bind`.
    #[arg(long = "rtc-public-ip", env = "FERROCAST_RTC_PUBLIC_IP", value_delimiter = ',')]
    pub rtc_public_ips: Vec<IpAddr>,

    /// Where the media socket binds when `--rtc-public-ip` is given.
    #[arg(long, env = "FERROCAST_RTC_BIND", default_value = "0.0.0.0")]
    pub rtc_bind: IpAddr,

    /// A STUN/TURN server handed to clients in `Link` headers (repeatable):
    /// `URL` or `URL|username|credential`, e.g. `turn:turn.example.com:3478?transport=udp|alice|secret`.
    #[arg(long = "ice-server", env = "FERROCAST_ICE_SERVERS", value_delimiter = ',', value_parser = parse_ice_server)]
    pub ice_servers: Vec<IceServer>,

    /// Secret shared with the TURN server (coturn `use-auth-secret`): every `--ice-server`
    /// `turn:`/`turns:` entry without a username gets time-limited credentials per session.
    #[arg(long, env = "FERROCAST_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// How long issued TURN credentials last: seconds, or with `s`, `m`, `h` (e.g. `1h`).
    #[arg(long, env = "FERROCAST_TURN_TTL", default_value = "1h", value_parser = parse_duration)]
    pub turn_ttl: std::time::Duration,

    /// Most feeds (sources) one stream may have at once.
    #[arg(long, env = "FERROCAST_MAX_SOURCES_PER_STREAM", default_value_t = 8)]
    pub max_sources_per_stream: usize,

    /// Most feeds one account may publish at once, over all its streams and tokens (the operator
    /// may set another number for an account).
    #[arg(long, env = "FERROCAST_MAX_PUBLISHERS_PER_ACCOUNT", default_value_t = 32)]
    pub max_publishers_per_account: u32,

    /// Most viewers one account's streams may have at once (default: no limit of its own).
    #[arg(long, env = "FERROCAST_MAX_VIEWERS_PER_ACCOUNT")]
    pub max_viewers_per_account: Option<u32>,

    /// Most Mbit/s one account's streams may send to viewers at once, estimated as each stream's
    /// rate × its viewers (default: no limit of its own).
    #[arg(long, env = "FERROCAST_MAX_EGRESS_PER_ACCOUNT", value_parser = parse_mbps)]
    pub max_egress_per_account: Option<f64>,

    /// Most feeds one publish token may publish at once.
    #[arg(long, env = "FERROCAST_MAX_PUBLISHERS_PER_TOKEN", default_value_t = 16)]
    pub max_publishers_per_token: usize,

    /// Most viewers one stream may have at once.
    #[arg(long, env = "FERROCAST_MAX_VIEWERS_PER_STREAM", default_value_t = 1000)]
    pub max_viewers_per_stream: usize,

    /// Most viewers this server serves at once, over all streams.
    #[arg(long, env = "FERROCAST_MAX_VIEWERS", default_value_t = 4000)]
    pub max_viewers: usize,

    /// PEM certificate chain for HTTPS on `--listen` (with `--tls-key`); SIGHUP reloads it.
    #[arg(long, env = "FERROCAST_TLS_CERT", requires = "tls_key", conflicts_with = "acme_domains")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "FERROCAST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// A name to get a certificate for over ACME (repeatable); `--listen` then serves HTTPS.
    #[arg(long = "acme-domain", env = "FERROCAST_ACME_DOMAINS", value_delimiter = ',', value_parser = parse_domain)]
    pub acme_domains: Vec<String>,

    /// Contact address given to the ACME CA (expiry notices).
    #[arg(long, env = "FERROCAST_ACME_EMAIL")]
    pub acme_email: Option<String>,

    /// ACME directory URL. Let's Encrypt's staging CA, for trying things out:
    /// https://acme-staging-v02.api.letsencrypt.org/directory
    #[arg(long, env = "FERROCAST_ACME_DIRECTORY", default_value = LETS_ENCRYPT_PRODUCTION)]
    pub acme_directory: Url,

    /// A PEM root certificate to trust when talking to the ACME server (for test CAs).
    #[arg(long, env = "FERROCAST_ACME_CA_ROOT")]
    pub acme_ca_root: Option<PathBuf>,

    /// Plain-HTTP address (e.g. `0.0.0.0:80`) that answers ACME HTTP-01 challenges and
    /// redirects everything else to HTTPS (308). Needs `--tls-cert` or `--acme-domain`.
    #[arg(long, env = "FERROCAST_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,

    /// Also serve `GET /metrics` (Prometheus) here, to any client that reaches it; the main
    /// listener answers it to loopback clients only.
    #[arg(long, env = "FERROCAST_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Let webhooks reach addresses on private networks (loopback, 10/8, 192.168/16, …): off by
    /// default, so that an account holder cannot make the server probe its own network.
    #[arg(long, env = "FERROCAST_WEBHOOKS_PRIVATE_NETWORKS")]
    pub webhooks_private_networks: bool,

    /// A reverse proxy's address range (CIDR, repeatable): only requests from there may name the
    /// client address (`X-Forwarded-For`, `Forwarded`) and scheme (`X-Forwarded-Proto`).
    #[arg(long = "trusted-proxy", env = "FERROCAST_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<IpNet>,
}

/// `90`, `90s`, `15m`, `1h`: a duration of at least one second.
fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    let value = value.trim();
    let (number, unit) = match value.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => value.split_at(at),
        None => (value, "s"),
    };
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{value:?}: use seconds, or a number with s, m or h (like 1h)")),
    };
    let n: u64 = number.parse().map_err(|_| format!("{value:?} is not a duration like 3600, 15m or 1h"))?;
    match n.checked_mul(seconds) {
        Some(0) | None => Err(format!("{value:?}: at least 1 s, and not absurdly long")),
        Some(total) => Ok(std::time::Duration::from_secs(total)),
    }
}

/// Let's Encrypt's production ACME directory, the default CA.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// A DNS name a certificate can be issued for: letters, digits, hyphens, dots; no wildcard
/// (TLS-ALPN-01 and HTTP-01 cannot prove one).
fn parse_domain(value: &str) -> Result<String, String> {
    let name = value.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || !name.contains('.') && name != "localhost" || !name.split('.').all(label_ok) {
        return Err(format!("{value:?} is not a domain name (like live.example.com)"));
    }
    if name.parse::<IpAddr>().is_ok() || name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("{value:?} is an IP address; ACME certificates here are for domain names"));
    }
    Ok(name)
}

/// `10.0.0.0/8`, `::1/128`, or a bare address (a single host).
fn parse_cidr(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{value:?} is not an address range like 10.0.0.0/8 or 127.0.0.1"))
}

/// A rate in Mbit/s: a positive number (`2.5`).
fn parse_mbps(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(mbps) if mbps.is_finite() && mbps > 0.0 && mbps <= crate::server::account_limits::MAX_EGRESS_MBPS => {
            Ok(mbps)
        }
        _ => Err(format!("a rate in Mbit/s above 0, at most {}", crate::server::account_limits::MAX_EGRESS_MBPS)),
    }
}

fn parse_tcp_port(value: &str) -> Result<TcpPort, String> {
    match value {
        "off" => Ok(TcpPort::Off),
        number => {
            number.parse().map(TcpPort::Port).map_err(|_| format!("{number:?} is neither a port number nor `off`"))
        }
    }
}

fn parse_ice_server(value: &str) -> Result<IceServer, String> {
    let mut parts = value.split('|');
    let url = parts.next().unwrap_or_default().trim();
    let scheme = url.split(':').next().unwrap_or_default();
    if !matches!(scheme, "stun" | "stuns" | "turn" | "turns") || url.len() <= scheme.len() + 1 {
        return Err(format!("{url:?} is not a stun:, stuns:, turn: or turns: URL"));
    }
    if url.contains(['<', '>', '"', ' ']) {
        return Err(format!("{url:?} contains characters a URL may not"));
    }
    let username = parts.next().map(str::to_owned);
    let credential = parts.next().map(str::to_owned);
    if parts.next().is_some() || username.is_some() != credential.is_some() {
        return Err("use URL or URL|username|credential".into());
    }
    Ok(IceServer { url: url.to_owned(), username, credential })
}

impl Config {
    /// The configuration a test or an embedding program gets without parsing a command line.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            command: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            public_url: None,
            signup: SignupMode::Open,
            site_root: PathBuf::from("target/site"),
            recordings_dir: None,
            recordings_min_free: 1 << 30,
            rtc_udp_port: 0,
            rtc_tcp_port: None,
            rtc_ips: vec![IpAddr::from([127, 0, 0, 1])],
            rtc_public_ips: Vec::new(),
            rtc_bind: IpAddr::from([0, 0, 0, 0]),
            ice_servers: Vec::new(),
            turn_secret: None,
            turn_ttl: std::time::Duration::from_secs(3600),
            max_sources_per_stream: 8,
            max_publishers_per_account: 32,
            max_viewers_per_account: None,
            max_egress_per_account: None,
            max_publishers_per_token: 16,
            max_viewers_per_stream: 1000,
            max_viewers: 4000,
            tls_cert: None,
            tls_key: None,
            acme_domains: Vec::new(),
            acme_email: None,
            acme_directory: Url::parse(LETS_ENCRYPT_PRODUCTION).expect("a valid URL"),
            acme_ca_root: None,
            http_listen: None,
            metrics_listen: None,
            webhooks_private_networks: false,
            trusted_proxies: Vec::new(),
        }
    }

    /// The recordings folder: `--recordings-dir`, else `recordings/` in the data folder.
    /// The public URL as a command run beside the server sees it (no certificate at hand):
    /// `--public-url`, else the first ACME name over HTTPS, else the listen address.
    pub fn public_url_or_default(&self) -> String {
        let port = self.listen.port();
        let url = match (&self.public_url, self.acme_domains.first(), &self.tls_cert) {
            (Some(url), _, _) => url.to_string(),
            (None, Some(name), _) if port == 443 => format!("https://{name}"),
            (None, Some(name), _) => format!("https://{name}:{port}"),
            (None, None, Some(_)) => format!("https://{}", self.listen),
            (None, None, None) => format!("http://{}", self.listen),
        };
        url.trim_end_matches('/').to_owned()
    }

    /// The limits the server runs with, as the operator's page shows them.
    pub fn server_limits(&self) -> crate::model::ServerLimits {
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        crate::model::ServerLimits {
            max_viewers: n(self.max_viewers),
            max_viewers_per_stream: n(self.max_viewers_per_stream),
            max_sources_per_stream: n(self.max_sources_per_stream),
            max_publishers_per_token: n(self.max_publishers_per_token),
            account: self.account_limits(),
        }
    }

    /// The limits of an account the operator set none for.
    pub fn account_limits(&self) -> crate::model::AccountLimitsView {
        crate::model::AccountLimitsView {
            max_publishers: Some(self.max_publishers_per_account),
            max_viewers: self.max_viewers_per_account,
            max_egress_mbps: self.max_egress_per_account,
        }
    }

    pub fn recordings_folder(&self) -> PathBuf {
        self.recordings_dir.clone().unwrap_or_else(|| self.data_dir.join("recordings"))
    }

    /// True when `--listen` serves HTTPS (a certificate file or ACME).
    pub fn serves_https(&self) -> bool {
        self.tls_cert.is_some() || !self.acme_domains.is_empty()
    }

    /// Refuses media settings that cannot work: a public address of another IP family than the
    /// socket it is announced for (nothing sent to it could arrive).
    pub fn check_media(&self) -> Result<(), String> {
        if let Some(other) = self.rtc_public_ips.iter().find(|ip| ip.is_ipv4() != self.rtc_bind.is_ipv4()) {
            return Err(format!(
                "--rtc-public-ip {other} and --rtc-bind {} are of different IP families; bind to an address of the same family",
                self.rtc_bind
            ));
        }
        Ok(())
    }

    /// The SFU's part of the configuration.
    pub fn sfu(&self) -> SfuConfig {
        SfuConfig {
            udp_port: self.rtc_udp_port,
            tcp_port: self.rtc_tcp_port.unwrap_or(TcpPort::SameAsUdp),
            addresses: if self.rtc_public_ips.is_empty() {
                MediaAddresses::Direct(self.rtc_ips.clone())
            } else {
                MediaAddresses::Announced { bind: self.rtc_bind, public: self.rtc_public_ips.clone() }
            },
            max_sources_per_stream: self.max_sources_per_stream,
            max_publishers_per_token: self.max_publishers_per_token,
            max_viewers_per_stream: self.max_viewers_per_stream,
            max_viewers: self.max_viewers,
            ..SfuConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tcp_port_is_a_number_or_off() {
        assert_eq!(parse_tcp_port("off"), Ok(TcpPort::Off));
        assert_eq!(parse_tcp_port("0"), Ok(TcpPort::Port(0)));
        assert_eq!(parse_tcp_port("8443"), Ok(TcpPort::Port(8443)));
        for bad in ["", "on", "65536", "-1"] {
            assert!(parse_tcp_port(bad).unwrap_err().contains("neither a port number nor `off`"), "{bad}");
        }
        assert_eq!(Config::for_data_dir("d").sfu().tcp_port, TcpPort::SameAsUdp);
    }

    #[test]
    fn ice_servers_are_a_url_with_optional_credentials() {
        let stun = parse_ice_server("stun:stun.example.net:3478").unwrap();
        assert_eq!(stun, IceServer { url: "stun:stun.example.net:3478".into(), username: None, credential: None });
        let turn = parse_ice_server("turn:t.example.net?transport=tcp|alice|s3cret").unwrap();
        assert_eq!(turn.username.as_deref(), Some("alice"));
        assert_eq!(turn.credential.as_deref(), Some("s3cret"));
        for bad in ["http://example.net", "stun:", "turn:x|alice", "turn:x|a|b|c", "stun:<x>"] {
            assert!(parse_ice_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn public_media_addresses_bind_apart_and_match_the_socket_family() {
        let mut config = Config::for_data_dir("/tmp");
        assert_eq!(config.sfu().addresses, MediaAddresses::Direct(vec![IpAddr::from([127, 0, 0, 1])]));
        config.rtc_public_ips = vec!["203.0.113.7".parse().unwrap()];
        assert!(config.check_media().is_ok());
        assert_eq!(
            config.sfu().addresses,
            MediaAddresses::Announced {
                bind: IpAddr::from([0, 0, 0, 0]),
                public: vec!["203.0.113.7".parse().unwrap()]
            }
        );
        config.rtc_public_ips.push("2001:db8::7".parse().unwrap());
        assert!(config.check_media().unwrap_err().contains("2001:db8::7"));
    }

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(parse_duration("3600").unwrap().as_secs(), 3600);
        assert_eq!(parse_duration("15m").unwrap().as_secs(), 900);
        assert_eq!(parse_duration("1h").unwrap().as_secs(), 3600);
        for bad in ["", "0", "1d", "h", "-5", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn acme_domains_are_plain_dns_names() {
        assert_eq!(parse_domain("Live.Example.COM.").unwrap(), "live.example.com");
        assert_eq!(parse_domain("live.test").unwrap(), "live.test");
        for bad in ["", "*.example.com", "203.0.113.7", "exa mple.com", "-a.example.com", "a..b", "nodot", "a/b.com"] {
            assert!(parse_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_are_ranges_or_single_addresses() {
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        assert_eq!(parse_cidr("::1").unwrap().to_string(), "::1/128");
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0.0/x"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }
}
