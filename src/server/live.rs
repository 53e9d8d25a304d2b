//! Live state for HTTP: the feeds (server-sent events) of the public stream state and of each
//! WHEP session, read from the SFU's board (see `sfu::board`) without asking the media task, and
//! the caps that keep held feeds from taking every file descriptor.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use futures_util::Stream;
use serde::Serialize;
use tokio::sync::watch;

use crate::sfu::{LiveState, PairInfo, StreamKey, Watching};

/// Feeds one client address may hold: a `/watch` page holds two; a household or an office
/// behind one NAT address holds a few dozen.
pub const FEEDS_PER_ADDRESS: usize = 64;

/// Feeds the whole server holds at most, whatever the descriptor limit allows.
const FEEDS_MAX: usize = 20_000;

/// Why a feed was not opened.
#[derive(Debug, PartialEq, Eq)]
pub enum FeedRefused {
    /// This address holds [`FEEDS_PER_ADDRESS`] already (429).
    Address,
    /// The server holds all the feeds it allows (503).
    Server,
}

/// A client should come back after this many seconds.
pub const FEED_RETRY_AFTER_SECS: u64 = 10;

impl FeedRefused {
    pub fn message(&self) -> &'static str {
        match self {
            Self::Address => "too many live feeds open from this address",
            Self::Server => "the server holds all the live feeds it can",
        }
    }
}

/// Counts open feeds, in total and per client address.
pub struct FeedLimits {
    total_max: usize,
    held: Mutex<FeedCounts>,
}

#[derive(Default)]
struct FeedCounts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl FeedLimits {
    /// Feeds may use at most half the open-files limit: the other half stays for page requests,
    /// the database, connections of viewers and publishers, recordings.
    pub fn for_open_files(open_files: u64) -> Self {
        Self::new((open_files / 2).min(FEEDS_MAX as u64) as usize)
    }

    pub fn new(total_max: usize) -> Self {
        Self { total_max, held: Mutex::default() }
    }

    /// A place for one more feed of `client`, given back when the permit drops.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<FeedPermit, FeedRefused> {
        let mut held = self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let refused = if held.total >= self.total_max {
            Some(FeedRefused::Server)
        } else if held.by_address.get(&client).is_some_and(|n| *n >= FEEDS_PER_ADDRESS) {
            Some(FeedRefused::Address)
        } else {
            None
        };
        if let Some(refused) = refused {
            super::metrics::rate_limited("feed");
            return Err(refused);
        }
        let of_client = held.by_address.entry(client).or_default();
        *of_client += 1;
        held.total += 1;
        Ok(FeedPermit { limits: self.clone(), client })
    }

    /// Feeds open now.
    pub fn open(&self) -> usize {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).total
    }
}

/// One open feed's place; travels with the response body.
pub struct FeedPermit {
    limits: Arc<FeedLimits>,
    client: IpAddr,
}

impl Drop for FeedPermit {
    fn drop(&mut self) {
        let mut held = self.limits.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        held.total -= 1;
        if let Some(count) = held.by_address.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                held.by_address.remove(&self.client);
            }
        }
    }
}

/// What a feed follows: one stream's state and, for a WHEP session, what its pairs show.
pub struct Followed {
    pub stream: Watching,
    pub pairs: Option<watch::Receiver<Vec<PairInfo>>>,
}

/// A snapshot of what a feed follows.
#[derive(Clone, PartialEq)]
pub struct View {
    pub stream: LiveState,
    pub pairs: Vec<PairInfo>,
}

/// Yields the view now and again after each change; ends on shutdown, or when a followed session
/// ends (its pairs' sender is gone). The permit is held until the stream is dropped.
pub fn feed(
    followed: Followed,
    permit: FeedPermit,
    shutdown: watch::Receiver<bool>,
) -> impl Stream<Item = View> + Send + 'static {
    struct State {
        followed: Followed,
        last: Option<View>,
        shutdown: watch::Receiver<bool>,
        _permit: FeedPermit,
    }
    let state = State { followed, last: None, shutdown, _permit: permit };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if *state.shutdown.borrow() {
                return None;
            }
            if state.last.is_some() {
                // Changes between two polls coalesce: a feed shows the newest state, never a backlog.
                let pairs = &mut state.followed.pairs;
                let pairs_changed = async {
                    match pairs {
                        Some(pairs) => pairs.changed().await.is_ok(),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    changed = state.followed.stream.receiver().changed() => if changed.is_err() { return None },
                    going_on = pairs_changed => if !going_on { return None },
                    _ = state.shutdown.wait_for(|stop| *stop) => return None,
                }
            }
            let view = state.followed.view();
            if state.last.as_ref() != Some(&view) {
                state.last = Some(view.clone());
                return Some((view, state));
            }
        }
    })
}

impl Followed {
    fn view(&mut self) -> View {
        let stream = self.stream.receiver().borrow_and_update().clone();
        let pairs = self.pairs.as_mut().map(|p| p.borrow_and_update().clone()).unwrap_or_default();
        View { stream, pairs }
    }
}

/// What anyone may know about a stream (`GET /api/v1/streams/{accountId}/{streamName}`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublicStream {
    pub account_id: String,
    pub stream_name: String,
    #[serde(flatten)]
    pub state: LiveState,
}

impl PublicStream {
    pub fn new(key: &StreamKey, state: LiveState) -> Self {
        Self { account_id: key.account.to_string(), stream_name: key.name.to_string(), state }
    }
}
