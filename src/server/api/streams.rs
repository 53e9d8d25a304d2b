//! `/api/v1/streams`: what is live. The account's own list is private; one stream's state is
//! public (the viewer page needs it before anyone logs in).

use std::convert::Infallible;

use axum::{
    extract::{Path, State},
    response::sse::{Event, KeepAlive, Sse},
    Json,
};
use futures_util::{Stream, StreamExt};

use crate::{
    server::{
        auth::CurrentAccount,
        error::ApiError,
        live::{self, PublicStream},
        AppState,
    },
    sfu::{SfuError, StreamInfo, StreamKey},
};

/// `GET /api/v1/streams`: the account's live streams with sources, tracks, bitrates, viewers.
pub async fn list(
    State(state): State<AppState>,
    CurrentAccount(account): CurrentAccount,
) -> Result<Json<Vec<StreamInfo>>, ApiError> {
    let streams = state.sfu.streams(Some(&account.public_id)).await.map_err(sfu_unavailable)?;
    Ok(Json(streams.into_iter().filter(|s| s.live).collect()))
}

/// `GET /api/v1/streams/{accountId}/{streamName}`: live or not, sources, viewer count.
pub async fn public(
    State(state): State<AppState>,
    Path((account, stream)): Path<(String, String)>,
) -> Result<Json<PublicStream>, ApiError> {
    let key = StreamKey::new(&account, &stream);
    let info = state.sfu.stream(key.clone()).await.map_err(sfu_unavailable)?;
    Ok(Json(PublicStream::from_info(&key, info.as_ref())))
}

/// `GET /api/v1/streams/{accountId}/{streamName}/events`: the same as server-sent `stream` events,
/// one now and one per change.
pub async fn public_events(
    State(state): State<AppState>,
    Path((account, stream)): Path<(String, String)>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let key = StreamKey::new(&account, &stream);
    let sfu = state.sfu.clone();
    let fetch_key = key.clone();
    let updates = live::watch(&state.sfu, state.shutdown.clone(), key, move || {
        let sfu = sfu.clone();
        let key = fetch_key.clone();
        async move {
            let info = sfu.stream(key.clone()).await.ok()?;
            Some(PublicStream::from_info(&key, info.as_ref()))
        }
    });
    let events = updates
        .map(|stream| Ok(Event::default().event("stream").data(serde_json::to_string(&stream).unwrap_or_default())));
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn sfu_unavailable(err: SfuError) -> ApiError {
    ApiError::Unavailable(format!("the media server is unavailable: {err}"))
}
