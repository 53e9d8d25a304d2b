//! The `server_keys` table: keys the server signs with, made once and kept.

use sqlx::SqlitePool;

/// The key called `name`, made from `fresh` the first time it is asked for. Two servers racing
/// on the first use agree: the first insert wins and both read it back.
pub async fn get_or_insert(pool: &SqlitePool, name: &str, fresh: &[u8], now: i64) -> Result<Vec<u8>, sqlx::Error> {
    sqlx::query("INSERT INTO server_keys (name, key, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(fresh)
        .bind(now)
        .execute(pool)
        .await?;
    sqlx::query_scalar("SELECT key FROM server_keys WHERE name = $1").bind(name).fetch_one(pool).await
}
