//! Data shared by the pages (compiled to wasm) and the server.

use serde::{Deserialize, Serialize};

use crate::names::StreamName;

/// The logged-in account as the pages and `GET /api/v1/me` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    /// Short public id, the first half of every stream id (`{accountId}/{streamName}`).
    pub account_id: String,
    pub email: String,
    /// The instance's operator: sees `/admin` and makes invites.
    pub operator: bool,
}

/// Who may create an account here (`--signup`; README "Sign-up and the operator").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupPolicy {
    /// With an operator's invite (the first account of an empty instance needs none).
    Invite,
    Open,
    Closed,
}

/// Facts about this server that the pages show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteInfo {
    /// Base URL for links (WHIP URL, viewer links), without a trailing slash.
    pub public_url: String,
}

/// What the sign-up page tells a visitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupInfo {
    pub policy: SignupPolicy,
    /// No account exists yet: the next sign-up makes the operator, invite or not.
    pub first_account: bool,
}

/// Shortest accepted password, in characters (PRODUCT.md §2).
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Longest accepted password, in bytes: bounds the work one request can ask of argon2.
pub const PASSWORD_MAX_BYTES: usize = 1024;
/// Longest accepted email address, in bytes (RFC 5321's path limit).
pub const EMAIL_MAX_BYTES: usize = 254;

/// A rule broken by one field of a request: the server answers it as 422 and the pages show it
/// beside the form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// Trims and lower-cases an email address and checks its shape.
///
/// Emails are unique case-insensitively (PRODUCT.md §2), so the account keeps the lower-cased form.
/// The check is deliberately loose (one `@`, something on both sides, a dot-free-or-not domain
/// without spaces): only a confirmation mail could prove an address, and we do not send mail.
pub fn normalize_email(raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(FieldError::new("email", "email is required"));
    }
    if email.len() > EMAIL_MAX_BYTES {
        return Err(FieldError::new("email", format!("email must be at most {EMAIL_MAX_BYTES} bytes")));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(FieldError::new("email", "email must contain an @"));
    };
    if local.is_empty() || domain.is_empty() || domain.contains('@') {
        return Err(FieldError::new("email", "email must look like name@example.com"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new("email", "email must not contain spaces"));
    }
    Ok(email)
}

/// Checks a new password against the length rules of PRODUCT.md §2.
pub fn check_new_password(password: &str) -> Result<(), FieldError> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(FieldError::new("password", format!("password must be at most {PASSWORD_MAX_BYTES} bytes")));
    }
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(FieldError::new("password", format!("password must be at least {PASSWORD_MIN_CHARS} characters")));
    }
    Ok(())
}

/// Longest token or API key label, in characters.
pub const LABEL_MAX_CHARS: usize = 128;
pub use crate::names::STREAM_NAME_MAX_CHARS;
/// Most stream names one token may list.
pub const STREAMS_PER_TOKEN_MAX: usize = 32;
/// Most origins one token may list.
pub const ORIGINS_PER_TOKEN_MAX: usize = 32;

/// One entry of a token's `streams`: which stream names it lets a publisher use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamPattern {
    /// `*`: any stream name.
    Any,
    /// `name`: exactly this name.
    Exact(StreamName),
    /// `prefix*`: any name that starts with the prefix.
    Prefix(String),
}

impl StreamPattern {
    /// Parses `*`, `prefix*` or an exact name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw == "*" {
            return Ok(Self::Any);
        }
        match raw.strip_suffix('*') {
            Some(prefix) => {
                StreamName::parse(prefix).map_err(|e| format!("prefix of {raw:?}: {e}"))?;
                if prefix.chars().count() >= STREAM_NAME_MAX_CHARS {
                    return Err(format!("prefix {raw:?} leaves no room for a {STREAM_NAME_MAX_CHARS}-character name"));
                }
                Ok(Self::Prefix(prefix.to_owned()))
            }
            None => StreamName::parse(raw).map(Self::Exact),
        }
    }

    /// Whether a stream name is covered by this pattern. Names are case-sensitive.
    pub fn matches(&self, name: &StreamName) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => exact == name,
            Self::Prefix(prefix) => name.starts_with(prefix.as_str()),
        }
    }
}

/// Trims a label and checks its length.
pub fn normalize_label(raw: &str) -> Result<String, FieldError> {
    let label = raw.trim();
    if label.is_empty() {
        return Err(FieldError::new("label", "label is required"));
    }
    if label.chars().count() > LABEL_MAX_CHARS {
        return Err(FieldError::new("label", format!("label must be at most {LABEL_MAX_CHARS} characters")));
    }
    Ok(label.to_owned())
}

