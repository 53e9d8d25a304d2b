//! What webhooks tell (README "Webhooks"): the event types and the JSON body of each delivery.

use serde_json::{json, Value};

use crate::sfu::{StreamChange, StreamKey};

/// The events an endpoint may ask for, and the test event it can be sent by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    StreamStarted,
    StreamEnded,
    SourceStarted,
    SourceEnded,
    ViewersFirst,
    ViewersNone,
    RecordingReady,
    PublishRefused,
    /// Sent only by "Send test event"; never subscribed to.
    Test,
}

impl EventType {
    /// Every event an endpoint can subscribe to, in the README's order.
    pub const SUBSCRIBABLE: [EventType; 8] = [
        Self::StreamStarted,
        Self::StreamEnded,
        Self::SourceStarted,
        Self::SourceEnded,
        Self::ViewersFirst,
        Self::ViewersNone,
        Self::RecordingReady,
        Self::PublishRefused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StreamStarted => "stream.started",
            Self::StreamEnded => "stream.ended",
            Self::SourceStarted => "source.started",
            Self::SourceEnded => "source.ended",
            Self::ViewersFirst => "viewers.first",
            Self::ViewersNone => "viewers.none",
            Self::RecordingReady => "recording.ready",
            Self::PublishRefused => "publish.refused",
            Self::Test => "webhook.test",
        }
    }

    /// A subscribable event by name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::SUBSCRIBABLE.into_iter().find(|e| e.as_str() == name)
    }
}

/// One event, before it is queued for each endpoint that wants it.
#[derive(Clone, Debug)]
pub struct Event {
    pub id: String,
    pub kind: EventType,
    /// Unix milliseconds.
    pub at_ms: i64,
    pub data: Value,
}

impl Event {
    pub fn new(kind: EventType, at_ms: i64, data: Value) -> Self {
        Self { id: format!("evt_{}", crate::server::secrets::new_id()), kind, at_ms, data }
    }

    /// A change the live board saw.
    pub fn of_stream(stream: &StreamKey, change: &StreamChange, at_ms: i64) -> Self {
        let base = json!({ "accountId": &*stream.account, "streamName": stream.name.as_str() });
        let with_source = |source: &Option<String>| {
            let mut data = base.clone();
            data["sourceId"] = json!(source);
            data
        };
        let (kind, data) = match change {
            StreamChange::StreamStarted => (EventType::StreamStarted, base.clone()),
            StreamChange::StreamEnded => (EventType::StreamEnded, base.clone()),
            StreamChange::SourceStarted(source) => (EventType::SourceStarted, with_source(source)),
            StreamChange::SourceEnded(source) => (EventType::SourceEnded, with_source(source)),
            StreamChange::FirstViewer => (EventType::ViewersFirst, base.clone()),
            StreamChange::NoViewers => (EventType::ViewersNone, base.clone()),
        };
        Self::new(kind, at_ms, data)
    }

    /// The body sent to every endpoint: `{id, type, createdAt, data}`.
    pub fn body(&self) -> String {
        let created = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.at_ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default();
        json!({ "id": self.id, "type": self.kind.as_str(), "createdAt": created, "data": self.data }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_test_event_is_not_subscribable() {
        for kind in EventType::SUBSCRIBABLE {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventType::parse("webhook.test"), None);
        assert_eq!(EventType::parse("stream.Started"), None);
    }

    #[test]
    fn a_body_names_its_event_stream_and_time() {
        let key = StreamKey::new("acct1", &crate::names::StreamName::parse("show").unwrap());
        let event = Event::of_stream(&key, &StreamChange::SourceStarted(Some("cam2".into())), 1_733_280_000_123);
        let body: Value = serde_json::from_str(&event.body()).unwrap();
        assert_eq!(body["type"], "source.started");
        assert_eq!(body["createdAt"], "2024-12-04T02:40:00.123Z");
        assert_eq!(body["data"], json!({ "accountId": "acct1", "streamName": "show", "sourceId": "cam2" }));
        assert!(body["id"].as_str().unwrap().starts_with("evt_"));
    }
}
