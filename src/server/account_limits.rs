//! Per-account limits (README "Sign-up and the operator"): the operator's numbers for one
//! account, else the server's flags; turned into what the SFU checks at each offer.

use super::{error::ApiError, AppState};
use crate::{
    db::{self, accounts::LimitsRow},
    model::AccountLimitsView,
    sfu::AccountLimits,
};

pub const MAX_PUBLISHERS: u32 = 10_000;
pub const MAX_VIEWERS: u32 = 1_000_000;
pub const MAX_EGRESS_MBPS: f64 = 100_000.0;

/// The account's own limits as set (`None` where it follows the server).
pub fn own(row: &LimitsRow) -> AccountLimitsView {
    AccountLimitsView {
        max_publishers: row.max_publishers.map(|n| n as u32),
        max_viewers: row.max_viewers.map(|n| n as u32),
        max_egress_mbps: row.max_egress_kbps.map(|kbps| kbps as f64 / 1000.0),
    }
}

/// What applies: each of the account's own limits, else the server's.
pub fn effective(defaults: &AccountLimitsView, own: &AccountLimitsView) -> AccountLimitsView {
    AccountLimitsView {
        max_publishers: own.max_publishers.or(defaults.max_publishers),
        max_viewers: own.max_viewers.or(defaults.max_viewers),
        max_egress_mbps: own.max_egress_mbps.or(defaults.max_egress_mbps),
    }
}

/// What the SFU checks.
pub fn for_sfu(limits: &AccountLimitsView) -> AccountLimits {
    AccountLimits {
        max_publishers: limits.max_publishers.map_or(usize::MAX, |n| n as usize),
        max_viewers: limits.max_viewers,
        max_egress_bps: limits.max_egress_mbps.map(|mbps| (mbps * 1e6) as u64),
    }
}

/// The limits that apply to the account with this public id (the server's when it has none).
pub async fn of_account(state: &AppState, public_id: &str) -> Result<AccountLimitsView, sqlx::Error> {
    let row = db::accounts::limits_by_public_id(&state.pool, public_id).await?.unwrap_or_default();
    Ok(effective(&state.settings.server_limits.account, &own(&row)))
}

/// Checks limits an operator sends: whole numbers in range, a positive rate; `None` clears.
pub fn check(
    max_publishers: Option<u32>,
    max_viewers: Option<u32>,
    max_egress_mbps: Option<f64>,
) -> Result<LimitsRow, ApiError> {
    if max_publishers.is_some_and(|n| n == 0 || n > MAX_PUBLISHERS) {
        return Err(ApiError::invalid(
            "maxPublishers",
            format!("from 1 to {MAX_PUBLISHERS}, or null for the server's"),
        ));
    }
    if max_viewers.is_some_and(|n| n == 0 || n > MAX_VIEWERS) {
        return Err(ApiError::invalid("maxViewers", format!("from 1 to {MAX_VIEWERS}, or null for the server's")));
    }
    if max_egress_mbps.is_some_and(|mbps| !(0.1..=MAX_EGRESS_MBPS).contains(&mbps)) {
        return Err(ApiError::invalid(
            "maxEgressMbps",
            format!("from 0.1 to {MAX_EGRESS_MBPS} Mbit/s, or null for the server's"),
        ));
    }
    Ok(LimitsRow {
        max_publishers: max_publishers.map(i64::from),
        max_viewers: max_viewers.map(i64::from),
        max_egress_kbps: max_egress_mbps.map(|mbps| (mbps * 1000.0).round() as i64),
    })
}