/// The most viewers one subscribe token may allow at once (the server's own cap is lower anyway).
pub const MAX_VIEWERS_CAP: i64 = 1_000_000;

/// Checks a viewer cap: a whole number from 1, or none.
pub fn check_max_viewers(raw: Option<i64>) -> Result<Option<i64>, FieldError> {
    match raw {
        Some(max) if !(1..=MAX_VIEWERS_CAP).contains(&max) => Err(FieldError::new(
            "maxViewers",
            format!("maxViewers must be between 1 and {MAX_VIEWERS_CAP}, or null for no cap"),
        )),
        _ => Ok(raw),
    }
}

/// Trims, de-duplicates (keeping the first) and checks a token's stream list.
///
/// `*` may stand beside other names: the token then accepts any name, and the other names are kept
/// (so removing `*` later restores them) but change nothing while `*` is there.
pub fn normalize_streams(raw: &[String]) -> Result<Vec<String>, FieldError> {
    let mut streams: Vec<String> = Vec::with_capacity(raw.len());
    for entry in raw.iter().map(|s| s.trim()) {
        if entry.is_empty() {
            continue;
        }
        StreamPattern::parse(entry).map_err(|e| FieldError::new("streams", e))?;
        if !streams.iter().any(|s| s == entry) {
            streams.push(entry.to_owned());
        }
    }
    if streams.is_empty() {
        return Err(FieldError::new("streams", "at least one stream name is required (or * for any)"));
    }
    if streams.len() > STREAMS_PER_TOKEN_MAX {
        return Err(FieldError::new("streams", format!("at most {STREAMS_PER_TOKEN_MAX} stream names per token")));
    }
    Ok(streams)
}

/// A publish token as the dashboard and `/api/v1/tokens` show it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub label: String,
    pub streams: Vec<String>,
    pub enabled: bool,
    pub record: bool,
    pub multisource: bool,
    /// RFC 3339, or `null` for no expiry.
    pub expires_at: Option<String>,
    /// Origins allowed to publish from a browser, or `null` for any.
    pub allowed_origins: Option<Vec<String>>,
    /// Sites that may embed this token's streams (and play them from their pages), or `null`
    /// for any (README "Embedding only on your sites").
    pub embed_origins: Option<Vec<String>>,
    /// Watching the token's streams needs a subscribe token (README "Viewer tokens").
    pub secure_viewer: bool,
    pub created_at: String,
    pub updated_at: String,
    pub last_used_at: Option<String>,
    /// `fcp_…a1b2`: enough to tell tokens apart, useless to publish with.
    pub hint: String,
}

impl TokenView {
    /// Whether the token lists `*`.
    pub fn allows_any_stream(&self) -> bool {
        self.streams.iter().any(|s| s == "*")
    }
}

/// `2030-01-31T18:00` (a `datetime-local` value in UTC) from the server's RFC 3339 times, which
/// are always written in UTC (`…Z`).
pub fn datetime_local_utc(rfc3339: &str) -> String {
    rfc3339.chars().take(16).collect()
}

/// `2030-01-31 18:00 UTC`: how the pages print the server's RFC 3339 times.
pub fn display_time(rfc3339: &str) -> String {
    format!("{} UTC", datetime_local_utc(rfc3339).replace('T', " "))
}

/// The answer to creating or rotating a token: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenWithSecret {
    pub token: TokenView,
    pub secret: String,
}

/// An account API key as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: String,
    pub label: String,
    pub hint: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// The answer to creating an API key: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyWithSecret {
    pub api_key: ApiKeyView,
    pub secret: String,
}

/// Body of `POST /api/v1/tokens`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewToken {
    pub label: String,
    pub streams: Vec<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub record: bool,
    #[serde(default)]
    pub multisource: bool,
    /// RFC 3339 in the future, or absent/`null` for no expiry.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// `scheme://host[:port]` origins, or absent/`null`/`[]` for any.
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    /// The same form; absent/`null`/`[]` lets any site embed.
    #[serde(default)]
    pub embed_origins: Option<Vec<String>>,
    #[serde(default)]
    pub secure_viewer: bool,
}

/// Body of `PATCH /api/v1/tokens/{id}`: absent fields stay as they are; `null` clears the
/// nullable ones.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenPatch {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub streams: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub record: Option<bool>,
    #[serde(default)]
    pub multisource: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub allowed_origins: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub embed_origins: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub secure_viewer: Option<bool>,
}

