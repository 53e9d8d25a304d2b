//! The WHEP extensions of a viewer session: server-sent events about its stream and a JSON door
//! that moves one of its audio/video pairs to another source.
//!
//! * `GET …/{session}/events` (`text/event-stream`; a `POST` of a JSON array of event names, as
//!   the WHEP draft's SSE extension does, answers 201 with this URL in `Location`). Events:
//!   `active` / `inactive` (the stream went live / stopped), `viewercount` `{"viewercount": n}`,
//!   `sources` `{"sources": [{sourceId, active, tracks, layers}], "pairs": [{pair, assigned,
//!   sourceId, video, audio, layer, auto}]}` (`layers`: `{layer, rid, width, height, fps,
//!   bitrateBps, active}`, best first).
//! * `POST …/{session}/layer` `{"pair": 0, "sourceId": "cam2", "layer": "low"}` (`sourceId`
//!   `null` = main; `layer` `auto|high|medium|low`) → 204: the pair shows that source and layer
//!   from its next keyframe, without renegotiation.

use std::convert::Infallible;

use axum::{
    body::Body,
    extract::{Path, State},
    http::{header, HeaderMap, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures_util::{stream, StreamExt};
use serde::Deserialize;

use super::{whep::session_ref, SignalingError};
use crate::names::SourceId;
use crate::server::{
    client::Client,
    live::{self, Followed, View},
    AppState,
};
use crate::sfu::{layers::Quality, Selection, SourceChoice};

pub async fn session_events(
    State(state): State<AppState>,
    client: Client,
    Path((account, stream, session)): Path<(String, String, String)>,
) -> Result<Response, SignalingError> {
    let session = session_ref(account, stream, session)?;
    let info = state.sfu.session(session).await?;
    let permit = state.feeds.admit(client.ip)?;
    let followed = Followed { stream: state.sfu.board().watch(&info.stream), pairs: info.pairs };
    let mut previous: Option<View> = None;
    let events = live::feed(followed, permit, state.shutdown.clone()).flat_map(move |view| {
        let mut out = Vec::new();
        let was = previous.as_ref().map(|p| &p.stream);
        let now = &view.stream;
        if was.map(|p| p.live) != Some(now.live) {
            out.push(Event::default().event(if now.live { "active" } else { "inactive" }).data("{}"));
        }
        if was.map(|p| p.viewers) != Some(now.viewers) {
            out.push(Event::default().event("viewercount").data(format!("{{\"viewercount\":{}}}", now.viewers)));
        }
        if previous.as_ref().map(|p| (&p.stream.sources, &p.pairs)) != Some((&now.sources, &view.pairs)) {
            let body = serde_json::json!({ "sources": now.sources, "pairs": view.pairs });
            out.push(Event::default().event("sources").data(body.to_string()));
        }
        previous = Some(view);
        stream::iter(out.into_iter().map(Ok::<_, Infallible>))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// The draft's way in: POST the wanted event names, GET the `Location`.
pub async fn subscribe(
    State(state): State<AppState>,
    Path((account, stream, session)): Path<(String, String, String)>,
) -> Result<Response, SignalingError> {
    let reference = session_ref(account.clone(), stream.clone(), session.clone())?;
    state.sfu.session(reference).await?;
    let location = format!("/whep/{account}/{stream}/{session}/events");
    Ok((StatusCode::CREATED, [(header::LOCATION, location)]).into_response())
}

/// The layer extension's body. `sourceId` absent means the main source unless `layer` is given
/// (then the pair keeps its source): `{"pair": 0}` has always meant main.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SelectionBody {
    #[serde(default)]
    pair: usize,
    /// Absent, `null`, or a source id (`Some(None)` is an explicit `null`).
    #[serde(default, deserialize_with = "present")]
    source_id: Option<Option<String>>,
    #[serde(default)]
    layer: Option<String>,
}

/// Tells a field given as `null` from one left out.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl SelectionBody {
    fn parse(self) -> Result<Selection, SignalingError> {
        let quality = match self.layer.as_deref() {
            None => None,
            Some("auto") => Some(Quality::Auto),
            Some("high") => Some(Quality::High),
            Some("medium") => Some(Quality::Medium),
            Some("low") => Some(Quality::Low),
            Some(other) => {
                return Err(SignalingError::bad_request(format!(
                    "layer must be one of auto, high, medium, low, not {other:?}"
                )))
            }
        };
        let source = match self.source_id {
            None if quality.is_some() => SourceChoice::Keep,
            None | Some(None) => SourceChoice::Main,
            Some(Some(raw)) if raw.is_empty() => SourceChoice::Main,
            Some(Some(raw)) => SourceChoice::Id(SourceId::parse(&raw).map_err(SignalingError::bad_request)?),
        };
        Ok(Selection { pair: self.pair, source, quality })
    }
}

pub async fn select_source(
    State(state): State<AppState>,
    Path((account, stream, session)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, SignalingError> {
    let session = session_ref(account, stream, session)?;
    super::check_content_type(&headers, "application/json")?;
    let bytes = super::read_bounded(body, 4096).await?;
    let body: SelectionBody = serde_json::from_slice(&bytes).map_err(|err| {
        SignalingError::bad_request(format!(
            "expected {{\"pair\": 0, \"sourceId\": \"…\", \"layer\": \"auto|high|medium|low\"}}: {err}"
        ))
    })?;
    state.sfu.select(session, body.parse()?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
