//! The live board: one snapshot per stream, written by the engine when the stream changes and
//! read by any number of feeds (the public stream events, each WHEP session's events, the viewer
//! page's first GET) without asking the engine. A join storm of N viewers then costs the media
//! task N snapshot writes, not N² questions.
//!
//! An entry exists while the stream exists in the engine or somebody watches it; the board lock
//! is held only to find or drop an entry, never across an await.
//!
//! Since every change of a stream passes here, the board is also where its owner's webhooks
//! (README "Webhooks") learn that a stream or source started or ended and that the first viewer
//! came or the last left: each write compares the old state with the new and offers the
//! differences to a bounded queue without waiting (a full queue drops them and counts it).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::api::StreamKey;

/// What anyone may know of one stream as it is now: the state every live feed shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveState {
    /// Whether the engine knows the stream at all (published or watched); a feed of a stream
    /// nobody publishes shows the default (offline) state.
    #[serde(skip)]
    pub exists: bool,
    pub live: bool,
    pub viewers: usize,
    /// Unix seconds when the oldest live source started.
    pub started_at: Option<i64>,
    pub sources: Vec<LiveSource>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveSource {
    /// `null` for the main source.
    pub source_id: Option<String>,
    pub active: bool,
    pub tracks: Vec<LiveTrack>,
    /// The video's layers, best first; rates change here only when they move by a fifth or
    /// more, so that a steady stream does not wake every feed each second.
    pub layers: Vec<super::api::LayerInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveTrack {
    /// `audio` or `video`.
    pub kind: &'static str,
    /// `opus`, `vp8`, `vp9`, `h264`, `av1`; `null` before the first packet.
    pub codec: Option<&'static str>,
}

/// What changed in a stream, as its owner's webhooks hear it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamChange {
    StreamStarted,
    /// The source id (`None`: the main source).
    SourceStarted(Option<String>),
    /// The first viewer came (one was answered while none were there).
    FirstViewer,
    /// The last viewer left.
    NoViewers,
    SourceEnded(Option<String>),
    StreamEnded,
}

/// One change of one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEvent {
    pub stream: StreamKey,
    pub change: StreamChange,
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// Room for bursts (a restart of many publishers) while the webhook writer catches up.
pub const EVENT_QUEUE: usize = 4096;

/// The changes from `before` to `after`, in the order an owner expects them: a stream starts
/// before its sources, sources end before their stream.
pub fn changes(before: &LiveState, after: &LiveState) -> Vec<StreamChange> {
    let active = |state: &LiveState| -> Vec<Option<String>> {
        state.sources.iter().filter(|s| s.active).map(|s| s.source_id.clone()).collect()
    };
    let (was, is) = (active(before), active(after));
    let mut out = Vec::new();
    if !before.live && after.live {
        out.push(StreamChange::StreamStarted);
    }
    out.extend(is.iter().filter(|id| !was.contains(id)).cloned().map(StreamChange::SourceStarted));
    match (before.viewers, after.viewers) {
        (0, n) if n > 0 => out.push(StreamChange::FirstViewer),
        (n, 0) if n > 0 => out.push(StreamChange::NoViewers),
        _ => {}
    }
    out.extend(was.iter().filter(|id| !is.contains(id)).cloned().map(StreamChange::SourceEnded));
    if before.live && !after.live {
        out.push(StreamChange::StreamEnded);
    }
    out
}

/// Cheap to clone: every clone is the same board.
#[derive(Clone, Default)]
pub struct Board {
    entries: Arc<Mutex<HashMap<StreamKey, watch::Sender<LiveState>>>>,
    /// Where changes go (the webhooks); `None` when nobody listens.
    events: Option<mpsc::Sender<StreamEvent>>,
}

impl Board {
    /// A board that offers every change of a stream to `events`.
    pub fn with_events(events: Option<mpsc::Sender<StreamEvent>>) -> Self {
        Self { entries: Arc::default(), events }
    }