/// A subscribe token as the dashboard and `/api/v1/subscribe-tokens` show it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeTokenView {
    pub id: String,
    pub label: String,
    pub streams: Vec<String>,
    pub enabled: bool,
    /// RFC 3339, or `null` for no expiry.
    pub expires_at: Option<String>,
    /// Origins a web page may watch from with it, or `null` for any.
    pub allowed_origins: Option<Vec<String>>,
    /// How many may watch with it at once, or `null` for no cap.
    pub max_viewers: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub last_used_at: Option<String>,
    /// `fcs_…a1b2`.
    pub hint: String,
}

/// The answer to creating or rotating a subscribe token: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeTokenWithSecret {
    pub token: SubscribeTokenView,
    pub secret: String,
}

/// Body of `POST /api/v1/subscribe-tokens`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewSubscribeToken {
    pub label: String,
    pub streams: Vec<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub allowed_origins: Option<Vec<String>>,
    #[serde(default)]
    pub max_viewers: Option<i64>,
}

/// Body of `PATCH /api/v1/subscribe-tokens/{id}`: absent fields stay; `null` clears.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeTokenPatch {
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub streams: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub allowed_origins: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    pub max_viewers: Option<Option<i64>>,
}

/// A webhook endpoint as the API shows it: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    /// `fcw_…a1b2`.
    pub hint: String,
}

/// The answer to creating an endpoint or rotating its secret: the only time the secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpointWithSecret {
    pub endpoint: WebhookEndpointView,
    pub secret: String,
}

/// Body of `POST /api/v1/webhooks`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWebhookEndpoint {
    pub url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Body of `PATCH /api/v1/webhooks/{id}`: absent fields stay.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookEndpointPatch {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A sign-up invite as the operator's list shows it: never its code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteView {
    pub id: String,
    /// `fci_…a1b2`.
    pub hint: String,
    pub note: String,
    pub created_at: String,
    pub expires_at: String,
    pub used_at: Option<String>,
    /// The email of the account that used it (while that account exists).
    pub used_by: Option<String>,
    /// `open`, `used` or `expired`.
    pub state: String,
}

/// The answer to making an invite: the only time its code is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteWithCode {
    pub code: String,
    /// `{public URL}/signup?invite={code}`.
    pub url: String,
    pub expires_at: String,
    pub invite: InviteView,
}

/// An account as the operator's list shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminAccountView {
    pub account_id: String,
    pub email: String,
    pub created_at: String,
    pub last_login_at: Option<String>,
    pub operator: bool,
    pub disabled: bool,
    /// Publish tokens it has.
    pub tokens: u32,
    /// Its streams live now.
    pub live_streams: u32,
    /// Viewers of its streams now.
    pub viewers: u32,
    /// What it sends to viewers now, estimated (each stream's rate × its viewers).
    pub egress_bps: u64,
    /// Bytes it published and sent to viewers over the last 24 hours, estimated from the rates
    /// sampled every five seconds (kept in memory: since the start, at most a day).
    pub published_bytes_24h: u64,
    pub viewed_bytes_24h: u64,
    /// Its limits: the operator's for this account, or the server's defaults.
    pub limits: AccountLimitsView,
    /// The limits set for this account alone (`null`: the server's default).
    pub own_limits: AccountLimitsView,
}

/// Limits on one account (README "Sign-up and the operator"); `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountLimitsView {
    /// Feeds published at once over all its streams.
    pub max_publishers: Option<u32>,
    /// Viewers at once over all its streams.
    pub max_viewers: Option<u32>,
    /// Sent to its viewers at once, in Mbit/s.
    pub max_egress_mbps: Option<f64>,
}

impl Eq for AccountLimitsView {}

/// The whole instance now, for the operator (README "Sign-up and the operator").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub streams: u32,
    pub publishers: u32,
    pub viewers: u32,
    /// Sent to viewers now, estimated (each stream's rate × its viewers).
    pub egress_bps: u64,
    /// The recordings disk, once anything has been recorded.
    pub recordings: Option<RecordingsDisk>,
    pub limits: ServerLimits,
    /// The last hour, oldest first, one sample every five seconds (since the server started).
    pub history: Vec<InstanceSample>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingsDisk {
    /// What the recordings kept take.
    pub used_bytes: u64,
    pub free_bytes: u64,
    /// `--recordings-min-free`.
    pub min_free_bytes: u64,
    /// Below the minimum: nothing is recorded.
    pub low: bool,
}

