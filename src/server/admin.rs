//! The operator's view of the instance's accounts (README "Sign-up and the operator"): list,
//! disable or enable, make or unmake operators, delete. The API and the `/admin` page both come
//! here; the callers have checked that the caller is an operator.

use std::collections::HashMap;

use super::{account_limits, account_settings, error::ApiError, timestamps, AppState};
use crate::{
    db::{self, accounts::AccountRow},
    model::{AdminAccountPatch, AdminAccountView, InstanceView, RecordingsDisk},
};

/// Every account, oldest first, with what it has live now.
pub async fn list(state: &AppState) -> Result<Vec<AdminAccountView>, ApiError> {
    let rows = db::accounts::list_for_admin(&state.pool).await?;
    let streams = state.sfu.streams(None).await.map_err(|e| ApiError::Unavailable(format!("the SFU: {e}")))?;
    let mut live: HashMap<&str, (u32, u32, u64)> = HashMap::new();
    for stream in streams.iter().filter(|s| s.live) {
        let entry = live.entry(stream.account_id.as_str()).or_default();
        entry.0 += 1;
        entry.1 += stream.viewers as u32;
        entry.2 += stream.egress_bps;
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let (live_streams, viewers, egress_bps) = live.get(row.public_id.as_str()).copied().unwrap_or_default();
            let own_limits = account_limits::own(&row.limits);
            AdminAccountView {
                egress_bps,
                published_bytes_24h: row.published_bytes_24h.max(0) as u64,
                viewed_bytes_24h: row.viewed_bytes_24h.max(0) as u64,
                limits: account_limits::effective(&state.settings.server_limits.account, &own_limits),
                own_limits,
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
    let changes_limits =
        patch.max_publishers.is_some() || patch.max_viewers.is_some() || patch.max_egress_mbps.is_some();
    if patch.disabled.is_none() && patch.operator.is_none() && !changes_limits {
        return Err(ApiError::InvalidBody(
            "nothing to change: send disabled, operator, maxPublishers, maxViewers or maxEgressMbps".into(),
        ));
    }
    let mut account = target(state, account_id).await?;
    // Everything is checked before anything is written: a refused patch changes nothing.
    let limits = if changes_limits {
        let set = db::accounts::limits_by_public_id(&state.pool, &account.public_id).await?.unwrap_or_default();
        let set = account_limits::own(&set);
        Some(account_limits::check(
            patch.max_publishers.unwrap_or(set.max_publishers),
            patch.max_viewers.unwrap_or(set.max_viewers),
            patch.max_egress_mbps.unwrap_or(set.max_egress_mbps),
        )?)
    } else {
        None
    };
    if patch.disabled == Some(true) && patch.operator.unwrap_or(account.operator) {
        return Err(ApiError::Conflict("an operator cannot be disabled: take the operator role away first".into()));
    }
    if let Some(operator) = patch.operator.filter(|&o| o != account.operator) {
        if !db::accounts::set_operator(&state.pool, account.id, operator).await? {
            return Err(ApiError::Conflict("this is the last operator: make another account an operator first".into()));
        }
        account.operator = operator;
        tracing::info!(account = %account.public_id, operator, "operator role changed");
    }
    if let Some(limits) = limits {
        db::accounts::set_limits(&state.pool, account.id, limits).await?;
        tracing::info!(account = %account.public_id, ?limits, "account limits set");
    }
    match patch.disabled {
        Some(true) => {
            db::accounts::set_disabled(&state.pool, account.id, Some(db::now_unix())).await?;
            let tokens = account_settings::stop_account(state, &account).await?;
            tracing::info!(account = %account.public_id, tokens, "account disabled");
        }
        Some(false) => {
            db::accounts::set_disabled(&state.pool, account.id, None).await?;
            tracing::info!(account = %account.public_id, "account enabled");
        }
        None => {}
    }
    Ok(())
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

/// The instance now: what is live, the recordings disk, the limits, the last hour.
pub async fn instance(state: &AppState) -> Result<InstanceView, ApiError> {
    let streams = state.sfu.streams(None).await.map_err(|e| ApiError::Unavailable(format!("the SFU: {e}")))?;
    let live = || streams.iter().filter(|s| s.live);
    let (recorded, used_bytes) = db::recordings::totals(&state.pool).await?;
    let recordings = (recorded > 0).then(|| {
        let disk = state.recorder.disk();
        RecordingsDisk { used_bytes, free_bytes: disk.free, min_free_bytes: disk.min_free, low: disk.low }
    });
    Ok(InstanceView {
        streams: live().count() as u32,
        publishers: live().map(|s| s.sources.iter().filter(|source| source.active).count() as u32).sum(),
        viewers: live().map(|s| s.viewers as u32).sum(),
        egress_bps: live().map(|s| s.egress_bps).sum(),
        recordings,
        limits: state.settings.server_limits,
        history: state.live_history.of_instance(),
    })
}
