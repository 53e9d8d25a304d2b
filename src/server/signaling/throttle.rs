//! Per-address rate limits on the signaling doors: each offer (`POST`) and trickle (`PATCH`) is
//! parsed on the media task, so one address may not send them faster than a player or an encoder
//! ever needs. GCRA buckets from `governor`, one per client address, refused with 429 and a
//! `Retry-After`.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::SignalingError;
use crate::server::{client::Client, AppState};

/// Offers one address may post at once, and how many more per second after that. An office
/// behind one address opening 50 players at once fits in the burst.
pub const OFFER_BURST: u32 = 60;
const OFFERS_PER_SECOND: u32 = 5;

/// Trickle PATCHes: a client sends a few per session.
pub const TRICKLE_BURST: u32 = 240;
const TRICKLES_PER_SECOND: u32 = 20;

/// Addresses remembered before the ones whose buckets are full again are forgotten.
const FORGET_ABOVE: usize = 10_000;

/// Which door a request is counted at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    Offer,
    Trickle,
}

impl Door {
    pub fn name(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Trickle => "trickle",
        }
    }
}

pub struct Throttle {
    offers: DefaultKeyedRateLimiter<IpAddr>,
    trickles: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for Throttle {
    fn default() -> Self {
        let quota = |burst: u32, per_second: u32| {
            Quota::per_second(NonZeroU32::new(per_second).expect("non-zero"))
                .allow_burst(NonZeroU32::new(burst).expect("non-zero"))
        };
        Self {
            offers: RateLimiter::keyed(quota(OFFER_BURST, OFFERS_PER_SECOND)),
            trickles: RateLimiter::keyed(quota(TRICKLE_BURST, TRICKLES_PER_SECOND)),
        }
    }
}

impl Throttle {
    /// `Ok` when `client` may pass `door` now, else how long until it may.
    pub fn check(&self, door: Door, client: IpAddr) -> Result<(), Duration> {
        let limiter = match door {
            Door::Offer => &self.offers,
            Door::Trickle => &self.trickles,
        };
        if limiter.len() > FORGET_ABOVE {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&client).map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

/// The middleware: counts `POST` to an endpoint and `PATCH` to a session.
pub async fn limit(State(state): State<AppState>, client: Client, request: Request, next: Next) -> Response {
    let door = match *request.method() {
        Method::POST => Some(Door::Offer),
        Method::PATCH => Some(Door::Trickle),
        _ => None,
    };
    if let Some(door) = door {
        if let Err(wait) = state.throttle.check(door, client.ip) {
            crate::server::metrics::rate_limited(door.name());
            return SignalingError::too_many_requests(
                format!("too many {} requests from this address; slow down", door.name()),
                wait.as_secs().max(1),
            )
            .into_response();
        }
    }
    next.run(request).await
}

pub type Shared = Arc<Throttle>;