/// The limits the server runs with (its flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerLimits {
    pub max_viewers: u32,
    pub max_viewers_per_stream: u32,
    pub max_sources_per_stream: u32,
    pub max_publishers_per_token: u32,
    /// For accounts the operator set none for.
    pub account: AccountLimitsView,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSample {
    /// Unix seconds.
    pub at: i64,
    pub viewers: u32,
    pub egress_bps: u64,
}

/// An account's own use against its limits, for its Live page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUsage {
    pub publishers: u32,
    pub viewers: u32,
    pub egress_bps: u64,
    pub limits: AccountLimitsView,
}

/// Body of `PATCH /api/v1/admin/accounts/{accountId}`: absent fields stay.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdminAccountPatch {
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub operator: Option<bool>,
    /// `null` goes back to the server's default.
    #[serde(default, deserialize_with = "present")]
    pub max_publishers: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub max_viewers: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    pub max_egress_mbps: Option<Option<f64>>,
}

/// Body of `POST /api/v1/invites`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewInvite {
    /// Seconds from now (default 7 days).
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub note: Option<String>,
}

/// One delivery of one event to one endpoint, as its log shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDeliveryView {
    pub id: i64,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub created_at: String,
    pub last_attempt_at: Option<String>,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub latency_ms: Option<i64>,
    pub next_attempt_at: Option<String>,
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`, via `default`).
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(normalize_email("  Alice@Example.COM ").unwrap(), "alice@example.com");
    }

    #[test]
    fn malformed_emails_name_the_field() {
        for bad in ["", "alice", "@example.com", "alice@", "a@b@c", "al ice@example.com"] {
            let err = normalize_email(bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad:?}");
        }
        assert!(normalize_email(&format!("{}@x.io", "a".repeat(300))).is_err());
    }

    #[test]
    fn password_length_is_counted_in_chars_and_capped_in_bytes() {
        assert!(check_new_password("1234567").is_err());
        assert!(check_new_password("12345678").is_ok());
        // 8 characters but 16 bytes: long enough.
        assert!(check_new_password("éééééééé").is_ok());
        assert!(check_new_password(&"x".repeat(PASSWORD_MAX_BYTES)).is_ok());
        assert!(check_new_password(&"x".repeat(PASSWORD_MAX_BYTES + 1)).is_err());
    }

    #[test]
    fn patterns_match_exact_prefix_and_any() {
        let any = StreamPattern::parse("*").unwrap();
        let exact = StreamPattern::parse("main").unwrap();
        let prefix = StreamPattern::parse("cam-*").unwrap();
        let name = |raw: &str| StreamName::parse(raw).unwrap();
        assert!(any.matches(&name("whatever")));
        assert!(exact.matches(&name("main")) && !exact.matches(&name("main2")) && !exact.matches(&name("Main")));
        assert!(prefix.matches(&name("cam-1")) && prefix.matches(&name("cam-")) && !prefix.matches(&name("cam")));
        for bad in ["**", "*a", "a**", "a b*", "-*x"] {
            assert!(StreamPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stream_lists_are_trimmed_deduplicated_and_non_empty() {
        let raw = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(normalize_streams(&raw(&[" a ", "a", "", "b*", "*"])).unwrap(), raw(&["a", "b*", "*"]));
        assert_eq!(normalize_streams(&raw(&["", " "])).unwrap_err().field, "streams");
        assert_eq!(normalize_streams(&raw(&["ok", "not ok"])).unwrap_err().field, "streams");
        let many: Vec<String> = (0..=STREAMS_PER_TOKEN_MAX).map(|i| format!("s{i}")).collect();
        assert!(normalize_streams(&many).is_err());
    }

    #[test]
    fn labels_are_trimmed_and_bounded() {
        assert_eq!(normalize_label("  Studio A ").unwrap(), "Studio A");
        assert!(normalize_label("   ").is_err());
        assert!(normalize_label(&"é".repeat(LABEL_MAX_CHARS)).is_ok());
        assert!(normalize_label(&"é".repeat(LABEL_MAX_CHARS + 1)).is_err());
    }
}

/// A live stream as the dashboard shows it (`/live`, live badges on tokens).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveStream {
    pub account_id: String,
    pub stream_name: String,
    pub viewers: usize,
    /// Seconds since the oldest live source started.
    pub uptime_secs: i64,
    pub bitrate_bps: u64,
    pub recording: bool,
    pub sources: Vec<LiveSource>,
    /// Connected viewers by the viewer token or link that let them in, most first.
    pub viewers_by_pass: Vec<ViewerGroup>,
    /// Connected viewers by the site whose page plays the stream, most first.
    pub viewers_by_site: Vec<ViewerGroup>,
}

/// Some of a stream's viewers: those of one viewer token or link, or of one embedding site.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerGroup {
    /// "Viewer token Members", "Viewer link …1a2b", "On https://fans.example".
    pub name: String,
    pub viewers: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSource {
    /// `None` for the main source.
    pub source_id: Option<String>,
    pub active: bool,
    pub bitrate_bps: u64,
    pub token_id: String,
    /// The recorder writes this feed now (not merely: the token allows recording).
    pub recording: bool,
    pub tracks: Vec<LiveTrack>,
    /// The video's simulcast layers, best first (one without simulcast).
    pub layers: Vec<LiveLayer>,
    pub health: LiveHealth,
    /// The last ten minutes, oldest first, one sample every five seconds.
    pub history: Vec<LiveSample>,
}

/// How a publisher's connection fares (see the API's `health`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveHealth {
    pub rtt_ms: Option<u32>,
    pub loss_percent: Option<f32>,
    pub nacks: u64,
    pub keyframe_requests: u64,
}

/// One point of a source's history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSample {
    /// Unix seconds.
    pub at: i64,
    pub bitrate_bps: u64,
    /// Of the best layer sent; 0 when there is no video.
    pub fps: u32,
    pub width: u16,
    pub height: u16,
    /// Of the whole stream.
    pub viewers: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveTrack {
    pub kind: String,
    pub codec: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveLayer {
    /// `high`, `medium`, `low`.
    pub layer: String,
    pub rid: Option<String>,
    pub width: Option<u16>,
    pub height: Option<u16>,
    pub fps: u32,
    pub bitrate_bps: u64,
    pub active: bool,
}

impl LiveLayer {
    /// `h 1280×720 · 30 fps · 1.5 Mbit/s`, or `stopped`.
    pub fn describe(&self) -> String {
        let name = self.rid.as_deref().unwrap_or(&self.layer);
        if !self.active {
            return format!("{name} stopped");
        }
        let size = match (self.width, self.height) {
            (Some(w), Some(h)) => format!("{w}×{h} · "),
            _ => String::new(),
        };
        format!("{name} {size}{} fps · {}", self.fps, display_bitrate(self.bitrate_bps))
    }
}

/// `1 h 02 min`, `3 min 05 s`, `12 s`.
pub fn display_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 {
        format!("{m} min {s:02} s")
    } else {
        format!("{s} s")
    }
}

/// `2.5 Mbit/s`, `48 kbit/s`.
pub fn display_bitrate(bps: u64) -> String {
    if bps >= 1_000_000 {
        format!("{:.1} Mbit/s", bps as f64 / 1e6)
    } else {
        format!("{} kbit/s", bps / 1000)
    }
}

/// A recording as the API and the `/recordings` page show it (README "Recording").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub id: String,
    pub stream_name: String,
    pub source_id: Option<String>,
    pub token_id: Option<String>,
    /// `webm` or `mp4`.
    pub container: String,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_ms: i64,
    pub bytes: i64,
    /// `recording`, `complete`, `interrupted` or `failed`.
    pub status: String,
    pub reason: Option<String>,
    pub file_url: String,
}

impl Recording {
    /// `vp8 640×480 · opus`, or `—` before the file holds anything.
    pub fn media(&self) -> String {
        let video = self.video_codec.as_ref().map(|codec| match (self.width, self.height) {
            (Some(w), Some(h)) => format!("{codec} {w}×{h}"),
            _ => codec.clone(),
        });
        let parts: Vec<String> = video.into_iter().chain(self.audio_codec.clone()).collect();
        if parts.is_empty() {
            "—".to_owned()
        } else {
            parts.join(" · ")
        }
    }
}

/// The `/recordings` page: the list, and why nothing is recorded now when the disk is short.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingsView {
    pub recordings: Vec<Recording>,
    pub disk_problem: Option<String>,
}

/// `812 KB`, `1.4 MB`, `2.1 GB` (decimal, as file managers show file sizes).
pub fn display_bytes(bytes: i64) -> String {
    let bytes = bytes.max(0) as f64;
    if bytes >= 1e9 {
        format!("{:.1} GB", bytes / 1e9)
    } else if bytes >= 1e6 {
        format!("{:.1} MB", bytes / 1e6)
    } else if bytes >= 1e3 {
        format!("{:.0} KB", bytes / 1e3)
    } else {
        format!("{bytes} B")
    }
}
