//! What an account does to itself: change its password, log out everywhere, delete itself. The
//! REST API and the account page both come here.

use std::time::Duration;

use super::{error::ApiError, AppState};
use crate::db::{self, accounts::AccountRow};

/// How long deleting an account waits for its running recordings to be finished (their feeds
/// were just ended), so that their files are deleted too.
const RECORDINGS_SETTLE: Duration = Duration::from_secs(5);

/// Sets a new password; every other session ends, with its publish grants.
pub async fn change_password(
    state: &AppState,
    account: &AccountRow,
    current: &str,
    new: &str,
    this_session: Option<&str>,
) -> Result<(), ApiError> {
    let ended = state.accounts.change_password(account, current, new, this_session).await?;
    for hash in &ended {
        state.grants.revoke_session(hash);
    }
    Ok(())
}

/// Ends every session of the account, this one included, with their publish grants.
pub async fn log_out_everywhere(state: &AppState, account: &AccountRow) -> Result<(), ApiError> {
    let ended = state.accounts.end_all_sessions(account).await?;
    for hash in &ended {
        state.grants.revoke_session(hash);
    }
    tracing::info!(account = %account.public_id, sessions = ended.len(), "logged out everywhere");
    Ok(())
}

/// Deletes the account after its password is confirmed (see [`remove_account`]).
pub async fn delete_account(state: &AppState, account: &AccountRow, password: &str) -> Result<(), ApiError> {
    state.accounts.confirm_password(account, password).await?;
    remove_account(state, account).await
}

/// Ends the account's sessions (with their publish grants) and stops its live feeds (and its
/// tokens' grants); answers how many tokens it has. What deleting and disabling share.
pub async fn stop_account(state: &AppState, account: &AccountRow) -> Result<usize, ApiError> {
    log_out_everywhere(state, account).await?;
    let tokens = db::tokens::list(&state.pool, account.id).await?;
    for token in &tokens {
        state.grants.revoke_token(&token.id);
        state
            .sfu
            .end_token(token.id.clone())
            .await
            .map_err(|err| ApiError::Unavailable(format!("cannot stop the account's feeds: {err}")))?;
    }
    Ok(tokens.len())
}

/// Deletes an account: its sessions end, its feeds stop, its recordings' files are deleted, and
/// its rows (tokens, API keys, recordings) go with it.
pub async fn remove_account(state: &AppState, account: &AccountRow) -> Result<(), ApiError> {
    let tokens = stop_account(state, account).await?;
    let deadline = tokio::time::Instant::now() + RECORDINGS_SETTLE;
    let recordings = loop {
        let rows = db::recordings::list(&state.pool, account.id, None).await?;
        if rows.iter().all(|r| r.status != "recording") || tokio::time::Instant::now() >= deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for row in &recordings {
        let path = state.settings.recordings_folder.join(&row.path);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::error!(path = %path.display(), %err, "cannot delete a deleted account's recording"),
        }
    }
    db::accounts::delete(&state.pool, account.id).await?;
    tracing::info!(account = %account.public_id, tokens, recordings = recordings.len(), "account deleted");
    Ok(())
}