    fn announce(&self, key: &StreamKey, before: &LiveState, after: &LiveState) {
        let Some(events) = &self.events else { return };
        let at_ms = crate::db::now_unix_ms();
        for change in changes(before, after) {
            if events.try_send(StreamEvent { stream: key.clone(), change, at_ms }).is_err() {
                metrics::counter!("ferrocast_webhook_events_dropped_total").increment(1);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<StreamKey, watch::Sender<LiveState>>> {
        // Nothing panics while holding the lock; a poisoned map is still a consistent map.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The stream's state now (offline when nobody publishes or watches it).
    pub fn current(&self, key: &StreamKey) -> LiveState {
        self.lock().get(key).map(|entry| entry.borrow().clone()).unwrap_or_default()
    }

    /// Whether the engine knows the stream (published or watched now).
    pub fn exists(&self, key: &StreamKey) -> bool {
        self.lock().get(key).is_some_and(|entry| entry.borrow().exists)
    }

    /// Follows one stream until the returned [`Watching`] is dropped.
    pub fn watch(&self, key: &StreamKey) -> Watching {
        let mut entries = self.lock();
        let entry = entries.entry(key.clone()).or_insert_with(|| watch::Sender::new(LiveState::default()));
        Watching { board: self.clone(), key: key.clone(), receiver: Some(entry.subscribe()) }
    }

    /// The engine's write: wakes the stream's feeds only when what they show changed.
    pub(super) fn publish(&self, key: &StreamKey, state: LiveState) {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(entry) => {
                entry.send_if_modified(|now| {
                    let changed = *now != state;
                    if changed {
                        self.announce(key, now, &state);
                        *now = state;
                    }
                    changed
                });
            }
            None if state.exists => {
                self.announce(key, &LiveState::default(), &state);
                entries.insert(key.clone(), watch::Sender::new(state));
            }
            None => {}
        }
    }

    /// The engine forgot the stream: its feeds see it offline; unwatched, the entry goes.
    pub(super) fn forget(&self, key: &StreamKey) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get(key) {
            self.announce(key, &entry.borrow(), &LiveState::default());
            if entry.receiver_count() == 0 {
                entries.remove(key);
            } else {
                entry.send_if_modified(|now| {
                    let changed = *now != LiveState::default();
                    *now = LiveState::default();
                    changed
                });
            }
        }
    }

    /// How many streams have an entry (the engine's, or a watched offline one).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A feed's view of one stream's entry; dropping it drops the entry of an offline stream that
/// nobody else watches.
pub struct Watching {
    board: Board,
    key: StreamKey,
    receiver: Option<watch::Receiver<LiveState>>,
}

impl Watching {
    pub fn receiver(&mut self) -> &mut watch::Receiver<LiveState> {
        self.receiver.as_mut().expect("present until dropped")
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut entries = self.board.lock();
        if entries.get(&self.key).is_some_and(|entry| entry.receiver_count() == 0 && !entry.borrow().exists) {
            entries.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(viewers: usize) -> LiveState {
        LiveState { exists: true, live: true, viewers, started_at: Some(1), sources: Vec::new() }
    }

    #[test]
    fn a_watcher_sees_changes_and_only_changes() {
        let board = Board::default();
        let key = StreamKey::new("acct", &crate::names::StreamName::parse("show").unwrap());
        let mut watching = board.watch(&key);
        assert_eq!(*watching.receiver().borrow_and_update(), LiveState::default());
        board.publish(&key, live(1));
        assert!(watching.receiver().has_changed().unwrap());
        assert_eq!(watching.receiver().borrow_and_update().viewers, 1);
        board.publish(&key, live(1));
        assert!(!watching.receiver().has_changed().unwrap(), "the same state wakes nobody");
        board.forget(&key);
        assert!(watching.receiver().has_changed().unwrap());
        assert!(!watching.receiver().borrow_and_update().live);
        assert_eq!(board.len(), 1, "a watched stream keeps its entry");
        drop(watching);
        assert!(board.is_empty(), "the last watcher of an offline stream drops its entry");
    }

    #[test]
    fn a_live_stream_keeps_its_entry_without_watchers() {
        let board = Board::default();
        let key = StreamKey::new("acct", &crate::names::StreamName::parse("show").unwrap());
        board.publish(&key, live(0));
        drop(board.watch(&key));
        assert_eq!(board.current(&key).viewers, 0);
        assert!(board.current(&key).live);
        board.forget(&key);
        assert!(board.is_empty());
        assert!(!board.current(&key).live);
    }

    fn with_sources(viewers: usize, active: &[Option<&str>]) -> LiveState {
        let sources = active
            .iter()
            .map(|id| LiveSource {
                source_id: id.map(str::to_owned),
                active: true,
                tracks: Vec::new(),
                layers: Vec::new(),
            })
            .collect();
        LiveState { sources, ..live(viewers) }
    }

    #[test]
    fn changes_come_in_the_order_an_owner_expects() {
        use StreamChange::*;
        let off = LiveState::default();
        let on = with_sources(0, &[None, Some("cam2")]);
        assert_eq!(changes(&off, &on), [StreamStarted, SourceStarted(None), SourceStarted(Some("cam2".into()))]);
        let watched = with_sources(3, &[None]);
        assert_eq!(changes(&on, &watched), [FirstViewer, SourceEnded(Some("cam2".into()))]);
        assert_eq!(changes(&with_sources(0, &[None]), &watched), [FirstViewer]);
        assert_eq!(changes(&watched, &with_sources(5, &[None])), [], "more viewers is not news");
        assert_eq!(changes(&watched, &off), [NoViewers, SourceEnded(None), StreamEnded]);
        // A connecting source is not started yet.
        let mut connecting = with_sources(0, &[None]);
        connecting.sources[0].active = false;
        connecting.live = false;
        assert_eq!(changes(&off, &connecting), []);
    }

    #[test]
    fn the_board_offers_each_change_once_and_never_waits() {
        let (sender, mut events) = mpsc::channel(2);
        let board = Board::with_events(Some(sender));
        let key = StreamKey::new("acct", &crate::names::StreamName::parse("show").unwrap());
        board.publish(&key, with_sources(0, &[None]));
        board.publish(&key, with_sources(0, &[None]));
        let got: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).map(|e| e.change).collect();
        assert_eq!(got, [StreamChange::StreamStarted, StreamChange::SourceStarted(None)]);
        // The queue holds two: a third change is dropped, not waited for.
        board.publish(&key, with_sources(1, &[None, Some("b")]));
        board.forget(&key);
        let got: Vec<_> = std::iter::from_fn(|| events.try_recv().ok()).map(|e| e.change).collect();
        assert_eq!(got, [StreamChange::SourceStarted(Some("b".into())), StreamChange::FirstViewer]);
    }

    #[test]
    fn offline_streams_are_not_entered_by_the_engine() {
        let board = Board::default();
        board.publish(&StreamKey::new("acct", &crate::names::StreamName::parse("gone").unwrap()), LiveState::default());
        assert!(board.is_empty());
    }
}
