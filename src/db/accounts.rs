//! The `accounts` table.

use sqlx::{FromRow, SqlitePool};

/// One row of `accounts`.
#[derive(Clone, Debug, FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub public_id: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
    /// Sees `/admin` and makes invites (README "Sign-up and the operator").
    pub operator: bool,
    /// Disabled by the operator: no login, publishing or API keys until enabled again.
    pub disabled: bool,
}

/// The columns of [`AccountRow`] as a string literal, for queries over `accounts AS a` (a macro so
/// that `concat!` makes each query one `&'static str`: the session lookup runs per request).
macro_rules! account_columns {
    () => {
        "a.id, a.public_id, a.email, a.password_hash, a.created_at, a.operator, a.disabled_at IS NOT NULL AS disabled"
    };
}
pub(crate) use account_columns;

/// Which new accounts the database lets in (checked in the same statement that inserts, so two
/// sign-ups at once cannot both be "the first" or both use one invite).
#[derive(Clone, Copy, Debug)]
pub enum Admission<'a> {
    Anyone,
    /// Only while there is no account at all.
    FirstOnly,
    /// With an unused, unexpired invite (whose SHA-256 this is), taken in the same transaction.
    Invite {
        code_hash: &'a str,
    },
}

/// Inserts an account if `admission` lets it in (`None` otherwise); the first account of the
/// instance is its operator. Fails with a unique violation when the email or public id is taken.
pub async fn insert(
    pool: &SqlitePool,
    public_id: &str,
    email: &str,
    password_hash: &str,
    now: i64,
    admission: Admission<'_>,
) -> Result<Option<AccountRow>, sqlx::Error> {
    let condition = match admission {
        Admission::Anyone | Admission::Invite { .. } => "1",
        Admission::FirstOnly => "NOT EXISTS (SELECT 1 FROM accounts)",
    };
    let sql = format!(
        "INSERT INTO accounts (public_id, email, password_hash, created_at, operator)
         SELECT $1, $2, $3, $4, NOT EXISTS (SELECT 1 FROM accounts) WHERE {condition}
         RETURNING id, public_id, email, password_hash, created_at, operator, disabled_at IS NOT NULL AS disabled"
    );
    let mut tx = pool.begin().await?;
    let account = sqlx::query_as::<_, AccountRow>(&sql)
        .bind(public_id)
        .bind(email)
        .bind(password_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(account) = account else { return Ok(None) };
    if let Admission::Invite { code_hash } = admission {
        let taken = sqlx::query(
            "UPDATE invites SET used_at = $1, used_by = $2
             WHERE code_hash = $3 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(account.id)
        .bind(code_hash)
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() == 0 {
            return Ok(None);
        }
    }
    tx.commit().await?;
    Ok(Some(account))
}

/// Whether the instance has any account yet.
pub async fn any_exists(pool: &SqlitePool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts)").fetch_one(pool).await
}

/// Finds an account by its (already lower-cased) email.
pub async fn find_by_email(pool: &SqlitePool, email: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as::<_, AccountRow>(concat!("SELECT ", account_columns!(), " FROM accounts a WHERE a.email = $1"))
        .bind(email)
        .fetch_optional(pool)
        .await
}

/// Whether an email is already registered.
pub async fn email_exists(pool: &SqlitePool, email: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM accounts WHERE email = $1").bind(email).fetch_optional(pool).await?;
    Ok(found.is_some())
}

/// Whether an account has this public id (the one in stream URLs).
pub async fn public_id_exists(pool: &SqlitePool, public_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM accounts WHERE public_id = $1").bind(public_id).fetch_optional(pool).await?;
    Ok(found.is_some())
}

/// Stores a new password hash.
pub async fn set_password_hash(pool: &SqlitePool, id: i64, password_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes an account; its sessions, tokens, API keys and recording rows go with it (`ON DELETE
/// CASCADE`).
pub async fn delete(pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM accounts WHERE id = $1").bind(id).execute(pool).await?;
    Ok(())
}

/// One account as the operator's list shows it.
#[derive(Clone, Debug, FromRow)]
pub struct AdminAccountRow {
    pub public_id: String,
    pub email: String,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
    pub operator: bool,
    pub disabled_at: Option<i64>,
    pub tokens: i64,
    /// Bytes published and sent to viewers over the last 24 hours (estimated, see
    /// [`add_traffic`]).
    pub published_bytes_24h: i64,
    pub viewed_bytes_24h: i64,
    #[sqlx(flatten)]
    pub limits: LimitsRow,
}

/// The limits the operator set for one account (`NULL`: the server's default).
#[derive(Clone, Copy, Debug, Default, FromRow)]
pub struct LimitsRow {
    pub max_publishers: Option<i64>,
    pub max_viewers: Option<i64>,
    pub max_egress_kbps: Option<i64>,
}

/// Every account, oldest first, with its number of publish tokens.
pub async fn list_for_admin(pool: &SqlitePool) -> Result<Vec<AdminAccountRow>, sqlx::Error> {
    sqlx::query_as::<_, AdminAccountRow>(
        "SELECT a.public_id, a.email, a.created_at, a.last_login_at, a.operator, a.disabled_at,
             (SELECT COUNT(*) FROM publish_tokens t WHERE t.account_id = a.id) AS tokens,
             COALESCE((SELECT SUM(published_bytes) FROM account_traffic x WHERE x.account_id = a.id AND x.hour > $1), 0)
                 AS published_bytes_24h,
             COALESCE((SELECT SUM(viewed_bytes) FROM account_traffic x WHERE x.account_id = a.id AND x.hour > $1), 0)
                 AS viewed_bytes_24h,
             a.max_publishers, a.max_viewers, a.max_egress_kbps
         FROM accounts a ORDER BY a.id",
    )
    .bind(super::now_unix().div_euclid(3600) - TRAFFIC_HOURS)
    .fetch_all(pool)
    .await
}

pub async fn find_by_public_id(pool: &SqlitePool, public_id: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as::<_, AccountRow>(concat!("SELECT ", account_columns!(), " FROM accounts a WHERE a.public_id = $1"))
        .bind(public_id)
        .fetch_optional(pool)
        .await
}

/// Disables (at `now`) or enables an account.
pub async fn set_disabled(pool: &SqlitePool, id: i64, disabled_at: Option<i64>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET disabled_at = $2 WHERE id = $1").bind(id).bind(disabled_at).execute(pool).await?;
    Ok(())
}

/// Makes an account an operator or not; refuses (false) to take the role from the last operator,
/// in the same statement, so that two demotions at once cannot leave none.
pub async fn set_operator(pool: &SqlitePool, id: i64, operator: bool) -> Result<bool, sqlx::Error> {
    let done = if operator {
        sqlx::query("UPDATE accounts SET operator = 1 WHERE id = $1").bind(id).execute(pool).await?
    } else {
        sqlx::query(
            "UPDATE accounts SET operator = 0
             WHERE id = $1 AND EXISTS (SELECT 1 FROM accounts WHERE operator = 1 AND id != $1)",
        )
        .bind(id)
        .execute(pool)
        .await?
    };
    Ok(done.rows_affected() > 0)
}

/// Notes a login (for the operator's list).
pub async fn touch_login(pool: &SqlitePool, id: i64, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET last_login_at = $2 WHERE id = $1").bind(id).bind(now).execute(pool).await?;
    Ok(())
}

/// The limits set for the account with this public id (`None`: no such account).
pub async fn limits_by_public_id(pool: &SqlitePool, public_id: &str) -> Result<Option<LimitsRow>, sqlx::Error> {
    sqlx::query_as::<_, LimitsRow>(
        "SELECT max_publishers, max_viewers, max_egress_kbps FROM accounts WHERE public_id = $1",
    )
    .bind(public_id)
    .fetch_optional(pool)
    .await
}

pub async fn set_limits(pool: &SqlitePool, id: i64, limits: LimitsRow) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET max_publishers = $2, max_viewers = $3, max_egress_kbps = $4 WHERE id = $1")
        .bind(id)
        .bind(limits.max_publishers)
        .bind(limits.max_viewers)
        .bind(limits.max_egress_kbps)
        .execute(pool)
        .await?;
    Ok(())
}

/// Hours of traffic kept per account (the operator's "last 24 h").
pub const TRAFFIC_HOURS: i64 = 24;

/// Adds one sample's traffic (`(account public id, published bytes, viewed bytes)`) to each
/// account's hour of `now`, in one transaction; forgets hours older than a day once an hour.
pub async fn add_traffic(
    connection: &mut sqlx::SqliteConnection,
    traffic: &[(&str, u64, u64)],
    now: i64,
) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let hour = now.div_euclid(3600);
    let mut tx = connection.begin().await?;
    for (account, published, viewed) in traffic {
        sqlx::query(
            "INSERT INTO account_traffic (account_id, hour, published_bytes, viewed_bytes)
             SELECT id, $2, $3, $4 FROM accounts WHERE public_id = $1
             ON CONFLICT (account_id, hour) DO UPDATE SET
                 published_bytes = published_bytes + excluded.published_bytes,
                 viewed_bytes = viewed_bytes + excluded.viewed_bytes",
        )
        .bind(account)
        .bind(hour)
        .bind(i64::try_from(*published).unwrap_or(i64::MAX))
        .bind(i64::try_from(*viewed).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    }
    if now.rem_euclid(3600) < 5 {
        sqlx::query("DELETE FROM account_traffic WHERE hour <= $1")
            .bind(hour - TRAFFIC_HOURS)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
