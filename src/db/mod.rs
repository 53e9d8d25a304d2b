//! SQL and nothing else: one file per table, each a handful of small named functions over the pool.

pub mod accounts;
pub mod api_keys;
pub mod invites;
pub mod recordings;
pub mod server_keys;
pub mod sessions;
pub mod subscribe_tokens;
pub mod tokens;
pub mod webhooks;

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

/// Name of the database file inside the data folder.
pub const DATABASE_FILE: &str = "ferrocast.sqlite3";

/// Opens (creating if needed) the SQLite database in `data_dir` and applies pending migrations.
pub async fn open(data_dir: &Path) -> Result<SqlitePool, sqlx::Error> {
    std::fs::create_dir_all(data_dir).map_err(sqlx::Error::Io)?;
    let path = data_dir.join(DATABASE_FILE);
    let options = SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        // WAL lets page renders read while a login writes; NORMAL is durable across process
        // crashes in WAL mode, which is what a single-node server needs.
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        // A ping before every query is a network database's safeguard; a local file cannot drop
        // the connection, and the ping was another trip to the connection's thread per query.
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// Why a backup was not made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists already; name a new file")]
    Exists(String),
    #[error("there is no database in {0}")]
    NoDatabase(String),
    #[error("{0}")]
    Sqlite(#[from] sqlx::Error),
}

/// Writes a consistent copy of the database in `data_dir` to `file` (`VACUUM INTO`: one read
/// transaction, so a running server's writes go on meanwhile and none is half in the copy).
pub async fn backup(data_dir: &Path, file: &Path) -> Result<(), BackupError> {
    if file.exists() {
        return Err(BackupError::Exists(file.display().to_string()));
    }
    let path = data_dir.join(DATABASE_FILE);
    if !path.is_file() {
        return Err(BackupError::NoDatabase(data_dir.display().to_string()));
    }
    let options =
        SqliteConnectOptions::from_str("sqlite:")?.filename(path).read_only(true).busy_timeout(Duration::from_secs(30));
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
    let target = file.to_str().ok_or_else(|| BackupError::Exists(format!("{} (not UTF-8)", file.display())))?;
    let result = sqlx::query("VACUUM INTO $1").bind(target).execute(&pool).await;
    pool.close().await;
    result?;
    Ok(())
}

/// Seconds since the Unix epoch: the unit of every timestamp column.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Unix milliseconds (webhook queue times, stream change events).
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// True when an insert failed on a UNIQUE constraint (duplicate email, colliding public id).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
