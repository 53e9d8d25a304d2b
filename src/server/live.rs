//! Live state for HTTP: a stream of a value that changes when the SFU announces a change to one
//! stream, shared by the public stream feed and the WHEP events extension.

use std::{future::Future, time::Duration};

use futures_util::Stream;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::sfu::{SfuHandle, SourceInfo, StreamInfo, StreamKey};

/// Without announcements, values are refreshed this often anyway (viewer counts, bitrates).
const REFRESH: Duration = Duration::from_secs(5);

/// Yields `fetch()` now and again whenever it differs after a change to `key`; ends when `fetch`
/// answers `None` or the SFU stops.
pub fn watch<T, F, Fut>(
    sfu: &SfuHandle,
    shutdown: tokio::sync::watch::Receiver<bool>,
    key: StreamKey,
    fetch: F,
) -> impl Stream<Item = T> + Send + 'static
where
    T: PartialEq + Clone + Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Option<T>> + Send,
{
    struct State<T, F> {
        changes: tokio::sync::broadcast::Receiver<crate::sfu::StreamChange>,
        shutdown: tokio::sync::watch::Receiver<bool>,
        key: StreamKey,
        fetch: F,
        last: Option<T>,
        first: bool,
    }
    let state = State { changes: sfu.subscribe(), shutdown, key, fetch, last: None, first: true };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if *state.shutdown.borrow() {
                return None;
            }
            if !state.first {
                let changes = &mut state.changes;
                let key = &state.key;
                let changed = async {
                    loop {
                        match changes.recv().await {
                            Ok(change) if change.stream == *key => return true,
                            Ok(_) => continue,
                            Err(RecvError::Lagged(_)) => return true,
                            Err(RecvError::Closed) => return false,
                        }
                    }
                };
                let stopping = state.shutdown.wait_for(|stopping| *stopping);
                tokio::select! {
                    going_on = tokio::time::timeout(REFRESH, changed) => {
                        if going_on == Ok(false) {
                            return None;
                        }
                    }
                    _ = stopping => return None,
                }
            }
            state.first = false;
            let value = (state.fetch)().await?;
            if state.last.as_ref() != Some(&value) {
                state.last = Some(value.clone());
                return Some((value, state));
            }
        }
    })
}

/// What anyone may know about a stream (`GET /api/v1/streams/{accountId}/{streamName}`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublicStream {
    pub account_id: String,
    pub stream_name: String,
    pub live: bool,
    pub viewers: usize,
    pub started_at: Option<i64>,
    pub sources: Vec<PublicSource>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PublicSource {
    pub source_id: Option<String>,
    pub active: bool,
    pub tracks: Vec<PublicTrack>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PublicTrack {
    pub kind: &'static str,
    pub codec: Option<&'static str>,
}

impl PublicStream {
    pub fn offline(key: &StreamKey) -> Self {
        Self {
            account_id: key.account.to_string(),
            stream_name: key.name.to_string(),
            live: false,
            viewers: 0,
            started_at: None,
            sources: Vec::new(),
        }
    }

    pub fn from_info(key: &StreamKey, info: Option<&StreamInfo>) -> Self {
        let Some(info) = info else { return Self::offline(key) };
        Self {
            account_id: info.account_id.clone(),
            stream_name: info.stream_name.clone(),
            live: info.live,
            viewers: info.viewers,
            started_at: info.started_at,
            sources: info.sources.iter().map(PublicSource::from).collect(),
        }
    }
}

impl From<&SourceInfo> for PublicSource {
    fn from(source: &SourceInfo) -> Self {
        Self {
            source_id: source.source_id.clone(),
            active: source.active,
            tracks: source.tracks.iter().map(|t| PublicTrack { kind: t.kind, codec: t.codec }).collect(),
        }
    }
}
