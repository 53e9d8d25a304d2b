//! Streams and their sources: who publishes what, and who watches it.

use std::{
    collections::HashMap,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use crate::recorder::RecordingId;

use super::{
    api::StreamKey,
    peer::{PeerId, SourceName},
};

#[derive(Default)]
pub struct Streams {
    map: HashMap<StreamKey, Stream>,
}

pub struct Stream {
    pub sources: Vec<Source>,
    pub viewers: Vec<PeerId>,
    /// Since when no source is active (viewers are let go after a grace period).
    pub empty_since: Option<Instant>,
}

pub struct Source {
    pub name: SourceName,
    /// The peer whose packets are forwarded.
    pub publisher: PeerId,
    /// A replacement that takes over at its first keyframe.
    pub pending: Option<PeerId>,
    /// Whether the publisher's ICE and DTLS are up (a source is live once they are).
    pub active: bool,
    pub started_at: i64,
    /// Viewer pairs showing this source: (viewer, pair index).
    pub subscribers: Vec<(PeerId, usize)>,
    /// The recording of this feed, while the recorder writes one (a replacement continues it).
    pub recording: Option<RecordingId>,
}

impl Source {
    pub fn new(name: SourceName, publisher: PeerId) -> Self {
        Self {
            name,
            publisher,
            pending: None,
            active: false,
            started_at: unix_now(),
            subscribers: Vec::new(),
            recording: None,
        }
    }
}

impl Stream {
    pub fn source(&self, name: &SourceName) -> Option<&Source> {
        self.sources.iter().find(|s| &s.name == name)
    }

    pub fn source_mut(&mut self, name: &SourceName) -> Option<&mut Source> {
        self.sources.iter_mut().find(|s| &s.name == name)
    }

    pub fn is_live(&self) -> bool {
        self.sources.iter().any(|s| s.active)
    }

    /// The source a viewer sees first: the one asked for, else main, else the oldest active one.
    pub fn default_source(&self, asked: &SourceName) -> Option<SourceName> {
        if *asked != SourceName::Main {
            return self.source(asked).filter(|s| s.active).map(|s| s.name.clone());
        }
        self.source(&SourceName::Main)
            .filter(|s| s.active)
            .or_else(|| self.sources.iter().find(|s| s.active))
            .map(|s| s.name.clone())
    }

    pub fn subscribe(&mut self, name: &SourceName, viewer: PeerId, pair: usize) {
        if let Some(source) = self.source_mut(name) {
            if !source.subscribers.contains(&(viewer, pair)) {
                source.subscribers.push((viewer, pair));
            }
        }
    }

    pub fn unsubscribe(&mut self, name: &SourceName, viewer: PeerId, pair: usize) {
        if let Some(source) = self.source_mut(name) {
            source.subscribers.retain(|s| *s != (viewer, pair));
        }
    }

    pub fn forget_viewer(&mut self, viewer: PeerId) {
        self.viewers.retain(|v| *v != viewer);
        for source in &mut self.sources {
            source.subscribers.retain(|(v, _)| *v != viewer);
        }
    }
}

impl Streams {
    pub fn get(&self, key: &StreamKey) -> Option<&Stream> {
        self.map.get(key)
    }

    pub fn get_mut(&mut self, key: &StreamKey) -> Option<&mut Stream> {
        self.map.get_mut(key)
    }

    pub fn entry(&mut self, key: &StreamKey) -> &mut Stream {
        self.map.entry(key.clone()).or_insert_with(|| Stream {
            sources: Vec::new(),
            viewers: Vec::new(),
            empty_since: None,
        })
    }

    /// Drops the stream when nobody publishes or watches it.
    pub fn prune(&mut self, key: &StreamKey) {
        if self.map.get(key).is_some_and(|s| s.sources.is_empty() && s.viewers.is_empty()) {
            self.map.remove(key);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&StreamKey, &Stream)> {
        self.map.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&StreamKey, &mut Stream)> {
        self.map.iter_mut()
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}
