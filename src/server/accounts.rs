//! Sign-up, log-in, sessions and log-out: the account rules shared by the REST API and the pages'
//! server functions.

use std::{net::IpAddr, time::Duration};

use sqlx::SqlitePool;

use super::{
    error::{ApiError, SignupRefused},
    password::PasswordHasher,
    rate_limit::FailureLimiter,
    secrets,
    session::{self, SessionId},
};
use crate::{
    config::SignupMode,
    db::{
        self,
        accounts::{AccountRow, Admission},
        invites::InviteState,
    },
    model::{self, AccountView, PASSWORD_MAX_BYTES},
};

/// Failed logins allowed per account, and per client address, in [`LOGIN_WINDOW`].
pub const LOGIN_FAILURES_PER_ACCOUNT: usize = 5;
pub const LOGIN_FAILURES_PER_ADDRESS: usize = 20;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Sign-ups that pass the field checks allowed per client address in [`SIGNUP_WINDOW`] (taken
/// emails included: each answer tells whether an email has an account).
pub const SIGNUPS_PER_ADDRESS: usize = 30;
pub const SIGNUP_WINDOW: Duration = Duration::from_secs(3600);

/// Letters of the public account id: lowercase and digits, without look-alikes (0/o, 1/l/i).
const ACCOUNT_ID_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
const ACCOUNT_ID_LEN: usize = 6;

/// The account service: owns the password hasher and the login limiters.
pub struct Accounts {
    pool: SqlitePool,
    signup: SignupMode,
    hasher: PasswordHasher,
    per_account: FailureLimiter,
    per_address: FailureLimiter,
    signups: FailureLimiter,
}

/// A successful login: the account and the session id to hand to the browser.
pub struct LoggedIn {
    pub account: AccountRow,
    pub session: SessionId,
}

impl From<&AccountRow> for AccountView {
    fn from(row: &AccountRow) -> Self {
        Self { account_id: row.public_id.clone(), email: row.email.clone(), operator: row.operator }
    }
}

impl Accounts {
    pub fn new(pool: SqlitePool, signup: SignupMode) -> Self {
        Self {
            pool,
            signup,
            hasher: PasswordHasher::default(),
            per_account: FailureLimiter::new(LOGIN_FAILURES_PER_ACCOUNT, LOGIN_WINDOW),
            per_address: FailureLimiter::new(LOGIN_FAILURES_PER_ADDRESS, LOGIN_WINDOW),
            signups: FailureLimiter::new(SIGNUPS_PER_ADDRESS, SIGNUP_WINDOW),
        }
    }

    pub fn signup_mode(&self) -> SignupMode {
        self.signup
    }

    /// Prepares what the first login needs, so it is not slower than the others.
    pub async fn warm_up(&self) {
        self.hasher.warm_up().await;
    }

    /// Creates an account. Nothing is written unless every rule holds: the sign-up mode (with
    /// `invite`, an unused invite code unless the instance has no account yet), the fields, the
    /// per-address limit, a free email.
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        invite: Option<&str>,
        client: IpAddr,
    ) -> Result<AccountRow, ApiError> {
        let invite_hash = invite.map(str::trim).filter(|code| !code.is_empty()).map(secrets::hash);
        let admission = match (self.signup, invite_hash.as_deref()) {
            (SignupMode::Closed, _) => return Err(SignupRefused::Closed.into()),
            (SignupMode::Open, _) => Admission::Anyone,
            (SignupMode::Invite, Some(code_hash)) => Admission::Invite { code_hash },
            (SignupMode::Invite, None) => Admission::FirstOnly,
        };
        let email = model::normalize_email(email)?;
        model::check_new_password(password)?;
        // Every sign-up that gets this far counts, whatever its outcome.
        let _counted = self.signups.begin(&client.to_string()).map_err(|wait| refused("signup", wait))?;
        // Checked before hashing so a refusal costs no argon2 time; the insert below still
        // decides races.
        self.admissible(admission).await?;
        if db::accounts::email_exists(&self.pool, &email).await? {
            return Err(email_taken());
        }
        let hash = self.hasher.hash(password.to_owned()).await?;
        let now = db::now_unix();
        // A clash of public ids is rare (31^6 ≈ 887 million ids) but possible: draw again.
        for _ in 0..8 {
            let public_id = random_account_id()?;
            match db::accounts::insert(&self.pool, &public_id, &email, &hash, now, admission).await {
                Ok(Some(account)) => {
                    tracing::info!(account = %account.public_id, operator = account.operator, "account created");
                    return Ok(account);
                }
                Ok(None) => {
                    self.admissible(admission).await?;
                    // Admissible a moment ago, refused now: another sign-up took the place.
                    return Err(match admission {
                        Admission::Invite { .. } => SignupRefused::InviteUsed.into(),
                        _ => SignupRefused::InviteRequired.into(),
                    });
                }
                Err(err) if db::is_unique_violation(&err) => {
                    if db::accounts::email_exists(&self.pool, &email).await? {
                        return Err(email_taken());
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(ApiError::Internal("could not draw a free account id".into()))
    }

    /// Whether `admission` would let an account in now (the insert checks again, atomically).
    async fn admissible(&self, admission: Admission<'_>) -> Result<(), ApiError> {
        match admission {
            Admission::Anyone => Ok(()),
            Admission::FirstOnly if !db::accounts::any_exists(&self.pool).await? => Ok(()),
            Admission::FirstOnly => Err(SignupRefused::InviteRequired.into()),
            Admission::Invite { code_hash } => match db::invites::state(&self.pool, code_hash, db::now_unix()).await? {
                InviteState::Usable => Ok(()),
                InviteState::Unknown => Err(SignupRefused::UnknownInvite.into()),
                InviteState::Used => Err(SignupRefused::InviteUsed.into()),
                InviteState::Expired => Err(SignupRefused::InviteExpired.into()),
            },
        }
    }

    /// Checks credentials and opens a session. An unknown email and a wrong password give the same
    /// error after the same work; repeated failures are refused with 429.
    pub async fn log_in(&self, email: &str, password: &str, client: IpAddr) -> Result<LoggedIn, ApiError> {
        let email = model::normalize_email(email)?;
        if password.is_empty() {
            return Err(ApiError::invalid("password", "password is required"));
        }
        if password.len() > PASSWORD_MAX_BYTES {
            return Err(ApiError::invalid("password", format!("password must be at most {PASSWORD_MAX_BYTES} bytes")));
        }
        let address_key = client.to_string();
        // Both attempts count as failures from here until the password is verified (a request
        // cancelled meanwhile stays one); refused by either limit, neither counts.
        let too_many = |wait: Duration| refused("login", wait);
        let by_account = self.per_account.begin(&email).map_err(too_many)?;
        let by_address = match self.per_address.begin(&address_key) {
            Ok(attempt) => attempt,
            Err(wait) => {
                by_account.succeeded();
                return Err(too_many(wait));
            }
        };

        let account = db::accounts::find_by_email(&self.pool, &email).await?;
        let stored_hash = account.as_ref().map(|a| a.password_hash.clone());
        let verified = self.hasher.verify(password.to_owned(), stored_hash).await?;
        let Some(account) = account.filter(|_| verified) else {
            tracing::info!(%client, "failed login");
            super::metrics::login_failed();
            return Err(ApiError::InvalidCredentials);
        };
        by_address.succeeded();
        by_account.succeeded();
        self.per_account.clear(&email);
        // Said only to whoever knows the password.
        if account.disabled {
            return Err(ApiError::AccountDisabled);
        }
        let session = self.open_session(&account).await?;
        // Best effort: the operator's "last login" must not fail a login.
        if let Err(err) = db::accounts::touch_login(&self.pool, account.id, db::now_unix()).await {
            tracing::warn!(%err, "cannot note a login");
        }
        Ok(LoggedIn { account, session })
    }

    /// Starts a session for an account whose identity is settled (login, or a fresh sign-up).
    pub async fn open_session(&self, account: &AccountRow) -> Result<SessionId, ApiError> {
        let session = SessionId::generate().map_err(|e| ApiError::Internal(e.to_string()))?;
        let now = db::now_unix();
        db::sessions::delete_expired(&self.pool, now).await?;
        let id_hash = session::hash_id(session.expose());
        db::sessions::insert(&self.pool, &id_hash, account.id, now, now + session::SESSION_TTL_SECS).await?;
        Ok(session)
    }

    /// The account behind a session id from a cookie, if the session is live.
    pub async fn session_account(&self, session_id: &str) -> Result<Option<AccountRow>, ApiError> {
        Ok(db::sessions::find_account(&self.pool, &session::hash_id(session_id), db::now_unix()).await?)
    }

    /// Checks the account's own password again before a change that cannot be undone; wrong
    /// guesses count against the same limit as logins to this account.
    pub async fn confirm_password(&self, account: &AccountRow, password: &str) -> Result<(), ApiError> {
        if password.is_empty() || password.len() > PASSWORD_MAX_BYTES {
            return Err(ApiError::invalid("password", "your current password is required"));
        }
        let attempt = self.per_account.begin(&account.email).map_err(|wait| refused("login", wait))?;
        let verified = self.hasher.verify(password.to_owned(), Some(account.password_hash.clone())).await?;
        if !verified {
            super::metrics::login_failed();
            return Err(ApiError::invalid("password", "the current password is not right"));
        }
        attempt.succeeded();
        Ok(())
    }

    /// Sets a new password after checking the current one; every other session of the account
    /// ends (answered by hash, so their publish grants can be revoked too).
    pub async fn change_password(
        &self,
        account: &AccountRow,
        current: &str,
        new: &str,
        keep_session: Option<&str>,
    ) -> Result<Vec<String>, ApiError> {
        model::check_new_password(new).map_err(|e| ApiError::invalid("newPassword", e.message))?;
        self.confirm_password(account, current).await?;
        let hash = self.hasher.hash(new.to_owned()).await?;
        db::accounts::set_password_hash(&self.pool, account.id, &hash).await?;
        let keep = keep_session.map(session::hash_id);
        let ended = db::sessions::delete_for_account(&self.pool, account.id, keep.as_deref()).await?;
        tracing::info!(account = %account.public_id, ended = ended.len(), "password changed");
        Ok(ended)
    }

    /// Sets a new password without the current one (the operator's `ferrocast reset-password`,
    /// run on the server's own machine) and ends every session of the account.
    pub async fn reset_password(&self, email: &str, new: &str) -> Result<AccountRow, ApiError> {
        let email = model::normalize_email(email)?;
        model::check_new_password(new)?;
        let account = db::accounts::find_by_email(&self.pool, &email)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("there is no account with the email {email}")))?;
        let hash = self.hasher.hash(new.to_owned()).await?;
        db::accounts::set_password_hash(&self.pool, account.id, &hash).await?;
        let ended = db::sessions::delete_for_account(&self.pool, account.id, None).await?;
        self.per_account.clear(&email);
        tracing::info!(account = %account.public_id, ended = ended.len(), "password reset");
        Ok(account)
    }

    /// Ends every session of the account (this one too); answers their hashes.
    pub async fn end_all_sessions(&self, account: &AccountRow) -> Result<Vec<String>, ApiError> {
        Ok(db::sessions::delete_for_account(&self.pool, account.id, None).await?)
    }

    /// Revokes a session: the same cookie no longer works, even if a copy of it survives.
    pub async fn log_out(&self, session_id: &str) -> Result<(), ApiError> {
        Ok(db::sessions::delete(&self.pool, &session::hash_id(session_id)).await?)
    }
}

/// A 429 from one of the limiters of `door` (counted in `/metrics`).
fn refused(door: &'static str, wait: Duration) -> ApiError {
    super::metrics::rate_limited(door);
    ApiError::TooManyRequests { retry_after_secs: wait.as_secs().max(1) }
}

fn email_taken() -> ApiError {
    ApiError::Conflict("an account with this email already exists".into())
}

fn random_account_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; ACCOUNT_ID_LEN];
    getrandom::getrandom(&mut bytes).map_err(|e| ApiError::Internal(e.to_string()))?;
    // 256 is not a multiple of 31, so the first letters are very slightly likelier; irrelevant
    // for an id that is public anyway.
    Ok(bytes.iter().map(|b| ACCOUNT_ID_ALPHABET[*b as usize % ACCOUNT_ID_ALPHABET.len()] as char).collect())
}
