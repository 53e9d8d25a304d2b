//! The operator's view of the instance's accounts (README "Sign-up and the operator"): list,
//! disable or enable, make or unmake operators, delete. The API and the `/admin` page both come
//! here; the callers have checked that the caller is an operator.

use std::collections::HashMap;

use super::{account_settings, error::ApiError, timestamps, AppState};
use crate::{
    db::{self, accounts::AccountRow},
    model::{AdminAccountPatch, AdminAccountView},
};

/// Every account, oldest first, with what it has live now.
pub async fn list(state: &AppState) -> Result<Vec<AdminAccountView>, ApiError> {
    let rows = db::accounts::list_for_admin(&state.pool).await?;
    let streams = state.sfu.streams(None).await.map_err(|e| ApiError::Unavailable(format!("the SFU: {e}")))?;
    let mut live: HashMap<&str, (u32, u32)> = HashMap::new();
    for stream in streams.iter().filter(|s| s.live) {
        let entry = live.entry(stream.account_id.as_str()).or_default();
        entry.0 += 1;
        entry.1 += stream.viewers as u32;
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let (live_streams, viewers) = live.get(row.public_id.as_str()).copied().unwrap_or_default();
            AdminAccountView {
                email: row.email,
                created_at: timestamps::to_rfc3339(row.created_at),
                last_login_at: row.last_login_at.map(timestamps::to_rfc3339),
                operator: row.operator,
                disabled: row.disabled_at.is_some(),
                tokens: row.tokens as u32,
                live_streams,
                viewers,
                account_id: row.public_id,
            }
        })
        .collect())
}

/// Applies a patch to the account `account_id`. An operator is never disabled (take the role
/// first) and the last operator keeps the role: an instance always has someone who can run it.
pub async fn update(state: &AppState, account_id: &str, patch: AdminAccountPatch) -> Result<(), ApiError> {
    if patch.disabled.is_none() && patch.operator.is_none() {
        return Err(ApiError::InvalidBody("nothing to change: send disabled and/or operator".into()));
    }
    let mut account = target(state, account_id).await?;
    if let Some(operator) = patch.operator {
        if !db::accounts::set_operator(&state.pool, account.id, operator).await? {
            return Err(ApiError::Conflict("this is the last operator: make another account an operator first".into()));
        }
        account.operator = operator;
        tracing::info!(account = %account.public_id, operator, "operator role changed");
    }
    match patch.disabled {
        Some(true) if account.operator => {
            Err(ApiError::Conflict("an operator cannot be disabled: take the operator role away first".into()))
        }
        Some(true) => {
            db::accounts::set_disabled(&state.pool, account.id, Some(db::now_unix())).await?;
            let tokens = account_settings::stop_account(state, &account).await?;
            tracing::info!(account = %account.public_id, tokens, "account disabled");
            Ok(())
        }
        Some(false) => {
            db::accounts::set_disabled(&state.pool, account.id, None).await?;
            tracing::info!(account = %account.public_id, "account enabled");
            Ok(())
        }
        None => Ok(()),
    }
}

/// Deletes the account `account_id` with everything of it; never an operator.
pub async fn delete(state: &AppState, account_id: &str) -> Result<(), ApiError> {
    let account = target(state, account_id).await?;
    if account.operator {
        return Err(ApiError::Conflict("an operator cannot be deleted: take the operator role away first".into()));
    }
    account_settings::remove_account(state, &account).await
}

async fn target(state: &AppState, account_id: &str) -> Result<AccountRow, ApiError> {
    db::accounts::find_by_public_id(&state.pool, account_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no account with this id".into()))
}
